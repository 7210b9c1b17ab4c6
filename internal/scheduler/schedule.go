package scheduler

import (
	"context"
	"fmt"
	"sort"

	"github.com/portal-net/portal/internal/scheduler/fit"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
)

// ReasonUnschedulable is the PodScheduled condition reason for pods that fit
// no node.
const ReasonUnschedulable = v1.PodReasonUnschedulable

// scheduleOne makes one placement decision for the pod behind key.
func (s *Scheduler) scheduleOne(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	logger := klog.FromContext(ctx).WithValues("pod", key)
	pod, err := s.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		s.forget(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get pod %s: %w", key, err)
	}
	if !s.responsible(pod) {
		s.forget(key)
		return nil
	}
	s.mu.Lock()
	_, bound := s.assumed[key]
	s.mu.Unlock()
	if bound {
		// Bound already; the informer has not shown it yet.
		return nil
	}

	wakes := s.wakeCount()
	nodes, err := s.snapshot()
	if err != nil {
		return err
	}
	var feasible []*fit.NodeInfo
	diagnosis := fit.Diagnosis{}
	for _, ni := range nodes {
		if reasons := fit.Filter(pod, ni); len(reasons) > 0 {
			diagnosis.Add(reasons)
			continue
		}
		feasible = append(feasible, ni)
	}
	if len(feasible) == 0 {
		msg := diagnosis.Message(len(nodes))
		logger.V(2).Info("Unable to schedule pod", "reason", msg)
		s.markUnschedulable(key, wakes)
		s.recorder.Event(pod, v1.EventTypeWarning, "FailedScheduling", msg)
		return s.setUnschedulable(ctx, pod, msg)
	}
	scores := fit.Score(pod, feasible, s.peerFunc(pod))
	target := feasible[fit.Best(scores, s.rand)].Node.Name

	assumed := pod.DeepCopy()
	assumed.Spec.NodeName = target
	s.mu.Lock()
	s.assumed[key] = assumed
	s.mu.Unlock()
	err = s.client.CoreV1().Pods(ns).Bind(ctx, &v1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: pod.UID},
		Target:     v1.ObjectReference{Kind: "Node", Name: target},
	}, metav1.CreateOptions{})
	if err != nil {
		s.mu.Lock()
		delete(s.assumed, key)
		s.mu.Unlock()
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			// Deleted, being deleted, or bound by someone else: the
			// informer event will settle it.
			logger.V(2).Info("Binding not possible", "node", target, "err", err)
			return nil
		}
		return fmt.Errorf("bind pod %s to %s: %w", key, target, err)
	}
	s.forget(key)
	logger.V(2).Info("Bound pod", "node", target, "feasibleNodes", len(feasible))
	s.recorder.Eventf(pod, v1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", ns, name, target)
	return nil
}

// snapshot builds every node's occupancy from the informer caches plus the
// pods bound by us that the caches do not show bound yet.
func (s *Scheduler) snapshot() ([]*fit.NodeInfo, error) {
	// Copy the assumed pods before listing: the informer may show a pod
	// bound and drop its assumed entry between the two reads, and then
	// only this order still sees it (in the copy, or in the list).
	s.mu.Lock()
	assumed := make(map[string]*v1.Pod, len(s.assumed))
	for k, p := range s.assumed {
		assumed[k] = p
	}
	s.mu.Unlock()
	nodes, err := s.nodes.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	pods, err := s.pods.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	byName := make(map[string]*fit.NodeInfo, len(nodes))
	infos := make([]*fit.NodeInfo, 0, len(nodes))
	for _, n := range nodes {
		ni := fit.NewNodeInfo(n)
		byName[n.Name] = ni
		infos = append(infos, ni)
	}
	unbound := map[string]bool{}
	for _, p := range pods {
		if p.Spec.NodeName == "" {
			unbound[podKey(p)] = true
			continue
		}
		if terminal(p) {
			continue
		}
		if ni := byName[p.Spec.NodeName]; ni != nil {
			ni.AddPod(p)
		}
	}
	var stale []string
	for key, p := range assumed {
		if !unbound[key] {
			// Bound in the cache (counted above) or gone.
			stale = append(stale, key)
			continue
		}
		if ni := byName[p.Spec.NodeName]; ni != nil {
			ni.AddPod(p)
		}
	}
	s.mu.Lock()
	for _, key := range stale {
		if s.assumed[key] == assumed[key] {
			delete(s.assumed, key)
		}
	}
	s.mu.Unlock()
	return infos, nil
}

// peerFunc says which pods spreading should keep apart from pod: those of
// the same controller, and those selected by a Service that selects pod.
func (s *Scheduler) peerFunc(pod *v1.Pod) func(*v1.Pod) bool {
	var selectors []labels.Selector
	if svcs, err := s.services.Services(pod.Namespace).List(labels.Everything()); err == nil {
		for _, svc := range svcs {
			if len(svc.Spec.Selector) == 0 {
				continue
			}
			sel := labels.SelectorFromSet(svc.Spec.Selector)
			if sel.Matches(labels.Set(pod.Labels)) {
				selectors = append(selectors, sel)
			}
		}
	}
	owner := metav1.GetControllerOf(pod)
	return func(p *v1.Pod) bool {
		if p.Namespace != pod.Namespace {
			return false
		}
		if owner != nil {
			if o := metav1.GetControllerOf(p); o != nil && o.UID == owner.UID {
				return true
			}
		}
		for _, sel := range selectors {
			if sel.Matches(labels.Set(p.Labels)) {
				return true
			}
		}
		return false
	}
}

// setUnschedulable records the failure on the pod, as kubectl describe and
// kubectl get show it. Unchanged conditions are not rewritten.
func (s *Scheduler) setUnschedulable(ctx context.Context, pod *v1.Pod, msg string) error {
	if c := podScheduledCondition(pod); c != nil && c.Status == v1.ConditionFalse && c.Reason == ReasonUnschedulable && c.Message == msg {
		return nil
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := s.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != pod.UID || cur.Spec.NodeName != "" {
			return nil
		}
		cond := v1.PodCondition{Type: v1.PodScheduled, Status: v1.ConditionFalse, Reason: ReasonUnschedulable, Message: msg,
			LastTransitionTime: metav1.Now()}
		replaced := false
		for i := range cur.Status.Conditions {
			c := &cur.Status.Conditions[i]
			if c.Type != v1.PodScheduled {
				continue
			}
			if c.Status == cond.Status {
				cond.LastTransitionTime = c.LastTransitionTime
			}
			*c = cond
			replaced = true
		}
		if !replaced {
			cur.Status.Conditions = append(cur.Status.Conditions, cond)
		}
		if cur.Status.Phase == "" {
			cur.Status.Phase = v1.PodPending
		}
		_, err = s.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("set PodScheduled=False on %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

func podScheduledCondition(pod *v1.Pod) *v1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == v1.PodScheduled {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}
