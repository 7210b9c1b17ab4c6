package deployment

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
type Options struct {
	// Now replaces the clock (tests); nil means time.Now.
	Now func() time.Time
}

var controllerKind = appsv1.SchemeGroupVersion.WithKind("Deployment")

// Controller sizes the ReplicaSets of Deployments.
type Controller struct {
	client      kubernetes.Interface
	recorder    record.EventRecorder
	now         func() time.Time
	deployments appslisters.DeploymentLister
	rss         appslisters.ReplicaSetLister
	pods        corelisters.PodLister
	tracker     *runner.Tracker
	loop        *runner.Loop
}

// New registers informer handlers on f; the caller starts f.
func New(client kubernetes.Interface, f informers.SharedInformerFactory, recorder record.EventRecorder, opts Options) *Controller {
	dInf := f.Apps().V1().Deployments()
	rsInf := f.Apps().V1().ReplicaSets()
	podInf := f.Core().V1().Pods()
	c := &Controller{
		client:      client,
		recorder:    recorder,
		now:         opts.Now,
		deployments: dInf.Lister(),
		rss:         rsInf.Lister(),
		pods:        podInf.Lister(),
		tracker:     runner.NewTracker(),
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.loop = &runner.Loop{
		Name:   "deployment",
		Queue:  runner.NewQueue("deployment"),
		Synced: []cache.InformerSynced{dInf.Informer().HasSynced, rsInf.Informer().HasSynced, podInf.Informer().HasSynced},
		Sync:   c.sync,
	}
	_, _ = dInf.Informer().AddEventHandler(runner.OnEveryEvent(c.loop.Enqueue))
	_, _ = rsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addReplicaSet,
		UpdateFunc: c.updateReplicaSet,
		DeleteFunc: c.deleteReplicaSet,
	})
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: c.deletePod,
	})
	return c
}

// Run processes Deployments until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers) }

// owner resolves a controller reference to a Deployment in ns, nil when it
// names something else or a Deployment that has since been replaced.
func (c *Controller) owner(ns string, ref *metav1.OwnerReference) *appsv1.Deployment {
	if ref == nil || ref.Kind != controllerKind.Kind || ref.APIVersion != controllerKind.GroupVersion().String() {
		return nil
	}
	d, err := c.deployments.Deployments(ns).Get(ref.Name)
	if err != nil || d.UID != ref.UID {
		return nil
	}
	return d
}

// selecting lists the Deployments whose selector matches rs, the ones that
// may adopt it.
func (c *Controller) selecting(rs *appsv1.ReplicaSet) []*appsv1.Deployment {
	ds, err := c.deployments.Deployments(rs.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*appsv1.Deployment
	for _, d := range ds {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(rs.Labels)) {
			continue
		}
		out = append(out, d)
	}
	return out
}

func (c *Controller) addReplicaSet(obj interface{}) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOfNoCopy(rs); ref != nil {
		if d := c.owner(rs.Namespace, ref); d != nil {
			c.loop.Enqueue(d)
		}
		return
	}
	for _, d := range c.selecting(rs) {
		c.loop.Enqueue(d)
	}
}

func (c *Controller) updateReplicaSet(oldObj, obj interface{}) {
	old, ok1 := oldObj.(*appsv1.ReplicaSet)
	rs, ok2 := obj.(*appsv1.ReplicaSet)
	if !ok1 || !ok2 || old.ResourceVersion == rs.ResourceVersion {
		return
	}
	oldRef, ref := metav1.GetControllerOfNoCopy(old), metav1.GetControllerOfNoCopy(rs)
	refChanged := !reflect.DeepEqual(oldRef, ref)
	if refChanged && oldRef != nil {
		if d := c.owner(old.Namespace, oldRef); d != nil {
			c.loop.Enqueue(d)
		}
	}
	if ref != nil {
		if d := c.owner(rs.Namespace, ref); d != nil {
			c.loop.Enqueue(d)
		}
		return
	}
	// An orphan whose labels or owner changed may now be adoptable.
	if refChanged || !reflect.DeepEqual(old.Labels, rs.Labels) {
		for _, d := range c.selecting(rs) {
			c.loop.Enqueue(d)
		}
	}
}

func (c *Controller) deleteReplicaSet(obj interface{}) {
	rs, ok := runner.Unwrap(obj).(*appsv1.ReplicaSet)
	if !ok {
		return
	}
	if d := c.owner(rs.Namespace, metav1.GetControllerOfNoCopy(rs)); d != nil {
		c.loop.Enqueue(d)
	}
}

// deletePod wakes a Recreate Deployment once its last old pod is gone: that
// is the moment it may scale up the new ReplicaSet, and no ReplicaSet event
// need follow.
func (c *Controller) deletePod(obj interface{}) {
	pod, ok := runner.Unwrap(obj).(*v1.Pod)
	if !ok {
		return
	}
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.Kind != "ReplicaSet" {
		return
	}
	rs, err := c.rss.ReplicaSets(pod.Namespace).Get(ref.Name)
	if err != nil || rs.UID != ref.UID {
		return
	}
	d := c.owner(rs.Namespace, metav1.GetControllerOfNoCopy(rs))
	if d == nil || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		return
	}
	owned, err := c.ownedBy(d)
	if err != nil {
		return
	}
	podsByRS, err := c.podsByRS(d, owned)
	if err != nil {
		return
	}
	for _, ps := range podsByRS {
		if len(ps) > 0 {
			return
		}
	}
	c.loop.Enqueue(d)
}

// ownedBy lists the ReplicaSets d controls, without adopting anything.
func (c *Controller) ownedBy(d *appsv1.Deployment) ([]*appsv1.ReplicaSet, error) {
	all, err := c.rss.ReplicaSets(d.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var out []*appsv1.ReplicaSet
	for _, rs := range all {
		if ref := metav1.GetControllerOfNoCopy(rs); ref != nil && ref.UID == d.UID {
			out = append(out, rs)
		}
	}
	return out, nil
}

func (c *Controller) sync(ctx context.Context, key string) error {
	logger := klog.FromContext(ctx).WithValues("deployment", key)
	ctx = klog.NewContext(ctx, logger)
	start := c.now()
	defer func() { logger.V(4).Info("Finished syncing deployment", "duration", time.Since(start)) }()

	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	cached, err := c.deployments.Deployments(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.tracker.Forget(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get deployment %s: %w", key, err)
	}
	all, err := c.rss.ReplicaSets(ns).List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list replicasets of %s: %w", key, err)
	}
	seen := make(map[string]string, len(all)+1)
	for _, rs := range all {
		seen[rs.Name] = rs.ResourceVersion
	}
	seen[selfKey] = cached.ResourceVersion
	if c.tracker.Stale(key, seen) {
		return runner.ErrStale
	}
	err = c.syncDeployment(ctx, cached.DeepCopy(), all)
	if apierrors.IsConflict(err) {
		// Someone (often our own earlier write) changed the object since
		// the cache saw it: retry quietly once the cache catches up.
		return errors.Join(runner.ErrStale, err)
	}
	return err
}

// selfKey names the Deployment itself among the tracked writes of its key;
// ReplicaSet names always contain a dash and a hash, so it cannot clash.
const selfKey = "/deployment"

func (c *Controller) syncDeployment(ctx context.Context, d *appsv1.Deployment, all []*appsv1.ReplicaSet) error {
	key := d.Namespace + "/" + d.Name
	if sel := d.Spec.Selector; sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		// Selecting every pod of the namespace would adopt foreign
		// ReplicaSets; validation forbids it, but be safe.
		c.recorder.Eventf(d, v1.EventTypeWarning, "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.")
		if d.Status.ObservedGeneration < d.Generation {
			d.Status.ObservedGeneration = d.Generation
			return c.writeStatus(ctx, d)
		}
		return nil
	}
	rsList, err := c.claim(ctx, d, all)
	if err != nil {
		return err
	}
	if d.DeletionTimestamp != nil {
		// The garbage collector removes the ReplicaSets; only report.
		newRS, old, err := c.newAndOld(ctx, d, rsList, false)
		if err != nil {
			return err
		}
		return c.syncStatus(ctx, d, withNew(old, newRS), newRS)
	}
	if err := c.updatePausedCondition(ctx, d); err != nil {
		return err
	}
	if d.Spec.Paused {
		return c.scaleOnly(ctx, d, rsList)
	}
	scaling, err := c.isScalingEvent(ctx, d, rsList)
	if err != nil {
		return err
	}
	if scaling {
		return c.scaleOnly(ctx, d, rsList)
	}
	switch d.Spec.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		return c.rolloutRecreate(ctx, d, rsList)
	case appsv1.RollingUpdateDeploymentStrategyType:
		return c.rolloutRolling(ctx, d, rsList)
	}
	return fmt.Errorf("deployment %s: unknown strategy type %q", key, d.Spec.Strategy.Type)
}

// writeStatus writes d's status and takes the stored object back, so a
// second write in the same sync does not conflict with the first.
func (c *Controller) writeStatus(ctx context.Context, d *appsv1.Deployment) error {
	got, err := c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("update status of deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	c.tracker.Updated(d.Namespace+"/"+d.Name, selfKey, d.ResourceVersion, got.ResourceVersion)
	*d = *got
	return nil
}

// updatePausedCondition records pause and resume in the Progressing
// condition, unless the rollout already timed out, which must stay visible.
func (c *Controller) updatePausedCondition(ctx context.Context, d *appsv1.Deployment) error {
	if !hasProgressDeadline(d) {
		return nil
	}
	cur := getCondition(d.Status, appsv1.DeploymentProgressing)
	if cur != nil && cur.Reason == ReasonProgressDeadlineExceeded {
		return nil
	}
	pausedRecorded := cur != nil && cur.Reason == ReasonDeploymentPaused
	switch {
	case d.Spec.Paused && !pausedRecorded:
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, v1.ConditionUnknown, ReasonDeploymentPaused, "Deployment is paused", c.now()))
	case !d.Spec.Paused && pausedRecorded:
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, v1.ConditionUnknown, ReasonDeploymentResumed, "Deployment is resumed", c.now()))
	default:
		return nil
	}
	return c.writeStatus(ctx, d)
}

// isScalingEvent: an active ReplicaSet was annotated with a different
// desired size than spec.replicas now says, so the user scaled.
func (c *Controller) isScalingEvent(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) (bool, error) {
	newRS, old, err := c.newAndOld(ctx, d, rsList, false)
	if err != nil {
		return false, err
	}
	for _, rs := range active(withNew(old, newRS)) {
		if want, ok := intAnnotation(rs, DesiredReplicasAnnotation); ok && want != desired(d) {
			return true, nil
		}
	}
	return false, nil
}
