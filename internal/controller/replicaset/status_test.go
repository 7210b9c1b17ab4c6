package replicaset

import (
	"errors"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestComputeStatus(t *testing.T) {
	minReady := func(s int32) func(*appsv1.ReplicaSet) {
		return func(rs *appsv1.ReplicaSet) { rs.Spec.MinReadySeconds = s }
	}
	failing := func(rs *appsv1.ReplicaSet) {
		rs.Status.Conditions = []appsv1.ReplicaSetCondition{{Type: appsv1.ReplicaSetReplicaFailure, Status: v1.ConditionTrue, Reason: "FailedCreate", Message: "old"}}
	}
	partialLabels := func(p *v1.Pod) { delete(p.Labels, "tier") }
	tests := []struct {
		name        string
		rs          *appsv1.ReplicaSet
		pods        []*v1.Pod
		terminating int
		err         error
		want        replicaStatus
		wantWait    time.Duration
	}{
		{
			name: "counts ready and fully labelled pods",
			rs:   newRS("web", 3),
			pods: []*v1.Pod{newPod("a", "web", nil, readyFor(time.Second)), newPod("b", "web", nil, partialLabels), newPod("c", "web", nil)},
			want: replicaStatus{Replicas: 3, FullyLabeledReplicas: 2, ReadyReplicas: 1, AvailableReplicas: 1, TerminatingReplicas: ptr.To[int32](0), ObservedGeneration: 1},
		},
		{
			name:     "minReadySeconds holds back recently ready pods and says when to look again",
			rs:       newRS("web", 3, minReady(10)),
			pods:     []*v1.Pod{newPod("a", "web", nil, readyFor(time.Minute)), newPod("b", "web", nil, readyFor(4*time.Second)), newPod("c", "web", nil, readyFor(7*time.Second))},
			want:     replicaStatus{Replicas: 3, FullyLabeledReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 1, TerminatingReplicas: ptr.To[int32](0), ObservedGeneration: 1},
			wantWait: 3 * time.Second,
		},
		{
			name:        "terminating pods are reported apart",
			rs:          newRS("web", 1),
			pods:        []*v1.Pod{newPod("a", "web", nil)},
			terminating: 2,
			want:        replicaStatus{Replicas: 1, FullyLabeledReplicas: 1, TerminatingReplicas: ptr.To[int32](2), ObservedGeneration: 1},
		},
		{
			name: "create failure adds ReplicaFailure",
			rs:   newRS("web", 2),
			pods: []*v1.Pod{newPod("a", "web", nil)},
			err:  errors.New("pods \"web-x\" is forbidden: exceeded quota"),
			want: replicaStatus{Replicas: 1, FullyLabeledReplicas: 1, TerminatingReplicas: ptr.To[int32](0), ObservedGeneration: 1,
				Conditions: []condition{{Type: "ReplicaFailure", Status: v1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0), Reason: "FailedCreate", Message: "pods \"web-x\" is forbidden: exceeded quota"}}},
		},
		{
			name: "delete failure says FailedDelete",
			rs:   newRS("web", 0),
			pods: []*v1.Pod{newPod("a", "web", nil)},
			err:  errors.New("boom"),
			want: replicaStatus{Replicas: 1, FullyLabeledReplicas: 1, TerminatingReplicas: ptr.To[int32](0), ObservedGeneration: 1,
				Conditions: []condition{{Type: "ReplicaFailure", Status: v1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0), Reason: "FailedDelete", Message: "boom"}}},
		},
		{
			name: "a persisting failure keeps its first message",
			rs:   newRS("web", 2, failing),
			err:  errors.New("new"),
			want: replicaStatus{TerminatingReplicas: ptr.To[int32](0), ObservedGeneration: 1,
				Conditions: []condition{{Type: "ReplicaFailure", Status: v1.ConditionTrue, Reason: "FailedCreate", Message: "old"}}},
		},
		{
			name: "success clears ReplicaFailure",
			rs:   newRS("web", 0, failing),
			want: replicaStatus{TerminatingReplicas: ptr.To[int32](0), ObservedGeneration: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var term []*v1.Pod
			for range tc.terminating {
				term = append(term, newPod("t", "web", nil, deleting))
			}
			got, wait := computeStatus(statusInput{Owner: rsOwner{tc.rs}, Active: tc.pods, Terminating: term, WithTerminating: true, ManageErr: tc.err, Now: t0})
			if !statusEqual(got, tc.want) {
				t.Errorf("status\n got %+v\nwant %+v", got, tc.want)
			}
			if wait != tc.wantWait {
				t.Errorf("wait = %v, want %v", wait, tc.wantWait)
			}
		})
	}
}

func TestComputeStatusReplicationController(t *testing.T) {
	rc := newRC("web", 2)
	got, _ := computeStatus(statusInput{Owner: rcOwner{rc}, Active: []*v1.Pod{newPod("a", "web", nil, readyFor(time.Second))}, Now: t0})
	want := replicaStatus{Replicas: 1, FullyLabeledReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, ObservedGeneration: 1}
	if !statusEqual(got, want) {
		t.Errorf("status\n got %+v\nwant %+v (no terminatingReplicas for RCs)", got, want)
	}
}
