package replicaset

import (
	"math/bits"
	"sort"
	"strconv"
	"time"

	"github.com/portal-net/portal/internal/controller/internal/podutil"
	v1 "k8s.io/api/core/v1"
)

// podDeletionCostAnnotation lets users say which pods to remove first on
// scale-down (lower cost first), as upstream does.
const podDeletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost"

// podsToDelete picks the n least valuable pods of pods. colocated counts, per
// node, the active pods of the owner and its siblings (ReplicaSets of the same
// Deployment), so that doubled-up nodes lose pods first. pods is not
// modified.
func podsToDelete(pods []*v1.Pod, colocated map[string]int, n int, now time.Time) []*v1.Pod {
	if n >= len(pods) {
		return append([]*v1.Pod(nil), pods...)
	}
	sorted := append([]*v1.Pod(nil), pods...)
	sort.SliceStable(sorted, func(i, j int) bool {
		return lessValuable(sorted[i], sorted[j], colocated, now)
	})
	return sorted[:n]
}

// lessValuable orders pods by how cheap they are to lose: a pod that is not
// yet doing work, or is doing it on a crowded node, or has been doing it
// only briefly, goes before one that has served for long.
func lessValuable(a, b *v1.Pod, colocated map[string]int, now time.Time) bool {
	// Unscheduled pods cost nothing to lose.
	if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
		return a.Spec.NodeName == ""
	}
	// Pending < Unknown < Running.
	if pa, pb := phaseRank(a.Status.Phase), phaseRank(b.Status.Phase); pa != pb {
		return pa < pb
	}
	readyA, readyB := podutil.Ready(a), podutil.Ready(b)
	if readyA != readyB {
		return !readyA
	}
	if ca, cb := deletionCost(a), deletionCost(b); ca != cb {
		return ca < cb
	}
	// More pods of the same family on the node: lose this one first.
	if ra, rb := colocated[a.Spec.NodeName], colocated[b.Spec.NodeName]; ra != rb {
		return ra > rb
	}
	// Ready for less time first. Ages are compared on a log scale so that
	// pods started within the same rollout wave count as equally old and
	// later criteria (restarts) decide between them.
	if readyA && readyB {
		if ta, tb := readySince(a), readySince(b); ta != tb {
			if ba, bb := ageBucket(ta, now), ageBucket(tb, now); ba != bb {
				return ba < bb
			}
		}
	}
	if ra, rb := restarts(a), restarts(b); ra != rb {
		return ra > rb
	}
	if ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time; !ta.Equal(tb) {
		if ba, bb := ageBucket(ta, now), ageBucket(tb, now); ba != bb {
			return ba < bb
		}
	}
	// A fixed tie-break keeps the choice stable across syncs.
	return a.UID < b.UID
}

func phaseRank(p v1.PodPhase) int {
	switch p {
	case v1.PodPending, "":
		return 0
	case v1.PodUnknown:
		return 1
	case v1.PodRunning:
		return 2
	}
	return 3
}

// deletionCost reads the annotation; invalid values count as 0 (they are
// rejected at admission upstream).
func deletionCost(p *v1.Pod) int32 {
	s, ok := p.Annotations[podDeletionCostAnnotation]
	if !ok {
		return 0
	}
	c, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0
	}
	return int32(c)
}

func readySince(p *v1.Pod) time.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady && c.Status == v1.ConditionTrue {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

// ageBucket is floor(log2(age in seconds))+1; a zero time (unknown) and a
// future time are younger than anything.
func ageBucket(t, now time.Time) int {
	if t.IsZero() {
		return -1
	}
	d := now.Sub(t)
	if d <= 0 {
		return 0
	}
	return bits.Len64(uint64(d / time.Second))
}

// restarts is the highest restart count of the pod's containers.
func restarts(p *v1.Pod) int32 {
	var m int32
	for _, cs := range p.Status.ContainerStatuses {
		m = max(m, cs.RestartCount)
	}
	return m
}
