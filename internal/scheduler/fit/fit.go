package fit

import (
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
)

// Reasons a node is rejected, worded as kube-scheduler words them so that
// `kubectl describe pod` reads the same.
const (
	ReasonUnschedulable = "node(s) were unschedulable"
	ReasonNodeName      = "node(s) didn't match the requested node name"
	ReasonNodeAffinity  = "node(s) didn't match Pod's node affinity/selector"
	ReasonHostPorts     = "node(s) didn't have free ports for the requested pod ports"
	ReasonTooManyPods   = "Too many pods"
	// NoNodesMessage is the whole message when the cluster has no nodes.
	NoNodesMessage = "no nodes available to schedule pods"
)

// ReasonTaint is the rejection for a taint the pod does not tolerate.
func ReasonTaint(t v1.Taint) string {
	return fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value)
}

// ReasonInsufficient is the rejection for a resource the node lacks.
func ReasonInsufficient(name v1.ResourceName) string {
	return fmt.Sprintf("Insufficient %s", name)
}

// Filter returns why pod cannot run on n, or nil when it fits. Like
// kube-scheduler's filter chain it stops at the first failing check, which
// may report several reasons (resources).
func Filter(pod *v1.Pod, n *NodeInfo) []string {
	checks := []func(*v1.Pod, *NodeInfo) []string{
		checkUnschedulable, checkNodeName, checkTaints, checkNodeAffinity, checkHostPorts, checkResources,
	}
	for _, check := range checks {
		if reasons := check(pod, n); len(reasons) > 0 {
			return reasons
		}
	}
	return nil
}

func checkUnschedulable(pod *v1.Pod, n *NodeInfo) []string {
	if !n.Node.Spec.Unschedulable {
		return nil
	}
	// A cordoned node is one taint away: pods that tolerate it (DaemonSet
	// pods do by default) may still land there.
	t := v1.Taint{Key: v1.TaintNodeUnschedulable, Effect: v1.TaintEffectNoSchedule}
	if Tolerates(pod.Spec.Tolerations, t) {
		return nil
	}
	return []string{ReasonUnschedulable}
}

func checkNodeName(pod *v1.Pod, n *NodeInfo) []string {
	if pod.Spec.NodeName != "" && pod.Spec.NodeName != n.Node.Name {
		return []string{ReasonNodeName}
	}
	return nil
}

func checkTaints(pod *v1.Pod, n *NodeInfo) []string {
	t, found := UntoleratedTaint(EffectiveTaints(n.Node), pod.Spec.Tolerations, v1.TaintEffectNoSchedule, v1.TaintEffectNoExecute)
	if found {
		return []string{ReasonTaint(t)}
	}
	return nil
}

func checkNodeAffinity(pod *v1.Pod, n *NodeInfo) []string {
	if !MatchesNodeAffinity(pod.Spec.NodeSelector, pod.Spec.Affinity, n.Node) {
		return []string{ReasonNodeAffinity}
	}
	return nil
}

func checkHostPorts(pod *v1.Pod, n *NodeInfo) []string {
	for _, want := range podHostPorts(pod) {
		for _, used := range n.usedPorts {
			if want.conflicts(used) {
				return []string{ReasonHostPorts}
			}
		}
	}
	return nil
}

func checkResources(pod *v1.Pod, n *NodeInfo) []string {
	var reasons []string
	alloc := n.Node.Status.Allocatable
	if maxPods := alloc.Pods().Value(); int64(len(n.Pods))+1 > maxPods {
		reasons = append(reasons, ReasonTooManyPods)
	}
	req := PodRequests(pod)
	// Fixed order (cpu, memory, storage, then extended resources by name)
	// keeps messages stable.
	names := []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage}
	var extra []string
	for name := range req {
		if name != v1.ResourceCPU && name != v1.ResourceMemory && name != v1.ResourceEphemeralStorage && name != v1.ResourcePods {
			extra = append(extra, string(name))
		}
	}
	sort.Strings(extra)
	for _, e := range extra {
		names = append(names, v1.ResourceName(e))
	}
	for _, name := range names {
		want, ok := req[name]
		if !ok || want.Sign() <= 0 {
			continue
		}
		free := alloc[name].DeepCopy()
		free.Sub(n.Requested[name])
		if free.Cmp(want) < 0 {
			reasons = append(reasons, ReasonInsufficient(name))
		}
	}
	return reasons
}

// MatchesNodeAffinity reports whether node satisfies a pod's nodeSelector
// and required node affinity (label expressions and metadata.name fields).
// An unparsable affinity matches nothing, as in kube-scheduler.
func MatchesNodeAffinity(nodeSelector map[string]string, affinity *v1.Affinity, node *v1.Node) bool {
	ok, err := nodeaffinity.NewRequiredNodeAffinity(nodeSelector, affinity).Match(node)
	return err == nil && ok
}

// Tolerates reports whether some toleration tolerates taint.
func Tolerates(tolerations []v1.Toleration, taint v1.Taint) bool {
	return corev1helpers.TolerationsTolerateTaint(klog.Background(), tolerations, &taint, false)
}

// UntoleratedTaint returns the first taint with one of effects that no
// toleration tolerates.
func UntoleratedTaint(taints []v1.Taint, tolerations []v1.Toleration, effects ...v1.TaintEffect) (v1.Taint, bool) {
	return corev1helpers.FindMatchingUntoleratedTaint(klog.Background(), taints, tolerations, func(t *v1.Taint) bool {
		for _, e := range effects {
			if t.Effect == e {
				return true
			}
		}
		return false
	}, false)
}

// EffectiveTaints is the node's taints plus the NoSchedule taint the node
// lifecycle controller would put on a node that is not Ready
// (not-ready when Ready is False, unreachable when it is Unknown or
// missing). Deriving it here keeps "not Ready" a filter even where no
// controller maintains the taints, and lets pods that tolerate it still land.
func EffectiveTaints(node *v1.Node) []v1.Taint {
	key := ""
	switch readyStatus(node) {
	case v1.ConditionTrue:
		return node.Spec.Taints
	case v1.ConditionFalse:
		key = v1.TaintNodeNotReady
	default:
		key = v1.TaintNodeUnreachable
	}
	for _, t := range node.Spec.Taints {
		if t.Key == key && t.Effect == v1.TaintEffectNoSchedule {
			return node.Spec.Taints
		}
	}
	out := append([]v1.Taint{}, node.Spec.Taints...)
	return append(out, v1.Taint{Key: key, Effect: v1.TaintEffectNoSchedule})
}

func readyStatus(node *v1.Node) v1.ConditionStatus {
	for _, c := range node.Status.Conditions {
		if c.Type == v1.NodeReady {
			return c.Status
		}
	}
	return v1.ConditionUnknown
}

// Diagnosis counts, per reason, the nodes rejected for it.
type Diagnosis map[string]int

// Add records the reasons one node was rejected for.
func (d Diagnosis) Add(reasons []string) {
	for _, r := range reasons {
		d[r]++
	}
}

// Message renders the diagnosis as kube-scheduler does:
// "0/3 nodes are available: 1 node(s) had untolerated taint {a: b}, 2 Insufficient cpu."
func (d Diagnosis) Message(numNodes int) string {
	if numNodes == 0 {
		return NoNodesMessage
	}
	parts := make([]string, 0, len(d))
	for r, n := range d {
		parts = append(parts, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(parts)
	return fmt.Sprintf("0/%d nodes are available: %s.", numNodes, strings.Join(parts, ", "))
}
