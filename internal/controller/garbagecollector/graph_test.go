package garbagecollector

import (
	"reflect"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// step is one watch event: observe obj, or forget uid.
type step struct {
	obj    *object
	forget types.UID
}

func cm(ns, name string, owners ...metav1.OwnerReference) object {
	return object{APIVersion: "v1", Kind: "ConfigMap", Namespace: ns, Name: name, UID: types.UID(name), Owners: owners}
}

func clusterNode(name string) object {
	return object{APIVersion: "v1", Kind: "Node", Name: name, UID: types.UID(name)}
}

// owns is a reference from a dependent to o.
func owns(o object, block bool) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: o.APIVersion, Kind: o.Kind, Name: o.Name, UID: o.UID, BlockOwnerDeletion: &block}
}

func deleting(o object, finalizers ...string) object {
	o.Deleting = true
	o.Finalizers = finalizers
	return o
}

func see(o object) step { return step{obj: &o} }

func TestGraphEffects(t *testing.T) {
	owner := cm("ns", "owner")
	other := cm("ns", "other")
	dep := cm("ns", "dep", owns(owner, true))
	tests := []struct {
		name  string
		steps []step
		// want are the effects of the last step.
		want effects
	}{
		{
			name:  "dependent seen before its owner is checked",
			steps: []step{see(dep)},
			want:  effects{Attempt: []types.UID{"dep"}},
		},
		{
			name:  "dependent of a known owner needs nothing",
			steps: []step{see(owner), see(dep)},
		},
		{
			name:  "owner seen after its dependent needs nothing",
			steps: []step{see(dep), see(owner)},
		},
		{
			name:  "an update that does not add owners needs nothing",
			steps: []step{see(dep), see(dep)},
		},
		{
			name:  "owner in another namespace does not count",
			steps: []step{see(cm("elsewhere", "owner")), see(dep)},
			want:  effects{Attempt: []types.UID{"dep"}},
		},
		{
			name:  "owner with another name does not count",
			steps: []step{see(cm("ns", "owner-renamed")), see(cm("ns", "dep", metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "owner", UID: "owner-renamed"}))},
			want:  effects{Attempt: []types.UID{"dep"}},
		},
		{
			name:  "cluster-scoped owner of a namespaced dependent counts",
			steps: []step{see(clusterNode("n1")), see(cm("ns", "dep", owns(clusterNode("n1"), false)))},
		},
		{
			name:  "deleted owner: its dependents are checked",
			steps: []step{see(owner), see(dep), see(cm("ns", "dep2", owns(owner, false))), {forget: "owner"}},
			want:  effects{Attempt: []types.UID{"dep", "dep2"}},
		},
		{
			name:  "owner starts foreground deletion: it and all dependents are processed",
			steps: []step{see(owner), see(dep), see(cm("ns", "dep2", owns(owner, false))), see(deleting(owner, metav1.FinalizerDeleteDependents))},
			want:  effects{Attempt: []types.UID{"dep", "dep2", "owner"}},
		},
		{
			name:  "owner already in foreground deletion when first seen",
			steps: []step{see(deleting(owner, metav1.FinalizerDeleteDependents))},
			want:  effects{Attempt: []types.UID{"owner"}},
		},
		{
			name:  "owner deleting in the background only: nothing",
			steps: []step{see(owner), see(dep), see(deleting(owner))},
		},
		{
			name:  "owner starts orphaning",
			steps: []step{see(owner), see(dep), see(deleting(owner, metav1.FinalizerOrphanDependents))},
			want:  effects{Orphan: []types.UID{"owner"}},
		},
		{
			name:  "dependent of a foreground owner goes: owner is reconsidered",
			steps: []step{see(deleting(owner, metav1.FinalizerDeleteDependents)), see(dep), {forget: "dep"}},
			want:  effects{Attempt: []types.UID{"owner"}},
		},
		{
			name:  "dependent drops its reference to a foreground owner: owner is reconsidered",
			steps: []step{see(deleting(owner, metav1.FinalizerDeleteDependents)), see(other), see(cm("ns", "dep", owns(owner, true), owns(other, false))), see(cm("ns", "dep", owns(other, false)))},
			want:  effects{Attempt: []types.UID{"owner"}},
		},
		{
			name:  "dependent stops blocking a foreground owner: owner is reconsidered",
			steps: []step{see(deleting(owner, metav1.FinalizerDeleteDependents)), see(dep), see(cm("ns", "dep", owns(owner, false)))},
			want:  effects{Attempt: []types.UID{"owner"}},
		},
		{
			name:  "forgetting an unknown object is harmless",
			steps: []step{{forget: "nobody"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGraph()
			var got effects
			for _, s := range tc.steps {
				if s.obj != nil {
					got = g.observe(*s.obj)
				} else {
					got = g.forget(s.forget)
				}
			}
			slices.Sort(got.Attempt)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("effects = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestGraphDependents(t *testing.T) {
	g := newGraph()
	owner := cm("ns", "owner")
	g.observe(owner)
	g.observe(cm("ns", "blocking", owns(owner, true)))
	g.observe(cm("ns", "plain", owns(owner, false)))
	g.observe(cm("ns", "grandchild", owns(cm("ns", "plain"), true)))

	got := map[types.UID]dependent{}
	for _, d := range g.dependents("owner") {
		got[d.UID] = d
	}
	if len(got) != 2 {
		t.Fatalf("dependents of owner = %v, want blocking and plain", got)
	}
	if !got["blocking"].Blocking || got["plain"].Blocking {
		t.Errorf("blocking flags: blocking=%v plain=%v", got["blocking"].Blocking, got["plain"].Blocking)
	}
	if got["blocking"].HasDependents || !got["plain"].HasDependents {
		t.Errorf("has-dependents flags: blocking=%v plain=%v", got["blocking"].HasDependents, got["plain"].HasDependents)
	}
	if _, ok := g.owner(cm("ns", "blocking"), owns(owner, true)); !ok {
		t.Errorf("owner of blocking not found in the graph")
	}
}

// TestGraphForgetsVirtualOwners checks the graph does not grow with
// references to owners that never show up: the placeholder for an unseen
// owner goes with its last dependent.
func TestGraphForgetsVirtualOwners(t *testing.T) {
	g := newGraph()
	ghost := cm("ns", "ghost")
	g.observe(cm("ns", "a", owns(ghost, false)))
	g.observe(cm("ns", "b", owns(ghost, false)))
	g.observe(cm("ns", "b")) // b drops its reference
	g.forget("a")
	g.forget("b")
	if len(g.nodes) != 0 {
		t.Errorf("graph keeps %d nodes after every object went, want 0", len(g.nodes))
	}

	// An owner that goes while dependents still reference it stays as an
	// index until they are gone too.
	owner := cm("ns", "owner")
	g.observe(owner)
	g.observe(cm("ns", "dep", owns(owner, false)))
	g.forget("owner")
	if _, ok := g.get("owner"); ok {
		t.Errorf("forgotten owner still reported as observed")
	}
	if deps := g.dependents("owner"); len(deps) != 1 {
		t.Errorf("dependents of forgotten owner = %v, want dep", deps)
	}
	g.forget("dep")
	if len(g.nodes) != 0 {
		t.Errorf("graph keeps %d nodes, want 0", len(g.nodes))
	}
}
