package daemonset

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/portal-net/portal/internal/controller/internal/runner"
	appsv1 "k8s.io/api/apps/v1"
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
type Options struct{}

// Controller keeps one pod of each DaemonSet on every node that should run it.
type Controller struct {
	client    kubernetes.Interface
	recorder  record.EventRecorder
	sets      appslisters.DaemonSetLister
	pods      corelisters.PodLister
	nodes     corelisters.NodeLister
	revisions appslisters.ControllerRevisionLister
	tracker   *runner.Tracker
	loop      *runner.Loop
	now       func() time.Time
}

// New registers informer handlers on f; the caller starts f.
func New(client kubernetes.Interface, f informers.SharedInformerFactory, recorder record.EventRecorder, opts Options) *Controller {
	dsInf := f.Apps().V1().DaemonSets()
	podInf := f.Core().V1().Pods()
	nodeInf := f.Core().V1().Nodes()
	revInf := f.Apps().V1().ControllerRevisions()
	c := &Controller{
		client:    client,
		recorder:  recorder,
		sets:      dsInf.Lister(),
		pods:      podInf.Lister(),
		nodes:     nodeInf.Lister(),
		revisions: revInf.Lister(),
		tracker:   runner.NewTracker(),
		now:       time.Now,
	}
	c.loop = &runner.Loop{
		Name:  "daemonset",
		Queue: runner.NewQueue("daemonset"),
		Synced: []cache.InformerSynced{dsInf.Informer().HasSynced, podInf.Informer().HasSynced,
			nodeInf.Informer().HasSynced, revInf.Informer().HasSynced},
		Sync: c.sync,
	}
	_, _ = dsInf.Informer().AddEventHandler(runner.OnEveryEvent(c.loop.Enqueue))
	_, _ = podInf.Informer().AddEventHandler(runner.OnEveryEvent(c.enqueueOwner))
	_, _ = nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(interface{}) { c.enqueueAll() },
		UpdateFunc: func(old, obj interface{}) {
			o, ok1 := old.(*v1.Node)
			n, ok2 := obj.(*v1.Node)
			if ok1 && ok2 && (!reflect.DeepEqual(o.Labels, n.Labels) || !reflect.DeepEqual(o.Spec.Taints, n.Spec.Taints)) {
				c.enqueueAll()
			}
		},
		DeleteFunc: func(interface{}) { c.enqueueAll() },
	})
	return c
}

// Run processes DaemonSets until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers) }

func (c *Controller) enqueueOwner(obj interface{}) {
	pod, ok := runner.Unwrap(obj).(*v1.Pod)
	if !ok {
		return
	}
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != controllerKind.Kind || ref.APIVersion != appsv1.SchemeGroupVersion.String() {
		return
	}
	c.loop.Queue.Add(pod.Namespace + "/" + ref.Name)
}

func (c *Controller) enqueueAll() {
	sets, err := c.sets.List(labels.Everything())
	if err != nil {
		return
	}
	for _, ds := range sets {
		c.loop.Enqueue(ds)
	}
}

func (c *Controller) sync(ctx context.Context, key string) error {
	logger := klog.FromContext(ctx).WithValues("daemonset", key)
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	ds, err := c.sets.DaemonSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		// Pods and revisions go with the owner through garbage collection.
		c.tracker.Forget(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get daemonset %s: %w", key, err)
	}
	all, err := c.pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list pods of %s: %w", key, err)
	}
	var pods []*v1.Pod
	cached := map[string]string{}
	for _, p := range all {
		if ref := metav1.GetControllerOf(p); ref != nil && ref.UID == ds.UID {
			pods = append(pods, p)
			cached[p.Name] = p.ResourceVersion
		}
	}
	if c.tracker.Stale(key, cached) {
		return runner.ErrStale
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	if ds.DeletionTimestamp != nil {
		return nil
	}

	cur, collisions, err := c.ensureRevision(ctx, ds)
	if err != nil {
		return err
	}
	in := Input{DS: ds, Hash: cur.Labels[appsv1.ControllerRevisionHashLabelKey], Nodes: nodes, Pods: pods, Now: c.now()}
	plan := Compute(in)
	applyErr := c.apply(ctx, key, ds, in.Hash, plan)
	if len(plan.Create)+len(plan.Delete) > 0 {
		logger.V(2).Info("Synced daemon pods", "created", len(plan.Create), "deleted", len(plan.Delete), "err", applyErr)
	}
	if plan.RequeueAfter > 0 {
		c.loop.Queue.AddAfter(key, plan.RequeueAfter)
	}
	status := ComputeStatus(in)
	status.CollisionCount = collisions
	statusErr := c.updateStatus(ctx, ds, status)
	var pruneErr error
	if applyErr == nil {
		pruneErr = c.pruneRevisions(ctx, ds, cur, pods)
	}
	return errors.Join(applyErr, statusErr, pruneErr)
}

// apply performs the plan, deletions first so that a node never briefly
// runs two pods where one is being replaced.
func (c *Controller) apply(ctx context.Context, key string, ds *appsv1.DaemonSet, hash string, plan Plan) error {
	var errs []error
	for _, p := range plan.Delete {
		err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("delete pod %s/%s: %w", p.Namespace, p.Name, err))
			c.recorder.Eventf(ds, v1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
			continue
		}
		// A deleted pod either vanishes or turns terminating (a new
		// resourceVersion); either way the cache must show it first.
		c.tracker.Updated(key, p.Name, p.ResourceVersion, p.ResourceVersion+"-deleted")
		c.recorder.Eventf(ds, v1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
	}
	for _, node := range plan.Create {
		got, err := c.client.CoreV1().Pods(ds.Namespace).Create(ctx, NewPod(ds, hash, node), metav1.CreateOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("create daemon pod of %s on %s: %w", key, node, err))
			c.recorder.Eventf(ds, v1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
			if apierrors.IsForbidden(err) || apierrors.IsAlreadyExists(err) {
				// Quota or a namespace being deleted: later creates fail too.
				break
			}
			continue
		}
		c.tracker.Created(key, got.Name)
		c.recorder.Eventf(ds, v1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", got.Name)
	}
	return errors.Join(errs...)
}

func (c *Controller) updateStatus(ctx context.Context, ds *appsv1.DaemonSet, st appsv1.DaemonSetStatus) error {
	if reflect.DeepEqual(ds.Status, st) {
		return nil
	}
	cp := ds.DeepCopy()
	cp.Status = st
	_, err := c.client.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, cp, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if apierrors.IsConflict(err) {
		// Our cached copy is behind (often our own previous status
		// write); retry quietly once the informer catches up.
		return runner.ErrStale
	}
	if err != nil {
		return fmt.Errorf("update status of daemonset %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	return nil
}
