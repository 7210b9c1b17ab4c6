package statefulset

import (
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Revision is one template version of a set, by ControllerRevision name.
type Revision struct {
	Name     string
	Template *v1.PodTemplateSpec
}

// Input is everything one sync of a set decides on.
type Input struct {
	Set *appsv1.StatefulSet
	// Pods are the set's members (controlled by it, named after it).
	Pods []*v1.Pod
	// Current is the revision pods below the partition stay on; Update is
	// the one the template asks for.
	Current, Update Revision
	// CollisionCount is the collision count to report in status.
	CollisionCount int32
	Now            time.Time
}

// ActionKind says what an Action does to a pod.
type ActionKind string

const (
	// Create makes the pod of a missing ordinal.
	Create ActionKind = "create"
	// Delete removes a pod: scaled away, finished, or of an old revision.
	Delete ActionKind = "delete"
	// Relabel restores the identity labels of an existing pod.
	Relabel ActionKind = "update"
)

// Action is one write the controller should make.
type Action struct {
	Kind ActionKind
	Pod  *v1.Pod
	// Why is a short reason for logs and warning events.
	Why string
}

// Plan is the outcome of one sync.
type Plan struct {
	// Actions in the order they must be made.
	Actions []Action
	// Status is what the set's status should say, from the pods as observed.
	Status appsv1.StatefulSetStatus
	// Waiting says why an ordered rollout is paused, for logs and tests.
	Waiting string
	// RequeueAfter asks for another sync when a pod turns available by the
	// passage of minReadySeconds alone, which no watch event announces.
	RequeueAfter time.Duration
}

// Why values; failed and finished pods also raise a warning event.
const (
	whyScaleDown = "scale down"
	whyUpdate    = "update"
	whyFailed    = "failed"
	whySucceeded = "succeeded"
	whyMissing   = "missing"
	whyIdentity  = "identity"
)

// Decide computes the next actions for a set. It is pure: the same input
// always gives the same plan, and nothing is written.
func Decide(in Input) Plan {
	set := in.Set
	minReady := time.Duration(set.Spec.MinReadySeconds) * time.Second
	p := Plan{Status: computeStatus(in, minReady)}
	p.RequeueAfter = nextAvailable(in.Pods, minReady, in.Now)
	if set.DeletionTimestamp != nil {
		// Pods go with their owner through garbage collection; a set being
		// deleted must not resurrect them.
		return p
	}

	start, n := startOrdinal(set), replicaCount(set)
	replicas := make([]*v1.Pod, n)
	var condemned []*v1.Pod
	for _, pod := range in.Pods {
		if o := ordinalOf(pod); o >= start && o < start+n {
			replicas[o-start] = pod
		} else if o >= 0 {
			condemned = append(condemned, pod)
		}
	}
	// Highest ordinal first: scale down removes from the top.
	sort.Slice(condemned, func(i, j int) bool { return ordinalOf(condemned[i]) > ordinalOf(condemned[j]) })

	partition := 0
	if ru := set.Spec.UpdateStrategy.RollingUpdate; set.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType && ru != nil && ru.Partition != nil {
		partition = int(*ru.Partition)
	}
	created := map[*v1.Pod]bool{}
	for i := range replicas {
		if replicas[i] != nil {
			continue
		}
		// Below the partition a lost pod comes back as it was, at the
		// current revision; only the update moves ordinals forward.
		rev := in.Update
		if set.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType && i < partition {
			rev = in.Current
		}
		replicas[i] = newPod(set, rev.Template, rev.Name, start+i)
		created[replicas[i]] = true
	}

	// The unhealthy pod with the lowest ordinal may be removed by scale
	// down even in ordered mode; any other unhealthy pod blocks it.
	var firstUnhealthy *v1.Pod
	for _, pod := range append(append([]*v1.Pod(nil), replicas...), condemned...) {
		if !isHealthy(pod) && (firstUnhealthy == nil || ordinalOf(pod) < ordinalOf(firstUnhealthy)) {
			firstUnhealthy = pod
		}
	}

	ordered := set.Spec.PodManagementPolicy != appsv1.ParallelPodManagement
	for _, pod := range replicas {
		switch {
		case created[pod]:
			p.Actions = append(p.Actions, Action{Kind: Create, Pod: pod, Why: whyMissing})
			if ordered {
				p.Waiting = "created " + pod.Name
				return p
			}
			continue
		case isFinished(pod):
			// A finished pod never runs again; its ordinal needs a new one,
			// which the next sync creates once this one is gone.
			if !isTerminating(pod) {
				why := whyFailed
				if pod.Status.Phase == v1.PodSucceeded {
					why = whySucceeded
				}
				p.Actions = append(p.Actions, Action{Kind: Delete, Pod: pod, Why: why})
			}
			if ordered {
				p.Waiting = "replacing finished " + pod.Name
				return p
			}
			continue
		}
		if ordered {
			if w := blocked(pod, minReady, in.Now); w != "" {
				p.Waiting = w
				return p
			}
		}
		if !identityMatches(set, pod) {
			fixed := pod.DeepCopy()
			setIdentity(set, fixed)
			p.Actions = append(p.Actions, Action{Kind: Relabel, Pod: fixed, Why: whyIdentity})
		}
	}

	for _, pod := range condemned {
		if isTerminating(pod) {
			if ordered {
				p.Waiting = pod.Name + " is terminating"
				return p
			}
			continue
		}
		if ordered && pod != firstUnhealthy {
			if w := blocked(pod, minReady, in.Now); w != "" {
				p.Waiting = w
				return p
			}
		}
		p.Actions = append(p.Actions, Action{Kind: Delete, Pod: pod, Why: whyScaleDown})
		if ordered {
			p.Waiting = "scaling down " + pod.Name
			return p
		}
	}

	if set.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		// Users replace pods themselves; recreated ones get the new template.
		return p
	}
	p.Actions = append(p.Actions, rollingUpdate(set, replicas, in.Update.Name, partition, minReady, in.Now, &p)...)
	return p
}

// blocked says why an ordered rollout cannot pass pod, or "".
func blocked(pod *v1.Pod, minReady time.Duration, now time.Time) string {
	switch {
	case isTerminating(pod):
		return pod.Name + " is terminating"
	case !isRunningAndReady(pod):
		return pod.Name + " is not running and ready"
	case !isAvailable(pod, minReady, now):
		return pod.Name + " is not available yet"
	}
	return ""
}

// rollingUpdate deletes pods of old revisions from the highest ordinal down
// to the partition; their replacements come from the update revision on a
// later sync. Without maxUnavailable one pod at a time is replaced, each
// waiting for the one above it to be healthy again.
func rollingUpdate(set *appsv1.StatefulSet, replicas []*v1.Pod, update string, partition int, minReady time.Duration, now time.Time, p *Plan) []Action {
	var out []Action
	ru := set.Spec.UpdateStrategy.RollingUpdate
	if ru == nil || ru.MaxUnavailable == nil {
		for i := len(replicas) - 1; i >= partition; i-- {
			pod := replicas[i]
			if revisionOf(pod) != update && !isTerminating(pod) {
				p.Waiting = "updating " + pod.Name
				return append(out, Action{Kind: Delete, Pod: pod, Why: whyUpdate})
			}
			if !isHealthy(pod) {
				p.Waiting = "waiting for " + pod.Name + " to be updated and ready"
				return out
			}
		}
		return out
	}

	maxUnavailable := resolveMaxUnavailable(ru.MaxUnavailable, len(replicas))
	unavailable := 0
	for _, pod := range replicas {
		if !isHealthy(pod) || !isAvailable(pod, minReady, now) {
			unavailable++
		}
	}
	budget := maxUnavailable - unavailable
	if budget <= 0 {
		p.Waiting = "maxUnavailable reached"
		return out
	}
	for i := len(replicas) - 1; i >= partition && budget > 0; i-- {
		pod := replicas[i]
		if revisionOf(pod) != update && !isTerminating(pod) {
			out = append(out, Action{Kind: Delete, Pod: pod, Why: whyUpdate})
			budget--
		}
	}
	return out
}

// resolveMaxUnavailable turns maxUnavailable into a pod count; percentages
// round down, and at least one pod may always be unavailable or the update
// could never start.
func resolveMaxUnavailable(v *intstr.IntOrString, replicas int) int {
	n, err := intstr.GetScaledValueFromIntOrPercent(v, replicas, false)
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// computeStatus counts the pods as observed; writes made in this sync show
// up in the next one, which their watch events trigger.
func computeStatus(in Input, minReady time.Duration) appsv1.StatefulSetStatus {
	set := in.Set
	s := appsv1.StatefulSetStatus{
		ObservedGeneration: set.Generation,
		CurrentRevision:    in.Current.Name,
		UpdateRevision:     in.Update.Name,
		CollisionCount:     &in.CollisionCount,
		Conditions:         set.Status.Conditions,
	}
	for _, pod := range in.Pods {
		s.Replicas++
		if isRunningAndReady(pod) {
			s.ReadyReplicas++
			if isAvailable(pod, minReady, in.Now) {
				s.AvailableReplicas++
			}
		}
		if !isTerminating(pod) {
			if revisionOf(pod) == in.Current.Name {
				s.CurrentReplicas++
			}
			if revisionOf(pod) == in.Update.Name {
				s.UpdatedReplicas++
			}
		}
	}
	// A finished rolling update makes the update revision current; from then
	// on pods below a partition are recreated from it too.
	if set.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType &&
		s.UpdatedReplicas == s.Replicas && s.ReadyReplicas == s.Replicas {
		s.CurrentReplicas = s.UpdatedReplicas
		s.CurrentRevision = s.UpdateRevision
	}
	return s
}

// nextAvailable is how long until the next ready pod becomes available, or
// zero when none is waiting on minReadySeconds.
func nextAvailable(pods []*v1.Pod, minReady time.Duration, now time.Time) time.Duration {
	var next time.Duration
	for _, pod := range pods {
		if d := availableIn(pod, minReady, now); d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	return next
}
