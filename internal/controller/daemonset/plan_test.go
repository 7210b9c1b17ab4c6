package daemonset

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var now = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func testDS(mutate ...func(*appsv1.DaemonSet)) *appsv1.DaemonSet {
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "kube-system", UID: "ds-uid", Generation: 2},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
				Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "agent", Image: "agent:v2"}}},
			},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType},
		},
	}
	for _, m := range mutate {
		m(ds)
	}
	return ds
}

func testNode(name string, mutate ...func(*v1.Node)) *v1.Node {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}
	for _, m := range mutate {
		m(n)
	}
	return n
}

func tainted(key string, effect v1.TaintEffect) func(*v1.Node) {
	return func(n *v1.Node) { n.Spec.Taints = append(n.Spec.Taints, v1.Taint{Key: key, Effect: effect}) }
}

// testPod is a daemon pod named name on node at revision hash; state is
// "ready" (Ready for a minute), "fresh" (Ready 5s ago), "pending"
// (unbound), "failed" or "running" (bound, not Ready).
func testPod(name, node, hash, state string, age time.Duration) *v1.Pod {
	yes := true
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "kube-system", UID: types.UID("uid-" + name),
			CreationTimestamp: metav1.NewTime(now.Add(-age)),
			Labels:            map[string]string{"app": "agent", appsv1.ControllerRevisionHashLabelKey: hash},
			OwnerReferences:   []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "agent", UID: "ds-uid", Controller: &yes}},
		},
	}
	p.Spec.Affinity = NewPod(testDS(), hash, node).Spec.Affinity
	if state != "pending" {
		p.Spec.NodeName = node
		p.Status.Phase = v1.PodRunning
	}
	switch state {
	case "ready":
		p.Status.Conditions = []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-time.Minute))}}
	case "fresh":
		p.Status.Conditions = []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-5 * time.Second))}}
	case "failed":
		p.Status.Phase = v1.PodFailed
	}
	return p
}

func planString(p Plan) string {
	var del []string
	for _, d := range p.Delete {
		del = append(del, d.Name)
	}
	sort.Strings(del)
	c := append([]string(nil), p.Create...)
	sort.Strings(c)
	s := fmt.Sprintf("create=%s delete=%s", strings.Join(c, ","), strings.Join(del, ","))
	if p.RequeueAfter > 0 {
		s += " requeue=" + p.RequeueAfter.String()
	}
	return s
}

func maxUnavail(v intstr.IntOrString) func(*appsv1.DaemonSet) {
	return func(ds *appsv1.DaemonSet) {
		if ds.Spec.UpdateStrategy.RollingUpdate == nil {
			ds.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{}
		}
		ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = &v
	}
}

func surge(v intstr.IntOrString) func(*appsv1.DaemonSet) {
	return func(ds *appsv1.DaemonSet) {
		zero := intstr.FromInt32(0)
		ds.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxSurge: &v, MaxUnavailable: &zero}
	}
}

func TestCompute(t *testing.T) {
	abc := []*v1.Node{testNode("a"), testNode("b"), testNode("c")}
	cases := []struct {
		name  string
		ds    *appsv1.DaemonSet
		nodes []*v1.Node
		pods  []*v1.Pod
		want  string
	}{
		{name: "every node gets a pod", ds: testDS(), nodes: abc, want: "create=a,b,c delete="},
		{name: "nothing to do", ds: testDS(), nodes: abc,
			pods: []*v1.Pod{testPod("p-a", "a", "new", "ready", time.Hour), testPod("p-b", "b", "new", "ready", time.Hour), testPod("p-c", "c", "new", "pending", time.Hour)},
			want: "create= delete="},
		{name: "nodeSelector limits nodes", ds: testDS(func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.NodeSelector = map[string]string{"role": "edge"} }),
			nodes: []*v1.Node{testNode("a", func(n *v1.Node) { n.Labels["role"] = "edge" }), testNode("b")},
			pods:  []*v1.Pod{testPod("p-b", "b", "new", "ready", time.Hour)},
			want:  "create=a delete=p-b"},
		{name: "untolerated NoSchedule: no new pod, existing one stays", ds: testDS(),
			nodes: []*v1.Node{testNode("a", tainted("gpu", v1.TaintEffectNoSchedule)), testNode("b", tainted("gpu", v1.TaintEffectNoSchedule))},
			pods:  []*v1.Pod{testPod("p-b", "b", "new", "ready", time.Hour)},
			want:  "create= delete="},
		{name: "untolerated NoExecute evicts", ds: testDS(),
			nodes: []*v1.Node{testNode("a", tainted("evict", v1.TaintEffectNoExecute))},
			pods:  []*v1.Pod{testPod("p-a", "a", "new", "ready", time.Hour)},
			want:  "create= delete=p-a"},
		{name: "default tolerations cover cordoned and not-ready nodes", ds: testDS(),
			nodes: []*v1.Node{testNode("a", tainted(v1.TaintNodeUnschedulable, v1.TaintEffectNoSchedule), tainted(v1.TaintNodeNotReady, v1.TaintEffectNoExecute))},
			want:  "create=a delete="},
		{name: "tolerated taint", ds: testDS(func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.Tolerations = []v1.Toleration{{Key: "gpu", Operator: v1.TolerationOpExists}}
		}), nodes: []*v1.Node{testNode("a", tainted("gpu", v1.TaintEffectNoSchedule))}, want: "create=a delete="},
		{name: "failed pod is replaced", ds: testDS(), nodes: abc[:1],
			pods: []*v1.Pod{testPod("p-a", "a", "new", "failed", time.Hour)}, want: "create=a delete=p-a"},
		{name: "duplicates: the oldest stays", ds: testDS(), nodes: abc[:1],
			pods: []*v1.Pod{testPod("p-x", "a", "new", "ready", time.Minute), testPod("p-y", "a", "new", "ready", time.Hour)}, want: "create= delete=p-x"},
		{name: "pod of a deleted node goes", ds: testDS(), nodes: abc[:1],
			pods: []*v1.Pod{testPod("p-a", "a", "new", "ready", time.Hour), testPod("p-z", "z", "new", "ready", time.Hour)}, want: "create= delete=p-z"},
		{name: "terminating pods are ignored", ds: testDS(), nodes: abc[:1],
			pods: []*v1.Pod{func() *v1.Pod {
				p := testPod("p-a", "a", "new", "ready", time.Hour)
				p.DeletionTimestamp = &metav1.Time{Time: now}
				return p
			}()}, want: "create=a delete="},
		{name: "rolling: one old pod at a time", ds: testDS(), nodes: abc,
			pods: []*v1.Pod{testPod("p-a", "a", "old", "ready", time.Hour), testPod("p-b", "b", "old", "ready", time.Hour), testPod("p-c", "c", "old", "ready", time.Hour)},
			want: "create= delete=p-a"},
		{name: "rolling: waits while a new pod is not ready", ds: testDS(), nodes: abc,
			pods: []*v1.Pod{testPod("p-a", "a", "new", "running", time.Minute), testPod("p-b", "b", "old", "ready", time.Hour), testPod("p-c", "c", "old", "ready", time.Hour)},
			want: "create= delete="},
		{name: "rolling: continues once it is ready", ds: testDS(), nodes: abc,
			pods: []*v1.Pod{testPod("p-a", "a", "new", "ready", time.Minute), testPod("p-b", "b", "old", "ready", time.Hour), testPod("p-c", "c", "old", "ready", time.Hour)},
			want: "create= delete=p-b"},
		{name: "rolling: broken old pods are replaced outside the budget", ds: testDS(), nodes: abc,
			pods: []*v1.Pod{testPod("p-a", "a", "new", "running", time.Minute), testPod("p-b", "b", "old", "running", time.Hour), testPod("p-c", "c", "old", "ready", time.Hour)},
			want: "create= delete=p-b"},
		{name: "rolling: maxUnavailable 2", ds: testDS(maxUnavail(intstr.FromInt32(2))), nodes: abc,
			pods: []*v1.Pod{testPod("p-a", "a", "old", "ready", time.Hour), testPod("p-b", "b", "old", "ready", time.Hour), testPod("p-c", "c", "old", "ready", time.Hour)},
			want: "create= delete=p-a,p-b"},
		{name: "rolling: maxUnavailable 50% of 3 rounds up", ds: testDS(maxUnavail(intstr.FromString("50%"))), nodes: abc,
			pods: []*v1.Pod{testPod("p-a", "a", "old", "ready", time.Hour), testPod("p-b", "b", "old", "ready", time.Hour), testPod("p-c", "c", "old", "ready", time.Hour)},
			want: "create= delete=p-a,p-b"},
		{name: "rolling: minReadySeconds holds the rollout and requeues", ds: testDS(func(ds *appsv1.DaemonSet) { ds.Spec.MinReadySeconds = 10 }), nodes: abc,
			pods: []*v1.Pod{testPod("p-a", "a", "new", "fresh", time.Minute), testPod("p-b", "b", "old", "ready", time.Hour), testPod("p-c", "c", "old", "ready", time.Hour)},
			want: "create= delete= requeue=5s"},
		{name: "surge: new pod starts beside the old one", ds: testDS(surge(intstr.FromInt32(1))), nodes: abc,
			pods: []*v1.Pod{testPod("p-a", "a", "old", "ready", time.Hour), testPod("p-b", "b", "old", "ready", time.Hour), testPod("p-c", "c", "old", "ready", time.Hour)},
			want: "create=a delete="},
		{name: "surge: the old pod goes once the new one is available", ds: testDS(surge(intstr.FromInt32(1))), nodes: abc,
			pods: []*v1.Pod{testPod("p-a", "a", "old", "ready", time.Hour), testPod("n-a", "a", "new", "ready", time.Minute), testPod("p-b", "b", "old", "ready", time.Hour), testPod("p-c", "c", "old", "ready", time.Hour)},
			want: "create=b delete=p-a"},
		{name: "surge: budget in use", ds: testDS(surge(intstr.FromInt32(1))), nodes: abc,
			pods: []*v1.Pod{testPod("p-a", "a", "old", "ready", time.Hour), testPod("n-a", "a", "new", "pending", time.Minute), testPod("p-b", "b", "old", "ready", time.Hour), testPod("p-c", "c", "old", "ready", time.Hour)},
			want: "create= delete="},
		{name: "OnDelete leaves old pods alone", ds: testDS(func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
		}),
			nodes: abc, pods: []*v1.Pod{testPod("p-a", "a", "old", "ready", time.Hour), testPod("p-b", "b", "old", "ready", time.Hour)},
			want: "create=c delete="},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := planString(Compute(Input{DS: tc.ds, Hash: "new", Nodes: tc.nodes, Pods: tc.pods, Now: now}))
			if got != tc.want {
				t.Errorf("plan %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestComputeStatus(t *testing.T) {
	nodes := []*v1.Node{testNode("a"), testNode("b"), testNode("c"), testNode("d"), testNode("t", tainted("gpu", v1.TaintEffectNoSchedule))}
	pods := []*v1.Pod{
		testPod("p-a", "a", "new", "ready", time.Hour),
		testPod("p-b", "b", "old", "ready", time.Hour),
		testPod("p-c", "c", "new", "pending", time.Minute),
		testPod("p-t", "t", "new", "ready", time.Hour), // on a node it no longer qualifies for
	}
	got := ComputeStatus(Input{DS: testDS(), Hash: "new", Nodes: nodes, Pods: pods, Now: now})
	want := appsv1.DaemonSetStatus{
		ObservedGeneration:     2,
		DesiredNumberScheduled: 4,
		CurrentNumberScheduled: 3,
		UpdatedNumberScheduled: 2,
		NumberReady:            2,
		NumberAvailable:        2,
		NumberUnavailable:      2,
		NumberMisscheduled:     1,
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("status\n%+v\nwant\n%+v", got, want)
	}
}

func TestNewPod(t *testing.T) {
	ds := testDS(func(ds *appsv1.DaemonSet) {
		ds.Spec.Template.Spec.HostNetwork = true
		ds.Spec.Template.Spec.Tolerations = []v1.Toleration{{Key: v1.TaintNodeNotReady, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(5))}}
	})
	p := NewPod(ds, "abc", "node-1")
	if p.GenerateName != "agent-" || p.Labels[appsv1.ControllerRevisionHashLabelKey] != "abc" || p.Labels[TemplateGenerationLabel] != "2" || p.Labels["app"] != "agent" {
		t.Errorf("metadata %+v", p.ObjectMeta)
	}
	if ref := metav1.GetControllerOf(p); ref == nil || ref.UID != "ds-uid" || ref.Kind != "DaemonSet" {
		t.Errorf("controller ref %+v", ref)
	}
	if got := TargetNode(p); got != "node-1" {
		t.Errorf("pinned to %q", got)
	}
	var tols []string
	for _, tl := range p.Spec.Tolerations {
		s := tl.Key + ":" + string(tl.Effect)
		if tl.TolerationSeconds != nil {
			s += fmt.Sprintf("(%ds)", *tl.TolerationSeconds)
		}
		tols = append(tols, s)
	}
	want := "node.kubernetes.io/not-ready:NoExecute(5s) node.kubernetes.io/unreachable:NoExecute node.kubernetes.io/disk-pressure:NoSchedule " +
		"node.kubernetes.io/memory-pressure:NoSchedule node.kubernetes.io/pid-pressure:NoSchedule node.kubernetes.io/unschedulable:NoSchedule " +
		"node.kubernetes.io/network-unavailable:NoSchedule"
	if got := strings.Join(tols, " "); got != want {
		t.Errorf("tolerations\n%s\nwant\n%s", got, want)
	}
	if len(ds.Spec.Template.Spec.Tolerations) != 1 || ds.Spec.Template.Spec.Affinity != nil {
		t.Errorf("NewPod modified the template")
	}
}

func ptr[T any](v T) *T { return &v }
