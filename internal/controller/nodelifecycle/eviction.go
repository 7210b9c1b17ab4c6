package nodelifecycle

import (
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// comparisonOperators enables Lt/Gt tolerations; off, as behind upstream's
// TaintTolerationComparisonOperators feature gate by default, so such a
// toleration tolerates nothing.
const comparisonOperators = false

// evictionTime says when pod must leave a node with taints: ok is false
// when it may stay for good (no NoExecute taint, or every one tolerated
// without a time limit); otherwise at is the deadline, which may already
// have passed. since gives the time a taint was added, for taints without
// timeAdded.
//
// Each NoExecute taint is judged on its own: not tolerated means now;
// tolerated means timeAdded plus the shortest tolerationSeconds among the
// tolerations matching it (negative counts as zero), as upstream's taint
// manager takes the shortest; only tolerations without seconds mean never.
func evictionTime(logger klog.Logger, pod *v1.Pod, taints []v1.Taint, since func(v1.Taint) time.Time) (at time.Time, ok bool) {
	for i := range taints {
		t := &taints[i]
		if t.Effect != v1.TaintEffectNoExecute {
			continue
		}
		start := since(*t)
		if t.TimeAdded != nil {
			start = t.TimeAdded.Time
		}
		tolerated := false
		var limit *int64
		for j := range pod.Spec.Tolerations {
			tol := &pod.Spec.Tolerations[j]
			if !tol.ToleratesTaint(logger, t, comparisonOperators) {
				continue
			}
			tolerated = true
			if tol.TolerationSeconds != nil && (limit == nil || *tol.TolerationSeconds < *limit) {
				s := max(*tol.TolerationSeconds, 0)
				limit = &s
			}
		}
		var deadline time.Time
		switch {
		case !tolerated:
			deadline = start // any time at or before now
		case limit == nil:
			continue
		default:
			deadline = start.Add(time.Duration(*limit) * time.Second)
		}
		if !ok || deadline.Before(at) {
			at, ok = deadline, true
		}
	}
	return at, ok
}
