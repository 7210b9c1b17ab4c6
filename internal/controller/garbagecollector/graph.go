package garbagecollector

import (
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// object is the part of an object's metadata the graph keeps. Everything
// else (labels, annotations, managedFields, spec, status) is dropped so the
// graph's memory stays proportional to the number of objects.
type object struct {
	// Resource is what the object was observed through; it is how the
	// collector deletes or patches the object.
	Resource   schema.GroupVersionResource
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
	UID        types.UID
	Owners     []metav1.OwnerReference
	Deleting   bool // deletionTimestamp is set
	Finalizers []string
}

func (o object) gvk() schema.GroupVersionKind {
	return schema.FromAPIVersionAndKind(o.APIVersion, o.Kind)
}

func (o object) has(finalizer string) bool {
	for _, f := range o.Finalizers {
		if f == finalizer {
			return true
		}
	}
	return false
}

// deletingDependents reports an owner being deleted in the foreground.
func (o object) deletingDependents() bool {
	return o.Deleting && o.has(metav1.FinalizerDeleteDependents)
}

// orphaning reports an owner whose dependents must lose their reference to it.
func (o object) orphaning() bool { return o.Deleting && o.has(metav1.FinalizerOrphanDependents) }

// node is one UID in the graph. A virtual node stands for an owner that some
// dependent references but no watch has shown (yet); it exists only to index
// those dependents.
type node struct {
	obj        object
	observed   bool
	dependents map[types.UID]*node
}

// effects lists the work a graph change calls for.
type effects struct {
	// Attempt are UIDs to process: dependents whose owners must be checked,
	// or owners being deleted in the foreground that may now be free to go.
	Attempt []types.UID
	// Orphan are owners whose dependents must drop their references.
	Orphan []types.UID
}

func (e *effects) attempt(uid types.UID) { e.Attempt = append(e.Attempt, uid) }

// graph is the ownership graph. It is safe for concurrent use.
type graph struct {
	mu    sync.RWMutex
	nodes map[types.UID]*node
}

func newGraph() *graph { return &graph{nodes: map[types.UID]*node{}} }

// observe records the current state of obj, as seen by a watch.
func (g *graph) observe(obj object) effects {
	g.mu.Lock()
	defer g.mu.Unlock()
	var eff effects
	n := g.nodes[obj.UID]
	var old *object
	if n == nil {
		n = &node{dependents: map[types.UID]*node{}}
		g.nodes[obj.UID] = n
	} else if n.observed {
		prev := n.obj
		old = &prev
	}
	n.obj = obj
	n.observed = true

	var oldOwners []metav1.OwnerReference
	if old != nil {
		oldOwners = old.Owners
	}
	added, removed, changed := diffOwners(oldOwners, obj.Owners)
	for _, ref := range removed {
		g.unlinkLocked(n, ref.UID, &eff)
	}
	for _, ref := range added {
		owner := g.nodes[ref.UID]
		if owner == nil {
			owner = &node{dependents: map[types.UID]*node{}}
			g.nodes[ref.UID] = owner
		}
		owner.dependents[obj.UID] = n
	}
	// A dependent that stops (or starts) blocking a foreground owner may be
	// what that owner is waiting on.
	for _, ref := range changed {
		if owner := g.nodes[ref.UID]; owner != nil && owner.observed && owner.obj.deletingDependents() {
			eff.attempt(ref.UID)
		}
	}
	// Owners the watches have not shown must be confirmed by a live lookup;
	// a reference to a UID that never existed is only ever found this way.
	if old == nil || len(added) > 0 {
		for _, ref := range obj.Owners {
			if !ownerMatches(n, ref, g.nodes[ref.UID]) {
				eff.attempt(obj.UID)
				break
			}
		}
	}

	wasDeletingDependents := old != nil && old.deletingDependents()
	if obj.deletingDependents() && !wasDeletingDependents {
		eff.attempt(obj.UID)
		for uid := range n.dependents {
			eff.attempt(uid)
		}
	}
	wasOrphaning := old != nil && old.orphaning()
	if obj.orphaning() && !wasOrphaning {
		eff.Orphan = append(eff.Orphan, obj.UID)
	}
	return eff
}

// forget records that the object with uid is gone.
func (g *graph) forget(uid types.UID) effects {
	g.mu.Lock()
	defer g.mu.Unlock()
	var eff effects
	n := g.nodes[uid]
	if n == nil || !n.observed {
		return eff
	}
	for _, ref := range n.obj.Owners {
		g.unlinkLocked(n, ref.UID, &eff)
	}
	for dep := range n.dependents {
		eff.attempt(dep)
	}
	if len(n.dependents) == 0 {
		delete(g.nodes, uid)
	} else {
		// Keep indexing the dependents until they drop their references.
		n.observed = false
		n.obj = object{UID: uid}
	}
	return eff
}

// forgetResource drops every object observed through gvr; used when a
// resource disappears from discovery and its watch stops.
func (g *graph) forgetResource(gvr schema.GroupVersionResource) effects {
	g.mu.RLock()
	var uids []types.UID
	for uid, n := range g.nodes {
		if n.observed && n.obj.Resource == gvr {
			uids = append(uids, uid)
		}
	}
	g.mu.RUnlock()
	var eff effects
	for _, uid := range uids {
		e := g.forget(uid)
		eff.Attempt = append(eff.Attempt, e.Attempt...)
	}
	return eff
}

// unlinkLocked removes dependent n from owner's index. An owner being
// deleted in the foreground is reconsidered, as n may have been its last
// blocker.
func (g *graph) unlinkLocked(n *node, ownerUID types.UID, eff *effects) {
	owner := g.nodes[ownerUID]
	if owner == nil {
		return
	}
	delete(owner.dependents, n.obj.UID)
	if !owner.observed && len(owner.dependents) == 0 {
		delete(g.nodes, ownerUID)
		return
	}
	if owner.observed && owner.obj.deletingDependents() {
		eff.attempt(ownerUID)
	}
}

// get returns the observed object with uid.
func (g *graph) get(uid types.UID) (object, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	n := g.nodes[uid]
	if n == nil || !n.observed {
		return object{}, false
	}
	return n.obj, true
}

// dependent is an object referencing some owner, as the graph sees it.
type dependent struct {
	object
	// Blocking is the reference's blockOwnerDeletion.
	Blocking bool
	// HasDependents tells whether the dependent owns something in turn.
	HasDependents bool
}

// dependents returns the observed objects referencing uid.
func (g *graph) dependents(uid types.UID) []dependent {
	g.mu.RLock()
	defer g.mu.RUnlock()
	n := g.nodes[uid]
	if n == nil {
		return nil
	}
	out := make([]dependent, 0, len(n.dependents))
	for _, d := range n.dependents {
		if !d.observed {
			continue
		}
		dep := dependent{object: d.obj, HasDependents: len(d.dependents) > 0}
		for _, ref := range d.obj.Owners {
			if ref.UID == uid && ref.BlockOwnerDeletion != nil && *ref.BlockOwnerDeletion {
				dep.Blocking = true
			}
		}
		out = append(out, dep)
	}
	return out
}

// owner returns the observed owner ref points at, if the graph has it under
// the coordinates the reference names: the same group, kind and name, and
// for a namespaced owner the dependent's namespace.
func (g *graph) owner(dep object, ref metav1.OwnerReference) (object, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	n := g.nodes[dep.UID]
	o := g.nodes[ref.UID]
	if n == nil || !ownerMatches(n, ref, o) {
		return object{}, false
	}
	return o.obj, true
}

func ownerMatches(dep *node, ref metav1.OwnerReference, o *node) bool {
	if o == nil || !o.observed {
		return false
	}
	return o.obj.UID == ref.UID && o.obj.Name == ref.Name && o.obj.Kind == ref.Kind &&
		groupOf(o.obj.APIVersion) == groupOf(ref.APIVersion) &&
		(o.obj.Namespace == "" || o.obj.Namespace == dep.obj.Namespace)
}

func groupOf(apiVersion string) string {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return apiVersion
	}
	return gv.Group
}

// diffOwners compares two ownerReference lists by owner UID; changed are
// references whose blockOwnerDeletion differs.
func diffOwners(old, cur []metav1.OwnerReference) (added, removed, changed []metav1.OwnerReference) {
	oldBy := make(map[types.UID]metav1.OwnerReference, len(old))
	for _, r := range old {
		oldBy[r.UID] = r
	}
	curBy := make(map[types.UID]bool, len(cur))
	for _, r := range cur {
		curBy[r.UID] = true
		o, ok := oldBy[r.UID]
		switch {
		case !ok:
			added = append(added, r)
		case blocks(o) != blocks(r):
			changed = append(changed, r)
		}
	}
	for _, r := range old {
		if !curBy[r.UID] {
			removed = append(removed, r)
		}
	}
	return added, removed, changed
}

func blocks(r metav1.OwnerReference) bool {
	return r.BlockOwnerDeletion != nil && *r.BlockOwnerDeletion
}
