package nodelifecycle

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
)

// syncNode checks one node's health, marks it Unknown when silent, and
// brings its managed taints in line with its conditions.
func (c *Controller) syncNode(ctx context.Context, name string) error {
	logger := klog.FromContext(ctx).WithValues("node", name)
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		c.forgetNode(name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get node %s: %w", name, err)
	}
	lease, err := c.leases.Leases(v1.NamespaceNodeLease).Get(name)
	if err != nil {
		lease = nil // a node without a lease is judged by its heartbeat
	}
	now := c.opts.Clock.Now()
	c.mu.Lock()
	h := observe(c.health[name], node, lease, now)
	c.health[name] = h
	wasReady := h.ready
	c.mu.Unlock()

	if _, stale := staleConditions(node, h, c.opts, now); stale {
		node, err = c.markUnknown(ctx, name, h)
		if err != nil {
			return err
		}
		if node == nil {
			return nil
		}
		logger.Info("Node stopped posting status; conditions set to Unknown", "lastRenewal", h.probe)
	}

	ready := readyStatus(node)
	c.mu.Lock()
	h.ready = ready
	c.mu.Unlock()
	if wasReady == v1.ConditionTrue && ready != v1.ConditionTrue {
		c.recorder.Eventf(node, v1.EventTypeNormal, ReasonNodeNotReady, "Node %s status is now: %s", name, ReasonNodeNotReady)
	}
	if ready == v1.ConditionFalse || ready == v1.ConditionUnknown {
		// Their Ready condition goes False now, not when the taint
		// evicts them, so traffic stops at once.
		c.enqueuePodsOn(name)
	}
	return c.updateTaints(ctx, node)
}

// markUnknown writes the Unknown conditions on the live node; it returns
// nil when the node is gone.
func (c *Controller) markUnknown(ctx context.Context, name string, h *health) (*v1.Node, error) {
	var out *v1.Node
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		live, err := c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		conds, changed := staleConditions(live, h, c.opts, c.opts.Clock.Now())
		if !changed {
			out = live
			return nil
		}
		live.Status.Conditions = conds
		out, err = c.client.CoreV1().Nodes().UpdateStatus(ctx, live, metav1.UpdateOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mark node %s Unknown: %w", name, err)
	}
	return out, nil
}

func (c *Controller) updateTaints(ctx context.Context, node *v1.Node) error {
	if _, changed := reconcileTaints(node, c.opts.Clock.Now()); !changed {
		return nil
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		live, err := c.client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		taints, changed := reconcileTaints(live, c.opts.Clock.Now())
		if !changed {
			return nil
		}
		live.Spec.Taints = taints
		_, err = c.client.CoreV1().Nodes().Update(ctx, live, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return errorf("update taints of node %s", err, node.Name)
	}
	klog.FromContext(ctx).V(2).Info("Updated node taints", "node", node.Name, "ready", readyStatus(node))
	return nil
}

// syncPod marks a pod on a failed node not ready and evicts it when a
// NoExecute taint it does not tolerate (long enough) says so.
func (c *Controller) syncPod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && (pod.DeletionTimestamp != nil || pod.Spec.NodeName == "")) {
		c.setPending(key, false)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get pod %s: %w", key, err)
	}
	node, err := c.nodes.Get(pod.Spec.NodeName)
	if apierrors.IsNotFound(err) {
		return nil // deleting pods of vanished nodes is the pod GC's job
	}
	if err != nil {
		return fmt.Errorf("get node %s: %w", pod.Spec.NodeName, err)
	}
	if r := readyStatus(node); r == v1.ConditionFalse || r == v1.ConditionUnknown {
		if pod, err = c.markNotReady(ctx, pod); err != nil || pod == nil {
			return err
		}
	}
	return c.evictIfDue(ctx, key, pod, node)
}

// markNotReady sets the pod's Ready condition False, as upstream's
// MarkPodsNotReady does; the node agent that would do it is unreachable.
// It returns the pod as written, nil if it is gone.
func (c *Controller) markNotReady(ctx context.Context, pod *v1.Pod) (*v1.Pod, error) {
	i := -1
	for j, cond := range pod.Status.Conditions {
		if cond.Type == v1.PodReady {
			i = j
		}
	}
	if i < 0 || pod.Status.Conditions[i].Status == v1.ConditionFalse {
		return pod, nil
	}
	upd := pod.DeepCopy()
	upd.Status.Conditions[i].Status = v1.ConditionFalse
	upd.Status.Conditions[i].LastTransitionTime = metav1.NewTime(c.opts.Clock.Now())
	out, err := c.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		return nil, errorf("mark pod %s/%s not ready", err, pod.Namespace, pod.Name)
	}
	c.recorder.Eventf(pod, v1.EventTypeWarning, ReasonNodeNotReady, "Node is not ready")
	klog.FromContext(ctx).V(2).Info("Marked pod not ready", "pod", klog.KObj(pod), "node", pod.Spec.NodeName)
	return out, nil
}

func (c *Controller) evictIfDue(ctx context.Context, key string, pod *v1.Pod, node *v1.Node) error {
	logger := klog.FromContext(ctx)
	at, ok := evictionTime(logger, pod, node.Spec.Taints, c.since(node.Name))
	if !ok {
		if c.setPending(key, false) {
			c.recorder.Eventf(pod, v1.EventTypeNormal, ReasonTaintManagerEviction, "Cancelling deletion of Pod %s", key)
		}
		return nil
	}
	if wait := at.Sub(c.opts.Clock.Now()); wait > 0 {
		c.setPending(key, true)
		c.after(key, wait)
		return nil
	}
	if c.fullyDisrupted(node) {
		// Look again later: evictions resume once some node of the zone
		// is Ready again.
		logger.V(2).Info("No node of the zone is Ready; holding evictions", "pod", key, "node", node.Name)
		c.setPending(key, true)
		c.after(key, c.opts.NodeMonitorPeriod)
		return nil
	}
	c.setPending(key, false)
	c.recorder.Eventf(pod, v1.EventTypeNormal, ReasonTaintManagerEviction, "Marking for deletion Pod %s", key)
	if err := c.addDisruptionCondition(ctx, pod); err != nil {
		return err
	}
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(pod.UID))})
	if err != nil && !apierrors.IsConflict(err) {
		return errorf("evict pod %s", err, key)
	}
	logger.Info("Evicted pod from tainted node", "pod", key, "node", node.Name)
	return nil
}

// addDisruptionCondition tells the pod's owners why it goes, as upstream
// does before a taint eviction.
func (c *Controller) addDisruptionCondition(ctx context.Context, pod *v1.Pod) error {
	for _, cond := range pod.Status.Conditions {
		if cond.Type == v1.DisruptionTarget && cond.Status == v1.ConditionTrue {
			return nil
		}
	}
	upd := pod.DeepCopy()
	upd.Status.Conditions = append(upd.Status.Conditions, v1.PodCondition{
		Type:               v1.DisruptionTarget,
		Status:             v1.ConditionTrue,
		Reason:             "DeletionByTaintManager",
		Message:            "Taint manager: deleting due to NoExecute taint",
		LastTransitionTime: metav1.NewTime(c.opts.Clock.Now()),
	})
	if _, err := c.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return errorf("set DisruptionTarget on pod %s/%s", err, pod.Namespace, pod.Name)
	}
	return nil
}

// setPending records whether key has an eviction scheduled and returns
// whether it had one before.
func (c *Controller) setPending(key string, on bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	was := c.pending[key]
	if on {
		c.pending[key] = true
	} else {
		delete(c.pending, key)
	}
	return was
}

// fullyDisrupted reports whether no node of node's zone is Ready. Like
// upstream's full-disruption mode, evictions then stop: every node failing
// at once points at the control plane's view or the network rather than the
// nodes, and a one-node cluster must not lose all its pods because its only
// agent was down for a while.
func (c *Controller) fullyDisrupted(node *v1.Node) bool {
	zone := node.Labels[v1.LabelTopologyZone]
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return false
	}
	for _, n := range nodes {
		if n.Labels[v1.LabelTopologyZone] == zone && readyStatus(n) == v1.ConditionTrue {
			return false
		}
	}
	return true
}
