package fit

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func ownedBy(uid string) podOpt {
	return func(p *v1.Pod) {
		yes := true
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: types.UID(uid), Controller: &yes}}
	}
}

// TestScoreWinner names, for each placement problem, the node (or nodes,
// when they tie) that must come out on top.
func TestScoreWinner(t *testing.T) {
	peerOfRS := func(p *v1.Pod) bool {
		ref := metav1.GetControllerOf(p)
		return ref != nil && ref.UID == "rs-1"
	}
	preferZone := func(zone string, weight int32) podOpt {
		return func(p *v1.Pod) {
			p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{
				PreferredDuringSchedulingIgnoredDuringExecution: []v1.PreferredSchedulingTerm{{
					Weight:     weight,
					Preference: labelExpr("zone", v1.NodeSelectorOpIn, zone),
				}},
			}}
		}
	}
	cases := []struct {
		name  string
		pod   *v1.Pod
		nodes []*NodeInfo
		want  []string
	}{
		{
			name: "spreads pods of one owner away from their siblings",
			pod:  pod("new", ownedBy("rs-1")),
			nodes: []*NodeInfo{
				NewNodeInfo(node("a"), pod("x", ownedBy("rs-1"))),
				NewNodeInfo(node("b")),
				NewNodeInfo(node("c"), pod("y", ownedBy("rs-1"))),
			},
			want: []string{"b"},
		},
		{
			name: "pods of other owners do not repel",
			pod:  pod("new", ownedBy("rs-1")),
			nodes: []*NodeInfo{
				NewNodeInfo(node("a"), pod("x", ownedBy("rs-1"))),
				NewNodeInfo(node("b"), pod("o1", ownedBy("other")), pod("o2", ownedBy("other"))),
			},
			want: []string{"b"},
		},
		{
			name: "equal nodes tie",
			pod:  pod("new", ownedBy("rs-1")),
			nodes: []*NodeInfo{
				NewNodeInfo(node("a"), pod("x", ownedBy("rs-1"))),
				NewNodeInfo(node("b"), pod("y", ownedBy("rs-1"))),
			},
			want: []string{"a", "b"},
		},
		{
			name: "least allocated wins without siblings",
			pod:  pod("new", requests("500m", "")),
			nodes: []*NodeInfo{
				NewNodeInfo(node("busy"), pod("x", requests("1500m", "2Gi"))),
				NewNodeInfo(node("idle")),
			},
			want: []string{"idle"},
		},
		{
			name: "PreferNoSchedule taint is avoided",
			pod:  pod("new"),
			nodes: []*NodeInfo{
				NewNodeInfo(node("soft", withTaint("maintenance", "", v1.TaintEffectPreferNoSchedule))),
				NewNodeInfo(node("clean"), pod("x", requests("500m", "1Gi"))),
			},
			want: []string{"clean"},
		},
		{
			name: "tolerated PreferNoSchedule taint is no penalty",
			pod:  pod("new", tolerate(v1.Toleration{Key: "maintenance", Operator: v1.TolerationOpExists})),
			nodes: []*NodeInfo{
				NewNodeInfo(node("soft", withTaint("maintenance", "", v1.TaintEffectPreferNoSchedule))),
				NewNodeInfo(node("clean"), pod("x", requests("500m", "1Gi"))),
			},
			want: []string{"soft"},
		},
		{
			name: "preferred node affinity",
			pod:  pod("new", preferZone("z2", 10)),
			nodes: []*NodeInfo{
				NewNodeInfo(node("n1", withLabel("zone", "z1"))),
				NewNodeInfo(node("n2", withLabel("zone", "z2")), pod("x", requests("500m", "1Gi"))),
			},
			want: []string{"n2"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			scores := Score(tc.pod, tc.nodes, peerOfRS)
			var max int64 = -1
			for _, s := range scores {
				max = max64(max, s)
			}
			var got []string
			for i, s := range scores {
				if s == max {
					got = append(got, tc.nodes[i].Node.Name)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("top nodes %v (scores %v), want %v", got, scores, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("top nodes %v (scores %v), want %v", got, scores, tc.want)
				}
			}
		})
	}
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func TestLeastAllocated(t *testing.T) {
	cases := []struct {
		name     string
		pod      *v1.Pod
		existing []*v1.Pod
		want     int64
	}{
		// 2 cores / 4Gi: a request-less pod counts as 100m and 200Mi.
		{name: "empty node, defaults for request-less pod", pod: pod("p"), want: (95 + 95) / 2},
		{name: "half used", pod: pod("p", requests("1", "2Gi")), want: 50},
		{name: "full", pod: pod("p", requests("1", "2Gi")), existing: []*v1.Pod{pod("a", requests("1", "2Gi"))}, want: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := LeastAllocated(tc.pod, NewNodeInfo(node("n"), tc.existing...)); got != tc.want {
				t.Errorf("LeastAllocated = %d, want %d", got, tc.want)
			}
		})
	}
}
