package statefulset

import (
	"context"
	"fmt"
	"time"

	"github.com/portal-net/portal/internal/controller/internal/runner"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// Options tunes the controller; zero values mean upstream defaults.
type Options struct {
	// Now is the clock for minReadySeconds; nil means time.Now.
	Now func() time.Time
}

// Controller reconciles StatefulSets with their pods and revisions.
type Controller struct {
	client    kubernetes.Interface
	recorder  record.EventRecorder
	now       func() time.Time
	sets      appslisters.StatefulSetLister
	pods      corelisters.PodLister
	revisions appslisters.ControllerRevisionLister
	tracker   *runner.Tracker
	loop      *runner.Loop
}

// New registers informer handlers on f; the caller starts f.
func New(client kubernetes.Interface, f informers.SharedInformerFactory, recorder record.EventRecorder, opts Options) *Controller {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	setInf := f.Apps().V1().StatefulSets()
	podInf := f.Core().V1().Pods()
	revInf := f.Apps().V1().ControllerRevisions()
	c := &Controller{
		client:    client,
		recorder:  recorder,
		now:       opts.Now,
		sets:      setInf.Lister(),
		pods:      podInf.Lister(),
		revisions: revInf.Lister(),
		tracker:   runner.NewTracker(),
	}
	c.loop = &runner.Loop{
		Name:   "statefulset",
		Queue:  runner.NewQueue("statefulset"),
		Synced: []cache.InformerSynced{setInf.Informer().HasSynced, podInf.Informer().HasSynced, revInf.Informer().HasSynced},
		Sync:   c.sync,
	}
	_, _ = setInf.Informer().AddEventHandler(runner.OnEveryEvent(c.loop.Enqueue))
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj interface{}) { c.enqueueOwner(obj) },
		UpdateFunc: func(old, obj interface{}) {
			c.enqueueOwner(obj)
			// A pod that changed hands (released, adopted) concerns both sets.
			if o, n := metav1.GetControllerOf(old.(metav1.Object)), metav1.GetControllerOf(obj.(metav1.Object)); o != nil && (n == nil || o.UID != n.UID) {
				c.enqueueOwner(old)
			}
		},
		DeleteFunc: c.enqueueOwner,
	})
	_, _ = revInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		// Revisions change only through this controller and kubectl; a
		// deleted one may still be current, so it must be recreated.
		DeleteFunc: c.enqueueOwner,
	})
	return c
}

// Run processes sets until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers) }

// enqueueOwner queues the set controlling obj or, for an orphan pod, every
// set whose selector would adopt it.
func (c *Controller) enqueueOwner(obj interface{}) {
	m, ok := runner.Unwrap(obj).(metav1.Object)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOf(m); ref != nil {
		if ref.Kind != controllerKind.Kind || ref.APIVersion != controllerKind.GroupVersion().String() {
			return
		}
		set, err := c.sets.StatefulSets(m.GetNamespace()).Get(ref.Name)
		if err != nil || set.UID != ref.UID {
			return
		}
		c.loop.Enqueue(set)
		return
	}
	pod, ok := m.(*v1.Pod)
	if !ok || pod.DeletionTimestamp != nil {
		return
	}
	sets, err := c.sets.StatefulSets(pod.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, set := range sets {
		if sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector); err == nil && !sel.Empty() && sel.Matches(labels.Set(pod.Labels)) && isMember(set, pod) {
			c.loop.Enqueue(set)
		}
	}
}

func (c *Controller) sync(ctx context.Context, key string) error {
	logger := klog.FromContext(ctx).WithValues("statefulset", key)
	ctx = klog.NewContext(ctx, logger)
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	cached, err := c.sets.StatefulSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.tracker.Forget(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get statefulset %s: %w", key, err)
	}
	set := cached.DeepCopy()
	selector, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil || selector.Empty() {
		// Validation rejects these; an empty selector would claim every pod.
		logger.Info("Ignoring StatefulSet with invalid selector", "err", err)
		return nil
	}

	pods, err := c.claimPods(ctx, set, selector)
	if err != nil {
		return err
	}
	seen := make(map[string]string, len(pods))
	for _, p := range pods {
		seen[p.Name] = p.ResourceVersion
	}
	if c.tracker.Stale(key, seen) {
		return runner.ErrStale
	}

	revs, err := c.ownedRevisions(set, selector)
	if err != nil {
		return err
	}
	current, update, collisions, err := c.resolveRevisions(ctx, set, revs)
	if err != nil {
		return err
	}
	currentTemplate, err := templateOf(current)
	if err != nil {
		return err
	}

	plan := Decide(Input{
		Set:            set,
		Pods:           pods,
		Current:        Revision{Name: current.Name, Template: currentTemplate},
		Update:         Revision{Name: update.Name, Template: &set.Spec.Template},
		CollisionCount: collisions,
		Now:            c.now(),
	})
	applyErr := c.apply(ctx, key, set, plan.Actions)
	if plan.Waiting != "" {
		logger.V(4).Info("StatefulSet rollout paused", "reason", plan.Waiting)
	}
	if err := c.updateStatus(ctx, set, plan.Status); err != nil {
		return err
	}
	if applyErr != nil {
		return applyErr
	}
	if err := c.truncateHistory(ctx, set, pods, revs, current, update); err != nil {
		return err
	}
	if plan.RequeueAfter > 0 {
		c.loop.Queue.AddAfter(key, plan.RequeueAfter)
	}
	return nil
}
