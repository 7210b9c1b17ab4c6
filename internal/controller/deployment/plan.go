package deployment

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// resize is one planned ReplicaSet size change. A plan is a list of them in
// the order they should be written.
type resize struct {
	RS *appsv1.ReplicaSet
	To int32
}

// fenceposts resolves maxSurge and maxUnavailable against desired: surge
// rounds up, unavailability rounds down. When both end up 0 (rounding can
// do that even though validation forbids writing both as 0), one pod may be
// unavailable so the rollout can move at all.
func fenceposts(surge, unavailable *intstr.IntOrString, desired int32) (int32, int32, error) {
	zero := intstr.FromInt32(0)
	s, err := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(surge, zero), int(desired), true)
	if err != nil {
		return 0, 0, fmt.Errorf("maxSurge: %w", err)
	}
	u, err := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(unavailable, zero), int(desired), false)
	if err != nil {
		return 0, 0, fmt.Errorf("maxUnavailable: %w", err)
	}
	if s == 0 && u == 0 {
		u = 1
	}
	return int32(s), int32(u), nil
}

func isRolling(d *appsv1.Deployment) bool {
	return d.Spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType
}

// maxSurge is how many pods above spec.replicas a rollout may run; 0 for
// Recreate. Invalid values (which validation rejects) count as 0.
func maxSurge(d *appsv1.Deployment) int32 {
	if !isRolling(d) || d.Spec.Strategy.RollingUpdate == nil {
		return 0
	}
	s, _, _ := fenceposts(d.Spec.Strategy.RollingUpdate.MaxSurge, d.Spec.Strategy.RollingUpdate.MaxUnavailable, desired(d))
	return s
}

// maxUnavailable is how many of spec.replicas may be unavailable during a
// rollout, never more than spec.replicas.
func maxUnavailable(d *appsv1.Deployment) int32 {
	n := desired(d)
	if !isRolling(d) || d.Spec.Strategy.RollingUpdate == nil || n == 0 {
		return 0
	}
	_, u, _ := fenceposts(d.Spec.Strategy.RollingUpdate.MaxSurge, d.Spec.Strategy.RollingUpdate.MaxUnavailable, n)
	return min(u, n)
}

// newRSReplicas is the size the new ReplicaSet may grow to now: with
// RollingUpdate as far as the surge allows on top of every existing pod,
// never beyond spec.replicas; with Recreate straight to spec.replicas.
func newRSReplicas(d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) int32 {
	if !isRolling(d) {
		return desired(d)
	}
	current := sum(all, replicas)
	limit := desired(d) + maxSurge(d)
	if current >= limit {
		return replicas(newRS)
	}
	return replicas(newRS) + min(limit-current, desired(d)-replicas(newRS))
}

// planOldScaleDown decides how far old ReplicaSets may shrink in one
// rolling-update step. First it removes old replicas that are not available
// anyway (oldest ReplicaSet first) — they add nothing to availability and
// may be stuck — within the room left by maxUnavailable after counting the
// new ReplicaSet's unavailable pods. Then it removes available old replicas,
// but only as many as keep available pods at or above
// spec.replicas-maxUnavailable.
func planOldScaleDown(d *appsv1.Deployment, old []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) []resize {
	oldPods := sum(old, replicas)
	if oldPods == 0 {
		return nil
	}
	minAvailable := desired(d) - maxUnavailable(d)
	newUnavailable := replicas(newRS)
	if newRS != nil {
		newUnavailable -= newRS.Status.AvailableReplicas
	}
	room := oldPods + replicas(newRS) - minAvailable - newUnavailable
	if room <= 0 {
		return nil
	}
	sorted := append([]*appsv1.ReplicaSet(nil), old...)
	sortOldestFirst(sorted)
	size := make(map[*appsv1.ReplicaSet]int32, len(sorted))
	for _, rs := range sorted {
		size[rs] = replicas(rs)
	}

	var cleaned int32
	for _, rs := range sorted {
		if cleaned >= room {
			break
		}
		unhealthy := size[rs] - rs.Status.AvailableReplicas
		if size[rs] == 0 || unhealthy <= 0 {
			continue
		}
		n := min(room-cleaned, unhealthy)
		size[rs] -= n
		cleaned += n
	}

	available := sum(old, availReplicas)
	if newRS != nil {
		available += newRS.Status.AvailableReplicas
	}
	if budget := available - minAvailable; budget > 0 {
		var done int32
		for _, rs := range sorted {
			if done >= budget {
				break
			}
			if size[rs] == 0 {
				continue
			}
			n := min(size[rs], budget-done)
			size[rs] -= n
			done += n
		}
	}

	var plan []resize
	for _, rs := range sorted {
		if size[rs] != replicas(rs) {
			plan = append(plan, resize{RS: rs, To: size[rs]})
		}
	}
	return plan
}

// activeOrLatest returns the only ReplicaSet with replicas, or, when none
// has any, the new one or else the newest old one; nil when several are
// active.
func activeOrLatest(newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) *appsv1.ReplicaSet {
	if newRS == nil && len(old) == 0 {
		return nil
	}
	act := active(withNew(old, newRS))
	switch len(act) {
	case 0:
		if newRS != nil {
			return newRS
		}
		newest := old[0]
		for _, rs := range old[1:] {
			if olderThan(newest, rs) {
				newest = rs
			}
		}
		return newest
	case 1:
		return act[0]
	default:
		return nil
	}
}

// saturated reports whether the new ReplicaSet already is the whole
// Deployment: sized, annotated and available at spec.replicas.
func saturated(d *appsv1.Deployment, newRS *appsv1.ReplicaSet) bool {
	if newRS == nil {
		return false
	}
	want, ok := intAnnotation(newRS, DesiredReplicasAnnotation)
	n := desired(d)
	return ok && want == n && replicas(newRS) == n && newRS.Status.AvailableReplicas == n
}

// planScale handles a change of spec.replicas (also while paused or
// mid-rollout). With one active ReplicaSet it simply takes the new size.
// During a rolling update every active ReplicaSet gets its share of the
// difference, proportional to its size relative to the max-replicas it was
// last annotated with, and the rounding leftover goes to the largest one.
// Every active ReplicaSet is listed in that case, even at unchanged size,
// so that its replica annotations are brought up to date.
func planScale(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) []resize {
	if one := activeOrLatest(newRS, old); one != nil {
		if replicas(one) == desired(d) {
			return nil
		}
		return []resize{{RS: one, To: desired(d)}}
	}
	if saturated(d, newRS) {
		var plan []resize
		for _, rs := range active(old) {
			plan = append(plan, resize{RS: rs, To: 0})
		}
		return plan
	}
	if !isRolling(d) {
		return nil
	}
	all := active(withNew(old, newRS))
	var allowed int32
	if desired(d) > 0 {
		allowed = desired(d) + maxSurge(d)
	}
	toAdd := allowed - sum(all, replicas)
	if toAdd != 0 {
		sortForScale(all, toAdd > 0)
	}
	size := make([]int32, len(all))
	var added int32
	for i, rs := range all {
		p := proportion(d, rs, toAdd, added)
		size[i] = replicas(rs) + p
		added += p
	}
	if toAdd != 0 && len(all) > 0 {
		size[0] = max(size[0]+toAdd-added, 0)
	}
	plan := make([]resize, len(all))
	for i, rs := range all {
		plan[i] = resize{RS: rs, To: size[i]}
	}
	return plan
}

// proportion is rs's share of toAdd, bounded by what is still left to add
// (or remove) after added.
func proportion(d *appsv1.Deployment, rs *appsv1.ReplicaSet, toAdd, added int32) int32 {
	if replicas(rs) == 0 || toAdd == 0 || toAdd == added {
		return 0
	}
	left := toAdd - added
	var share int32
	if desired(d) == 0 {
		share = -replicas(rs)
	} else {
		total := desired(d) + maxSurge(d)
		was, ok := intAnnotation(rs, MaxReplicasAnnotation)
		if !ok || was == 0 {
			was = d.Status.Replicas
		}
		if was == 0 {
			return 0
		}
		share = int32(math.Round(float64(replicas(rs))*float64(total)/float64(was))) - replicas(rs)
	}
	if toAdd > 0 {
		return min(share, left)
	}
	return max(share, left)
}

// replicaAnnotationsStale reports whether rs's desired/max replica
// annotations differ from the Deployment's current values.
func replicaAnnotationsStale(rs *appsv1.ReplicaSet, desiredN, maxN int32) bool {
	return rs.Annotations[DesiredReplicasAnnotation] != strconv.Itoa(int(desiredN)) ||
		rs.Annotations[MaxReplicasAnnotation] != strconv.Itoa(int(maxN))
}

func setReplicaAnnotations(rs *appsv1.ReplicaSet, desiredN, maxN int32) {
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	rs.Annotations[DesiredReplicasAnnotation] = strconv.Itoa(int(desiredN))
	rs.Annotations[MaxReplicasAnnotation] = strconv.Itoa(int(maxN))
}

// setNewRSAnnotations brings the new ReplicaSet's annotations in line with
// the Deployment: copied Deployment annotations (change-cause among them),
// the revision, and for a ReplicaSet that served an older revision before
// (an undo) that older number appended to revision-history. A ReplicaSet
// being created also gets its replica annotations. It reports a change.
func setNewRSAnnotations(d *appsv1.Deployment, rs *appsv1.ReplicaSet, newRevision int64, exists bool) bool {
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	changed := false
	for k, v := range d.Annotations {
		if notCopied[k] || rs.Annotations[k] == v {
			continue
		}
		rs.Annotations[k] = v
		changed = true
	}
	oldRev := rs.Annotations[RevisionAnnotation]
	var oldN int64
	if oldRev != "" {
		n, err := strconv.ParseInt(oldRev, 10, 64)
		if err != nil {
			// Someone wrote garbage; rewriting it could lose history.
			return changed
		}
		oldN = n
	}
	if oldN < newRevision {
		rs.Annotations[RevisionAnnotation] = strconv.FormatInt(newRevision, 10)
		changed = true
		if exists {
			rs.Annotations[RevisionHistoryAnnotation] = appendHistory(rs.Annotations[RevisionHistoryAnnotation], oldRev)
		}
	}
	if !exists {
		setReplicaAnnotations(rs, desired(d), desired(d)+maxSurge(d))
		changed = true
	}
	return changed
}

// appendHistory adds rev to a comma-separated revision history, dropping
// the oldest entries to stay within maxRevisionHistoryChars.
func appendHistory(history, rev string) string {
	if history == "" {
		return rev
	}
	entries := strings.Split(history, ",")
	length := len(history) + 1 + len(rev)
	start := 0
	for length > maxRevisionHistoryChars && start < len(entries) {
		length -= len(entries[start]) + 1
		start++
	}
	if length > maxRevisionHistoryChars {
		return history
	}
	return strings.Join(append(entries[start:], rev), ",")
}
