package fit

import (
	"math/rand/v2"

	v1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// MaxScore is the best a node can get from one scoring criterion.
const MaxScore int64 = 100

// Weights of the scoring criteria, after kube-scheduler's default profile:
// untolerated PreferNoSchedule taints weigh most, then spreading and
// preferred affinity, then free resources.
const (
	WeightTaints        = 3
	WeightSpread        = 2
	WeightNodeAffinity  = 2
	WeightLeastAllocate = 1
)

// Score ranks the feasible nodes for pod; the result is parallel to nodes.
// isPeer says whether a pod already on a node belongs to the same workload
// as pod (spreading counts those).
func Score(pod *v1.Pod, nodes []*NodeInfo, isPeer func(*v1.Pod) bool) []int64 {
	n := len(nodes)
	spread := make([]int64, n)
	taints := make([]int64, n)
	affinity := make([]int64, n)
	total := make([]int64, n)
	var prefer *nodeaffinity.PreferredSchedulingTerms
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil && len(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) > 0 {
		// Invalid terms were rejected by API validation; a parse error
		// here only loses the preference.
		prefer, _ = nodeaffinity.NewPreferredSchedulingTerms(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
	}
	for i, ni := range nodes {
		if isPeer != nil {
			spread[i] = int64(CountPeers(ni, isPeer))
		}
		taints[i] = int64(countIntolerablePreferNoSchedule(pod, ni.Node))
		if prefer != nil {
			affinity[i] = prefer.Score(ni.Node)
		}
	}
	// Fewer peers and fewer soft taints are better; more matched
	// preference weight is better.
	spread = normalize(spread, true)
	taints = normalize(taints, true)
	affinity = normalize(affinity, false)
	for i, ni := range nodes {
		total[i] = WeightSpread*spread[i] + WeightTaints*taints[i] + WeightNodeAffinity*affinity[i] +
			WeightLeastAllocate*LeastAllocated(pod, ni)
	}
	return total
}

// CountPeers counts the pods on the node that isPeer accepts.
func CountPeers(ni *NodeInfo, isPeer func(*v1.Pod) bool) int {
	c := 0
	for _, p := range ni.Pods {
		if isPeer(p) {
			c++
		}
	}
	return c
}

// LeastAllocated scores 0..MaxScore by the share of cpu and memory that
// would stay free with pod placed on the node (scoring defaults applied to
// request-less containers).
func LeastAllocated(pod *v1.Pod, ni *NodeInfo) int64 {
	cpu, mem := nonZeroRequests(pod)
	alloc := ni.Node.Status.Allocatable
	s := freeShare(alloc.Cpu().MilliValue(), ni.NonZeroCPU+cpu) + freeShare(alloc.Memory().Value(), ni.NonZeroMemory+mem)
	return s / 2
}

func freeShare(capacity, requested int64) int64 {
	if capacity <= 0 || requested > capacity {
		return 0
	}
	return (capacity - requested) * MaxScore / capacity
}

func countIntolerablePreferNoSchedule(pod *v1.Pod, node *v1.Node) int {
	c := 0
	for _, t := range node.Spec.Taints {
		if t.Effect != v1.TaintEffectPreferNoSchedule {
			continue
		}
		if !Tolerates(preferTolerations(pod.Spec.Tolerations), t) {
			c++
		}
	}
	return c
}

// preferTolerations keeps tolerations that can tolerate PreferNoSchedule:
// those for that effect or for every effect.
func preferTolerations(ts []v1.Toleration) []v1.Toleration {
	var out []v1.Toleration
	for _, t := range ts {
		if t.Effect == "" || t.Effect == v1.TaintEffectPreferNoSchedule {
			out = append(out, t)
		}
	}
	return out
}

// normalize maps raw counts onto 0..MaxScore relative to the largest; with
// reverse, the largest count scores 0 and zero scores MaxScore.
func normalize(raw []int64, reverse bool) []int64 {
	var max int64
	for _, v := range raw {
		if v > max {
			max = v
		}
	}
	out := make([]int64, len(raw))
	for i, v := range raw {
		switch {
		case max == 0 && reverse:
			out[i] = MaxScore
		case max == 0:
			out[i] = 0
		case reverse:
			out[i] = (max - v) * MaxScore / max
		default:
			out[i] = v * MaxScore / max
		}
	}
	return out
}

// Best returns the index of the highest score, picking uniformly among
// ties so equal nodes share load; -1 for no scores.
func Best(scores []int64, r *rand.Rand) int {
	best, seen := -1, 0
	for i, s := range scores {
		switch {
		case best < 0 || s > scores[best]:
			best, seen = i, 1
		case s == scores[best]:
			// Reservoir sampling over the ties seen so far.
			seen++
			if r.IntN(seen) == 0 {
				best = i
			}
		}
	}
	return best
}
