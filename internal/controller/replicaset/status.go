package replicaset

import (
	"time"

	"github.com/portal-net/portal/internal/controller/internal/podutil"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
)

// replicaFailure is the condition type both kinds use when pods cannot be
// created or deleted.
const replicaFailure = "ReplicaFailure"

// statusInput is what the status is computed from.
type statusInput struct {
	Owner owner
	// Active are the owner's claimed, active pods.
	Active []*v1.Pod
	// Terminating are the owner's pods being deleted; used only when the
	// kind reports TerminatingReplicas.
	Terminating     []*v1.Pod
	WithTerminating bool
	// ManageErr is the error of this sync's creates or deletes, if any.
	ManageErr error
	Now       time.Time
}

// computeStatus returns the owner's new status and, when some ready pods are
// not available yet, how long until the first of them becomes available (0
// otherwise), so the caller can look again then: no pod event will mark
// that moment.
func computeStatus(in statusInput) (replicaStatus, time.Duration) {
	o := in.Owner
	st := replicaStatus{
		Replicas:           int32(len(in.Active)),
		ObservedGeneration: o.GetGeneration(),
	}
	var template labels.Selector
	if t := o.Template(); t != nil {
		template = labels.SelectorFromSet(t.Labels)
	}
	minReady := time.Duration(o.MinReadySeconds()) * time.Second
	var wait time.Duration
	for _, p := range in.Active {
		// "Fully labeled" pods carry every template label, not just the
		// selector's: pods created from an older template may lack some.
		if template != nil && template.Matches(labels.Set(p.Labels)) {
			st.FullyLabeledReplicas++
		}
		if !podutil.Ready(p) {
			continue
		}
		st.ReadyReplicas++
		left, ok := availableIn(p, minReady, in.Now)
		switch {
		case ok && left <= 0:
			st.AvailableReplicas++
		case ok && (wait == 0 || left < wait):
			wait = left
		}
	}
	if in.WithTerminating {
		st.TerminatingReplicas = ptr.To(int32(len(in.Terminating)))
	}
	st.Conditions = failureConditions(o.Status().Conditions, in.ManageErr, len(in.Active) > int(o.Replicas()), in.Now)
	return st, wait
}

// availableIn returns how long until the ready pod p has been ready for
// minReady. ok is false when that moment is unknown (a Ready condition
// without a transition time): such a pod only counts once minReady is 0.
func availableIn(p *v1.Pod, minReady time.Duration, now time.Time) (left time.Duration, ok bool) {
	if minReady == 0 {
		return 0, true
	}
	since := readySince(p)
	if since.IsZero() {
		return 0, false
	}
	left = since.Add(minReady).Sub(now)
	if left < 0 {
		left = 0
	}
	if left == 0 && !since.Add(minReady).Before(now) {
		// Exactly at the boundary the pod is not available yet.
		left = time.Nanosecond
	}
	return left, true
}

// failureConditions sets ReplicaFailure while creates or deletes fail and
// removes it once a sync manages the pods without error. An existing
// failure condition is kept as is, so a flapping error does not rewrite
// status on every sync.
func failureConditions(old []condition, manageErr error, tooMany bool, now time.Time) []condition {
	idx := -1
	for i, c := range old {
		if c.Type == replicaFailure {
			idx = i
		}
	}
	switch {
	case manageErr != nil && idx < 0:
		reason := "FailedCreate"
		if tooMany {
			reason = "FailedDelete"
		}
		out := append([]condition(nil), old...)
		return append(out, condition{
			Type:               replicaFailure,
			Status:             v1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(now),
			Reason:             reason,
			Message:            manageErr.Error(),
		})
	case manageErr == nil && idx >= 0:
		out := append([]condition(nil), old[:idx]...)
		return append(out, old[idx+1:]...)
	}
	return old
}

// statusEqual reports whether writing st over cur would change nothing a
// reader sees; LastTransitionTime is compared at the API's one-second
// precision.
func statusEqual(cur, st replicaStatus) bool {
	if cur.Replicas != st.Replicas || cur.FullyLabeledReplicas != st.FullyLabeledReplicas ||
		cur.ReadyReplicas != st.ReadyReplicas || cur.AvailableReplicas != st.AvailableReplicas ||
		!ptr.Equal(cur.TerminatingReplicas, st.TerminatingReplicas) ||
		cur.ObservedGeneration != st.ObservedGeneration || len(cur.Conditions) != len(st.Conditions) {
		return false
	}
	for i := range cur.Conditions {
		a, b := cur.Conditions[i], st.Conditions[i]
		ta, tb := a.LastTransitionTime.Rfc3339Copy(), b.LastTransitionTime.Rfc3339Copy()
		if a.Type != b.Type || a.Status != b.Status || a.Reason != b.Reason || a.Message != b.Message || !ta.Equal(&tb) {
			return false
		}
	}
	return true
}

// isActive reports whether p counts toward replicas: not terminal and not
// being deleted.
func isActive(p *v1.Pod) bool {
	return p.Status.Phase != v1.PodSucceeded && p.Status.Phase != v1.PodFailed && p.DeletionTimestamp == nil
}

// isTerminating reports whether p is being deleted but may still run.
func isTerminating(p *v1.Pod) bool {
	return p.DeletionTimestamp != nil && p.Status.Phase != v1.PodSucceeded && p.Status.Phase != v1.PodFailed
}
