package daemonset

import (
	"time"

	"github.com/portal-net/portal/internal/controller/internal/podutil"
	appsv1 "k8s.io/api/apps/v1"
)

// ComputeStatus counts what `kubectl get ds` and `kubectl rollout status ds`
// show. Each qualifying node is judged by its oldest live pod, so a node in
// the middle of a surge counts as updated only once its old pod is gone.
func ComputeStatus(in Input) appsv1.DaemonSetStatus {
	minReady := time.Duration(in.DS.Spec.MinReadySeconds) * time.Second
	st := appsv1.DaemonSetStatus{
		ObservedGeneration: in.DS.Generation,
		CollisionCount:     in.DS.Status.CollisionCount,
		Conditions:         in.DS.Status.Conditions,
	}
	nodes, _ := nodeStates(in)
	for _, n := range nodes {
		scheduled := len(n.pods) > 0
		if !n.run {
			if scheduled {
				st.NumberMisscheduled++
			}
			continue
		}
		st.DesiredNumberScheduled++
		if !scheduled {
			continue
		}
		st.CurrentNumberScheduled++
		p := n.pods[0]
		if updated(p, in.Hash) {
			st.UpdatedNumberScheduled++
		}
		if podutil.Ready(p) && !terminal(p) {
			st.NumberReady++
			if available(p, minReady, in.Now) {
				st.NumberAvailable++
			}
		}
	}
	st.NumberUnavailable = st.DesiredNumberScheduled - st.NumberAvailable
	return st
}
