package garbagecollector

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/diff"
)

func ref(uid string, block bool) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "owner-" + uid, UID: types.UID(uid), BlockOwnerDeletion: &block}
}

func TestDecide(t *testing.T) {
	no := false
	tests := []struct {
		name                string
		finalizers          []string
		refs                []classifiedRef
		hasDependents       bool
		dependentDeletingFG bool
		want                plan
	}{
		{name: "no owners", want: plan{}},
		{
			name: "existing owner keeps it",
			refs: []classifiedRef{{ref("a", true), ownerPresent}},
			want: plan{},
		},
		{
			name: "existing owner keeps it, dangling reference is dropped",
			refs: []classifiedRef{{ref("a", true), ownerPresent}, {ref("b", false), ownerAbsent}},
			want: plan{Owners: []metav1.OwnerReference{ref("a", true)}},
		},
		{
			name: "existing owner keeps it, reference to a foreground owner is dropped so that owner can go",
			refs: []classifiedRef{{ref("a", false), ownerPresent}, {ref("b", true), ownerWaiting}},
			want: plan{Owners: []metav1.OwnerReference{ref("a", false)}},
		},
		{
			name: "all owners gone: background",
			refs: []classifiedRef{{ref("a", true), ownerAbsent}, {ref("b", true), ownerAbsent}},
			want: plan{Delete: true, Policy: metav1.DeletePropagationBackground},
		},
		{
			name:       "all owners gone, orphan finalizer already present: orphan",
			finalizers: []string{metav1.FinalizerOrphanDependents},
			refs:       []classifiedRef{{ref("a", true), ownerAbsent}},
			want:       plan{Delete: true, Policy: metav1.DeletePropagationOrphan},
		},
		{
			name:       "all owners gone, foreground finalizer already present: foreground",
			finalizers: []string{metav1.FinalizerDeleteDependents},
			refs:       []classifiedRef{{ref("a", true), ownerAbsent}},
			want:       plan{Delete: true, Policy: metav1.DeletePropagationForeground},
		},
		{
			name: "owner waits in the foreground, leaf dependent: background",
			refs: []classifiedRef{{ref("a", true), ownerWaiting}},
			want: plan{Delete: true, Policy: metav1.DeletePropagationBackground},
		},
		{
			name:          "owner waits in the foreground, dependent owns others: foreground",
			refs:          []classifiedRef{{ref("a", true), ownerWaiting}, {ref("b", true), ownerAbsent}},
			hasDependents: true,
			want:          plan{Delete: true, Policy: metav1.DeletePropagationForeground},
		},
		{
			name:                "foreground chain with a dependent already deleting in the foreground: unblock first",
			refs:                []classifiedRef{{ref("a", true), ownerWaiting}},
			hasDependents:       true,
			dependentDeletingFG: true,
			want: plan{
				Owners: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "owner-a", UID: "a", BlockOwnerDeletion: &no}},
				Delete: true, Policy: metav1.DeletePropagationForeground,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dep := object{Name: "dep", UID: "dep", Finalizers: tc.finalizers}
			for _, r := range tc.refs {
				dep.Owners = append(dep.Owners, r.Ref)
			}
			got := decide(dep, tc.refs, tc.hasDependents, tc.dependentDeletingFG)
			if !reflect.DeepEqual(tc.want, got) {
				t.Errorf("plan (-want +got):\n%s", diff.Diff(tc.want, got))
			}
		})
	}
}

func TestForegroundPlan(t *testing.T) {
	dep := func(uid string, blocking, deleting bool) dependent {
		return dependent{object: object{UID: types.UID(uid), Deleting: deleting}, Blocking: blocking}
	}
	tests := []struct {
		name        string
		deps        []dependent
		wantRemove  bool
		wantProcess []types.UID
	}{
		{name: "no dependents: finalizer goes", wantRemove: true},
		{name: "only non-blocking dependents: finalizer goes", deps: []dependent{dep("a", false, false)}, wantRemove: true},
		{name: "live blocking dependent is pushed", deps: []dependent{dep("a", true, false), dep("b", false, false)}, wantProcess: []types.UID{"a"}},
		{name: "blocking dependent on its way: wait", deps: []dependent{dep("a", true, true)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			remove, process := foregroundPlan(tc.deps)
			if remove != tc.wantRemove {
				t.Errorf("remove finalizer = %v, want %v", remove, tc.wantRemove)
			}
			if !reflect.DeepEqual(tc.wantProcess, process) {
				t.Errorf("process = %v, want %v", process, tc.wantProcess)
			}
		})
	}
}
