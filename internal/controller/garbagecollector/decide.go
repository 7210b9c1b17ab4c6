package garbagecollector

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ownerState is what a live lookup (or the graph) says about one owner.
type ownerState int

const (
	// ownerPresent: the owner exists and is not waiting for its dependents.
	ownerPresent ownerState = iota
	// ownerAbsent: no object with the reference's UID exists where the
	// reference points (404, or the name now belongs to another UID).
	ownerAbsent
	// ownerWaiting: the owner exists, is being deleted in the foreground and
	// waits for its dependents to go.
	ownerWaiting
)

// classifiedRef pairs an ownerReference with what was found behind it.
type classifiedRef struct {
	Ref   metav1.OwnerReference
	State ownerState
}

// plan is what to do with one dependent. The steps run in order: Patch (if
// Owners is non-nil) then Delete.
type plan struct {
	// Owners, when non-nil, is the new ownerReferences list to write.
	Owners []metav1.OwnerReference
	// Delete asks for the dependent's deletion with Policy.
	Delete bool
	Policy metav1.DeletionPropagation
}

func (p plan) noop() bool { return p.Owners == nil && !p.Delete }

// decide chooses what happens to a dependent given its owners' states.
//
//   - An existing owner keeps the dependent; references to absent owners and
//     to owners waiting in the foreground are removed, the latter because the
//     waiting owner would otherwise stay blocked on an object that is not
//     going away.
//   - With no existing owner the dependent is deleted. If some owner waits for
//     it in the foreground and it has dependents itself, it is deleted in the
//     foreground too so the wait covers the whole chain; when a dependent of
//     its own is already deleting in the foreground, its references first
//     stop blocking, which breaks a possible cycle of foreground waits.
//   - Otherwise a finalizer the dependent already carries picks the policy,
//     and Background is the default.
func decide(dep object, refs []classifiedRef, hasDependents, dependentDeletingDependents bool) plan {
	var present, absent, waiting []types.UID
	for _, r := range refs {
		switch r.State {
		case ownerPresent:
			present = append(present, r.Ref.UID)
		case ownerAbsent:
			absent = append(absent, r.Ref.UID)
		case ownerWaiting:
			waiting = append(waiting, r.Ref.UID)
		}
	}
	switch {
	case len(refs) == 0:
		return plan{}
	case len(present) > 0:
		if len(absent) == 0 && len(waiting) == 0 {
			return plan{}
		}
		return plan{Owners: withoutOwners(dep.Owners, append(absent, waiting...))}
	case len(waiting) > 0 && hasDependents:
		p := plan{Delete: true, Policy: metav1.DeletePropagationForeground}
		if dependentDeletingDependents {
			p.Owners = unblocked(dep.Owners)
		}
		return p
	}
	p := plan{Delete: true, Policy: metav1.DeletePropagationBackground}
	switch {
	case dep.has(metav1.FinalizerOrphanDependents):
		p.Policy = metav1.DeletePropagationOrphan
	case dep.has(metav1.FinalizerDeleteDependents):
		p.Policy = metav1.DeletePropagationForeground
	}
	return p
}

// foregroundPlan decides for an owner being deleted in the foreground:
// either its foregroundDeletion finalizer can go (nothing blocks it any
// more), or the blocking dependents not yet being deleted must be processed.
func foregroundPlan(deps []dependent) (removeFinalizer bool, process []types.UID) {
	blocked := false
	for _, d := range deps {
		if !d.Blocking {
			continue
		}
		blocked = true
		// A dependent deleting in the background or held by some other
		// finalizer is on its way; one deleting in the foreground is driven
		// by its own sync. Only live ones need a push.
		if !d.Deleting {
			process = append(process, d.UID)
		}
	}
	return !blocked, process
}

// withoutOwners returns refs minus those pointing at uids, never nil so an
// empty result still means "write an empty list".
func withoutOwners(refs []metav1.OwnerReference, uids []types.UID) []metav1.OwnerReference {
	drop := make(map[types.UID]bool, len(uids))
	for _, u := range uids {
		drop[u] = true
	}
	out := []metav1.OwnerReference{}
	for _, r := range refs {
		if !drop[r.UID] {
			out = append(out, r)
		}
	}
	return out
}

// unblocked returns refs with every blockOwnerDeletion cleared.
func unblocked(refs []metav1.OwnerReference) []metav1.OwnerReference {
	out := make([]metav1.OwnerReference, len(refs))
	no := false
	for i, r := range refs {
		out[i] = r
		if blocks(r) {
			out[i].BlockOwnerDeletion = &no
		}
	}
	return out
}

// withoutFinalizer returns finalizers minus f, never nil.
func withoutFinalizer(finalizers []string, f string) []string {
	out := []string{}
	for _, x := range finalizers {
		if x != f {
			out = append(out, x)
		}
	}
	return out
}
