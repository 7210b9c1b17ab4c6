package replicaset

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

func TestPodsToDeleteOrder(t *testing.T) {
	tests := []struct {
		name string
		// keep is listed first in pods; lose must be chosen for a scale-down by one.
		keep, lose *v1.Pod
		colocated  map[string]int
	}{
		{"unassigned before assigned",
			newPod("keep", "a", nil), newPod("lose", "a", nil, unscheduled, phase(v1.PodPending)), nil},
		{"pending before unknown",
			newPod("keep", "a", nil, phase(v1.PodUnknown)), newPod("lose", "a", nil, phase(v1.PodPending)), nil},
		{"unknown before running",
			newPod("keep", "a", nil), newPod("lose", "a", nil, phase(v1.PodUnknown)), nil},
		{"not ready before ready",
			newPod("keep", "a", nil, readyFor(time.Minute)), newPod("lose", "a", nil), nil},
		{"lower deletion cost first",
			newPod("keep", "a", nil, readyFor(time.Minute), cost("10")), newPod("lose", "a", nil, readyFor(time.Hour), cost("-5")), nil},
		{"crowded node first",
			newPod("keep", "a", nil, readyFor(time.Minute), onNode("n1")), newPod("lose", "a", nil, readyFor(time.Hour), onNode("n2")),
			map[string]int{"n1": 1, "n2": 3}},
		{"ready for less time first",
			newPod("keep", "a", nil, readyFor(time.Hour)), newPod("lose", "a", nil, readyFor(time.Minute)), nil},
		{"similar ready age: more restarts first",
			newPod("keep", "a", nil, readyFor(70*time.Second)), newPod("lose", "a", nil, readyFor(80*time.Second), restarted(3)), nil},
		{"newer before older",
			newPod("keep", "a", nil, createdAgo(time.Hour)), newPod("lose", "a", nil, createdAgo(time.Minute)), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := podsToDelete([]*v1.Pod{tc.keep, tc.lose}, tc.colocated, 1, t0)
			if len(got) != 1 || got[0].Name != "lose" {
				t.Errorf("deleted %v, want [lose]", names(got))
			}
			// The order must not depend on input order.
			got = podsToDelete([]*v1.Pod{tc.lose, tc.keep}, tc.colocated, 1, t0)
			if len(got) != 1 || got[0].Name != "lose" {
				t.Errorf("reversed input: deleted %v, want [lose]", names(got))
			}
		})
	}
}

func TestPodsToDeleteAll(t *testing.T) {
	pods := []*v1.Pod{newPod("a", "x", nil), newPod("b", "x", nil)}
	if got := podsToDelete(pods, nil, 5, t0); len(got) != 2 {
		t.Errorf("deleting more than exist: got %v", names(got))
	}
}

func cost(c string) func(*v1.Pod) {
	return func(p *v1.Pod) { p.Annotations = map[string]string{podDeletionCostAnnotation: c} }
}

func names(pods []*v1.Pod) []string {
	out := make([]string, len(pods))
	for i, p := range pods {
		out[i] = p.Name
	}
	return out
}
