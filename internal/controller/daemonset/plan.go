package daemonset

import (
	"sort"
	"time"

	"github.com/portal-net/portal/internal/controller/internal/podutil"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	intstrutil "k8s.io/apimachinery/pkg/util/intstr"
)

// Input is what one sync of a DaemonSet sees.
type Input struct {
	DS *appsv1.DaemonSet
	// Hash is the current template revision's hash.
	Hash  string
	Nodes []*v1.Node
	// Pods are the pods ds controls, terminating ones included.
	Pods []*v1.Pod
	Now  time.Time
}

// Plan is what a sync should change.
type Plan struct {
	// Create names the nodes that get a new pod at the current revision.
	Create []string
	Delete []*v1.Pod
	// RequeueAfter asks for another sync when a pod will have been ready
	// for minReadySeconds (zero: no timed follow-up needed).
	RequeueAfter time.Duration
}

// nodeState is one node from ds's point of view.
type nodeState struct {
	name      string
	run, keep bool
	// pods are ds's live pods for the node, oldest first.
	pods []*v1.Pod
}

// nodeStates groups live pods by node. Terminating pods are left out: they
// are already on their way and a replacement may start beside them.
func nodeStates(in Input) (nodes []nodeState, orphans []*v1.Pod) {
	byNode := map[string][]*v1.Pod{}
	for _, p := range in.Pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		byNode[TargetNode(p)] = append(byNode[TargetNode(p)], p)
	}
	for _, n := range in.Nodes {
		run, keep := ShouldRun(in.DS, n)
		pods := byNode[n.Name]
		delete(byNode, n.Name)
		sortOldestFirst(pods)
		nodes = append(nodes, nodeState{name: n.Name, run: run, keep: keep, pods: pods})
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].name < nodes[j].name })
	// Pods of deleted nodes, or pinned to nothing, can never run.
	for _, ps := range byNode {
		orphans = append(orphans, ps...)
	}
	sortOldestFirst(orphans)
	return nodes, orphans
}

func sortOldestFirst(pods []*v1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := pods[i], pods[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Name < b.Name
	})
}

// Compute decides creations and deletions: first every qualifying node gets
// exactly one running pod (failed ones replaced, extras and misplaced ones
// removed), then a RollingUpdate replaces old-revision pods within budget.
func Compute(in Input) Plan {
	var plan Plan
	nodes, orphans := nodeStates(in)
	plan.Delete = append(plan.Delete, orphans...)
	surge := rollingUpdate(in.DS) && maxSurge(in.DS, desired(nodes)) > 0
	for i := range nodes {
		n := &nodes[i]
		var running []*v1.Pod
		for _, p := range n.pods {
			if terminal(p) && n.keep {
				// Replaced below like a missing pod.
				plan.Delete = append(plan.Delete, p)
				continue
			}
			running = append(running, p)
		}
		switch {
		case !n.keep:
			plan.Delete = append(plan.Delete, running...)
			running = nil
		case len(running) == 0 && n.run:
			plan.Create = append(plan.Create, n.name)
		case len(running) > 1:
			keep := keepOnNode(running, in.Hash, surge)
			for _, p := range running {
				if !keep[p] {
					plan.Delete = append(plan.Delete, p)
				}
			}
			var kept []*v1.Pod
			for _, p := range running {
				if keep[p] {
					kept = append(kept, p)
				}
			}
			running = kept
		}
		n.pods = running
	}
	if rollingUpdate(in.DS) {
		roll(in, nodes, &plan)
	}
	return plan
}

// keepOnNode picks which of several pods on one node stay: the oldest, or
// while surging the oldest of each revision side (old and current) so that
// a surge replacement is not mistaken for a duplicate.
func keepOnNode(pods []*v1.Pod, hash string, surge bool) map[*v1.Pod]bool {
	keep := map[*v1.Pod]bool{}
	if !surge {
		keep[pods[0]] = true
		return keep
	}
	var haveNew, haveOld bool
	for _, p := range pods {
		if updated(p, hash) && !haveNew {
			keep[p], haveNew = true, true
		} else if !updated(p, hash) && !haveOld {
			keep[p], haveOld = true, true
		}
	}
	return keep
}

func rollingUpdate(ds *appsv1.DaemonSet) bool {
	return ds.Spec.UpdateStrategy.Type == "" || ds.Spec.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType
}

func desired(nodes []nodeState) int {
	c := 0
	for _, n := range nodes {
		if n.run {
			c++
		}
	}
	return c
}

// maxSurge and maxUnavailable scale percentages of the desired count,
// rounding up; with both zero one pod may be unavailable, as upstream.
func maxSurge(ds *appsv1.DaemonSet, desired int) int {
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ru == nil || ru.MaxSurge == nil {
		return 0
	}
	v, err := intstrutil.GetScaledValueFromIntOrPercent(ru.MaxSurge, desired, true)
	if err != nil {
		return 0
	}
	return v
}

func maxUnavailable(ds *appsv1.DaemonSet, desired int) int {
	v := 1
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.MaxUnavailable != nil {
		if got, err := intstrutil.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, desired, true); err == nil {
			v = got
		}
	}
	if v == 0 && maxSurge(ds, desired) == 0 {
		v = 1
	}
	return v
}

// roll replaces old-revision pods. Without surge an old pod is deleted
// first and its replacement created on the next sync, at most
// maxUnavailable nodes down at once (old pods that are down anyway go
// first, for free). With surge the replacement starts beside the old pod,
// on at most maxSurge nodes at once, and the old pod goes once the new one
// is available.
func roll(in Input, nodes []nodeState, plan *Plan) {
	ds, now := in.DS, in.Now
	minReady := time.Duration(ds.Spec.MinReadySeconds) * time.Second
	want := desired(nodes)
	surgeMax := maxSurge(ds, want)
	deleting := map[*v1.Pod]bool{}
	for _, p := range plan.Delete {
		deleting[p] = true
	}
	requeue := func(p *v1.Pod) {
		if d := untilAvailable(p, minReady, now); d > 0 && (plan.RequeueAfter == 0 || d < plan.RequeueAfter) {
			plan.RequeueAfter = d
		}
	}
	if surgeMax == 0 {
		budget := maxUnavailable(ds, want)
		unavailable := 0
		var spare, candidates []*v1.Pod
		for _, n := range nodes {
			if !n.run {
				continue
			}
			newPod, oldPod := split(n.pods, in.Hash)
			switch {
			case newPod == nil && oldPod == nil:
				unavailable++
			case newPod != nil:
				if !available(newPod, minReady, now) {
					unavailable++
					requeue(newPod)
				}
			case !available(oldPod, minReady, now):
				unavailable++
				spare = append(spare, oldPod)
			default:
				candidates = append(candidates, oldPod)
			}
		}
		room := max(0, budget-unavailable)
		spare = append(spare, candidates[:min(room, len(candidates))]...)
		for _, p := range spare {
			if !deleting[p] {
				plan.Delete = append(plan.Delete, p)
			}
		}
		return
	}
	surging := 0
	for _, n := range nodes {
		if newPod, oldPod := split(n.pods, in.Hash); n.run && newPod != nil && oldPod != nil && !available(newPod, minReady, now) {
			surging++
		}
	}
	for _, n := range nodes {
		if !n.run {
			continue
		}
		newPod, oldPod := split(n.pods, in.Hash)
		switch {
		case oldPod == nil:
		case newPod == nil && !available(oldPod, minReady, now):
			// Nothing to protect: replace at once, outside the budget.
			plan.Create = append(plan.Create, n.name)
		case newPod == nil && surging < surgeMax:
			surging++
			plan.Create = append(plan.Create, n.name)
		case newPod != nil && available(newPod, minReady, now):
			if !deleting[oldPod] {
				plan.Delete = append(plan.Delete, oldPod)
			}
		case newPod != nil:
			requeue(newPod)
		}
	}
}

// split returns the node's current-revision and old-revision pod (after
// keepOnNode there is at most one of each).
func split(pods []*v1.Pod, hash string) (newPod, oldPod *v1.Pod) {
	for _, p := range pods {
		if updated(p, hash) {
			if newPod == nil {
				newPod = p
			}
		} else if oldPod == nil {
			oldPod = p
		}
	}
	return newPod, oldPod
}

func updated(p *v1.Pod, hash string) bool {
	return p.Labels[appsv1.ControllerRevisionHashLabelKey] == hash
}

func terminal(p *v1.Pod) bool {
	return p.Status.Phase == v1.PodFailed || p.Status.Phase == v1.PodSucceeded
}

// available means bound, Ready, and Ready for at least minReady.
func available(p *v1.Pod, minReady time.Duration, now time.Time) bool {
	if p.Spec.NodeName == "" || p.DeletionTimestamp != nil || !podutil.Ready(p) {
		return false
	}
	return untilAvailable(p, minReady, now) <= 0
}

// untilAvailable is how long a Ready pod still has to stay Ready.
func untilAvailable(p *v1.Pod, minReady time.Duration, now time.Time) time.Duration {
	if minReady <= 0 {
		return 0
	}
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady && c.Status == v1.ConditionTrue {
			return c.LastTransitionTime.Add(minReady).Sub(now)
		}
	}
	return 0
}
