package nodelifecycle

import (
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// conditionTaints maps a node condition in a given status to the
// NoSchedule taint upstream's TaintNodesByCondition puts on the node.
var conditionTaints = []struct {
	cond   v1.NodeConditionType
	status v1.ConditionStatus
	key    string
}{
	{v1.NodeMemoryPressure, v1.ConditionTrue, v1.TaintNodeMemoryPressure},
	{v1.NodeDiskPressure, v1.ConditionTrue, v1.TaintNodeDiskPressure},
	{v1.NodePIDPressure, v1.ConditionTrue, v1.TaintNodePIDPressure},
	{v1.NodeNetworkUnavailable, v1.ConditionTrue, v1.TaintNodeNetworkUnavailable},
}

// managedTaint reports whether the controller owns t: only those are
// added or removed, every other taint is left as the user set it.
func managedTaint(t v1.Taint) bool {
	switch t.Key {
	case v1.TaintNodeNotReady, v1.TaintNodeUnreachable:
		return t.Effect == v1.TaintEffectNoSchedule || t.Effect == v1.TaintEffectNoExecute
	case v1.TaintNodeUnschedulable:
		return t.Effect == v1.TaintEffectNoSchedule
	}
	for _, ct := range conditionTaints {
		if t.Key == ct.key {
			return t.Effect == v1.TaintEffectNoSchedule
		}
	}
	return false
}

// wantedTaints are the managed taints node's state calls for.
func wantedTaints(node *v1.Node) []v1.Taint {
	var out []v1.Taint
	both := func(key string) {
		out = append(out, v1.Taint{Key: key, Effect: v1.TaintEffectNoSchedule}, v1.Taint{Key: key, Effect: v1.TaintEffectNoExecute})
	}
	switch readyStatus(node) {
	case v1.ConditionFalse:
		both(v1.TaintNodeNotReady)
	case v1.ConditionUnknown:
		both(v1.TaintNodeUnreachable)
	}
	for _, ct := range conditionTaints {
		if c := condition(node, ct.cond); c != nil && c.Status == ct.status {
			out = append(out, v1.Taint{Key: ct.key, Effect: v1.TaintEffectNoSchedule})
		}
	}
	if node.Spec.Unschedulable {
		out = append(out, v1.Taint{Key: v1.TaintNodeUnschedulable, Effect: v1.TaintEffectNoSchedule})
	}
	return out
}

// reconcileTaints returns node's taints with the managed ones matching its
// state, and whether they changed. A taint that stays keeps its timeAdded,
// which eviction deadlines count from; a new one is stamped now.
func reconcileTaints(node *v1.Node, now time.Time) ([]v1.Taint, bool) {
	want := wantedTaints(node)
	same := func(a, b v1.Taint) bool { return a.Key == b.Key && a.Effect == b.Effect }
	var out []v1.Taint
	changed := false
	for _, t := range node.Spec.Taints {
		if managedTaint(t) && !slices.ContainsFunc(want, func(w v1.Taint) bool { return same(w, t) }) {
			changed = true
			continue
		}
		out = append(out, t)
	}
	stamp := metav1.NewTime(now)
	for _, w := range want {
		if slices.ContainsFunc(out, func(t v1.Taint) bool { return same(w, t) }) {
			continue
		}
		w.TimeAdded = &stamp
		out = append(out, w)
		changed = true
	}
	return out, changed
}
