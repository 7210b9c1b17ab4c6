package fit

import (
	"math/rand/v2"
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type nodeOpt func(*v1.Node)

func node(name string, opts ...nodeOpt) *v1.Node {
	n := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status: v1.NodeStatus{
			Allocatable: v1.ResourceList{
				v1.ResourceCPU:    resource.MustParse("2"),
				v1.ResourceMemory: resource.MustParse("4Gi"),
				v1.ResourcePods:   resource.MustParse("110"),
			},
			Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}},
		},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func withLabel(k, v string) nodeOpt { return func(n *v1.Node) { n.Labels[k] = v } }
func withTaint(k, v string, e v1.TaintEffect) nodeOpt {
	return func(n *v1.Node) { n.Spec.Taints = append(n.Spec.Taints, v1.Taint{Key: k, Value: v, Effect: e}) }
}
func withReady(s v1.ConditionStatus) nodeOpt {
	return func(n *v1.Node) { n.Status.Conditions[0].Status = s }
}
func withAllocatable(name v1.ResourceName, q string) nodeOpt {
	return func(n *v1.Node) { n.Status.Allocatable[name] = resource.MustParse(q) }
}

type podOpt func(*v1.Pod)

func pod(name string, opts ...podOpt) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "img"}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func requests(cpu, mem string) podOpt {
	return func(p *v1.Pod) {
		r := v1.ResourceList{}
		if cpu != "" {
			r[v1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			r[v1.ResourceMemory] = resource.MustParse(mem)
		}
		p.Spec.Containers[0].Resources.Requests = r
	}
}
func tolerate(t v1.Toleration) podOpt {
	return func(p *v1.Pod) { p.Spec.Tolerations = append(p.Spec.Tolerations, t) }
}
func nodeSelector(k, v string) podOpt {
	return func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{k: v} }
}
func requiredTerms(terms ...v1.NodeSelectorTerm) podOpt {
	return func(p *v1.Pod) {
		p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{NodeSelectorTerms: terms},
		}}
	}
}
func labelExpr(k string, op v1.NodeSelectorOperator, vals ...string) v1.NodeSelectorTerm {
	return v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: k, Operator: op, Values: vals}}}
}
func hostPortOn(ip string, port int32) podOpt {
	return func(p *v1.Pod) {
		p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, v1.ContainerPort{ContainerPort: 80, HostPort: port, HostIP: ip})
	}
}

func TestFilter(t *testing.T) {
	cases := []struct {
		name     string
		pod      *v1.Pod
		node     *v1.Node
		existing []*v1.Pod
		want     []string
	}{
		{name: "plain pod fits a ready node", pod: pod("p"), node: node("n1")},
		{name: "cordoned node", pod: pod("p"), node: node("n1", func(n *v1.Node) { n.Spec.Unschedulable = true }),
			want: []string{ReasonUnschedulable}},
		{name: "cordoned node tolerated",
			pod:  pod("p", tolerate(v1.Toleration{Key: v1.TaintNodeUnschedulable, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule})),
			node: node("n1", func(n *v1.Node) { n.Spec.Unschedulable = true })},
		{name: "not ready node", pod: pod("p"), node: node("n1", withReady(v1.ConditionFalse)),
			want: []string{"node(s) had untolerated taint {node.kubernetes.io/not-ready: }"}},
		{name: "unknown readiness", pod: pod("p"), node: node("n1", withReady(v1.ConditionUnknown)),
			want: []string{"node(s) had untolerated taint {node.kubernetes.io/unreachable: }"}},
		{name: "not ready tolerated",
			pod:  pod("p", tolerate(v1.Toleration{Key: v1.TaintNodeNotReady, Operator: v1.TolerationOpExists})),
			node: node("n1", withReady(v1.ConditionFalse))},
		{name: "NoSchedule taint", pod: pod("p"), node: node("n1", withTaint("dedicated", "gpu", v1.TaintEffectNoSchedule)),
			want: []string{"node(s) had untolerated taint {dedicated: gpu}"}},
		{name: "NoExecute taint", pod: pod("p"), node: node("n1", withTaint("evict", "", v1.TaintEffectNoExecute)),
			want: []string{"node(s) had untolerated taint {evict: }"}},
		{name: "PreferNoSchedule only scores", pod: pod("p"), node: node("n1", withTaint("soft", "x", v1.TaintEffectPreferNoSchedule))},
		{name: "taint tolerated by Equal",
			pod:  pod("p", tolerate(v1.Toleration{Key: "dedicated", Operator: v1.TolerationOpEqual, Value: "gpu", Effect: v1.TaintEffectNoSchedule})),
			node: node("n1", withTaint("dedicated", "gpu", v1.TaintEffectNoSchedule))},
		{name: "toleration for another value",
			pod:  pod("p", tolerate(v1.Toleration{Key: "dedicated", Operator: v1.TolerationOpEqual, Value: "db"})),
			node: node("n1", withTaint("dedicated", "gpu", v1.TaintEffectNoSchedule)),
			want: []string{"node(s) had untolerated taint {dedicated: gpu}"}},
		{name: "nodeSelector matches", pod: pod("p", nodeSelector("disk", "ssd")), node: node("n1", withLabel("disk", "ssd"))},
		{name: "nodeSelector misses", pod: pod("p", nodeSelector("disk", "ssd")), node: node("n1"),
			want: []string{ReasonNodeAffinity}},
		{name: "affinity In", pod: pod("p", requiredTerms(labelExpr("zone", v1.NodeSelectorOpIn, "a", "b"))),
			node: node("n1", withLabel("zone", "b"))},
		{name: "affinity NotIn", pod: pod("p", requiredTerms(labelExpr("zone", v1.NodeSelectorOpNotIn, "b"))),
			node: node("n1", withLabel("zone", "b")), want: []string{ReasonNodeAffinity}},
		{name: "affinity Exists", pod: pod("p", requiredTerms(labelExpr("gpu", v1.NodeSelectorOpExists))),
			node: node("n1"), want: []string{ReasonNodeAffinity}},
		{name: "affinity DoesNotExist", pod: pod("p", requiredTerms(labelExpr("gpu", v1.NodeSelectorOpDoesNotExist))),
			node: node("n1")},
		{name: "affinity Gt", pod: pod("p", requiredTerms(labelExpr("cores", v1.NodeSelectorOpGt, "8"))),
			node: node("n1", withLabel("cores", "16"))},
		{name: "affinity Lt fails", pod: pod("p", requiredTerms(labelExpr("cores", v1.NodeSelectorOpLt, "8"))),
			node: node("n1", withLabel("cores", "16")), want: []string{ReasonNodeAffinity}},
		{name: "terms are ORed", pod: pod("p", requiredTerms(labelExpr("zone", v1.NodeSelectorOpIn, "x"), labelExpr("kubernetes.io/hostname", v1.NodeSelectorOpIn, "n1"))),
			node: node("n1")},
		{name: "matchFields metadata.name pins the node",
			pod:  pod("p", requiredTerms(v1.NodeSelectorTerm{MatchFields: []v1.NodeSelectorRequirement{{Key: "metadata.name", Operator: v1.NodeSelectorOpIn, Values: []string{"n2"}}}})),
			node: node("n1"), want: []string{ReasonNodeAffinity}},
		{name: "matchFields on the right node",
			pod:  pod("p", requiredTerms(v1.NodeSelectorTerm{MatchFields: []v1.NodeSelectorRequirement{{Key: "metadata.name", Operator: v1.NodeSelectorOpIn, Values: []string{"n1"}}}})),
			node: node("n1")},
		{name: "insufficient cpu", pod: pod("p", requests("3", "")), node: node("n1"), want: []string{"Insufficient cpu"}},
		{name: "cpu used by bound pods", pod: pod("p", requests("1", "")), node: node("n1"),
			existing: []*v1.Pod{pod("a", requests("1500m", ""))}, want: []string{"Insufficient cpu"}},
		{name: "exactly fits", pod: pod("p", requests("500m", "1Gi")), node: node("n1"),
			existing: []*v1.Pod{pod("a", requests("1500m", "3Gi"))}},
		{name: "cpu and memory", pod: pod("p", requests("3", "5Gi")), node: node("n1"),
			want: []string{"Insufficient cpu", "Insufficient memory"}},
		{name: "too many pods", pod: pod("p"), node: node("n1", withAllocatable(v1.ResourcePods, "1")),
			existing: []*v1.Pod{pod("a")}, want: []string{ReasonTooManyPods}},
		{name: "extended resource missing", pod: pod("p", func(p *v1.Pod) {
			p.Spec.Containers[0].Resources.Requests = v1.ResourceList{"example.com/gpu": resource.MustParse("1")}
		}), node: node("n1"), want: []string{"Insufficient example.com/gpu"}},
		{name: "host port conflict", pod: pod("p", hostPortOn("", 8080)), node: node("n1"),
			existing: []*v1.Pod{pod("a", hostPortOn("10.0.0.1", 8080))}, want: []string{ReasonHostPorts}},
		{name: "host port on other addresses", pod: pod("p", hostPortOn("10.0.0.2", 8080)), node: node("n1"),
			existing: []*v1.Pod{pod("a", hostPortOn("10.0.0.1", 8080))}},
		{name: "taints are checked before resources", pod: pod("p", requests("3", "")),
			node: node("n1", withTaint("k", "v", v1.TaintEffectNoSchedule)), want: []string{"node(s) had untolerated taint {k: v}"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Filter(tc.pod, NewNodeInfo(tc.node, tc.existing...))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Filter = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDiagnosisMessage(t *testing.T) {
	d := Diagnosis{}
	d.Add([]string{"node(s) had untolerated taint {dedicated: gpu}"})
	d.Add([]string{"Insufficient cpu"})
	d.Add([]string{"Insufficient cpu", "Insufficient memory"})
	want := "0/3 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu."
	if got := d.Message(3); got != want {
		t.Errorf("Message = %q\nwant      %q", got, want)
	}
	if got := (Diagnosis{}).Message(0); got != NoNodesMessage {
		t.Errorf("no nodes: %q", got)
	}
}

func TestBestBreaksTiesAcrossAllCandidates(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	picked := map[int]int{}
	for range 300 {
		picked[Best([]int64{5, 9, 9, 1, 9}, r)]++
	}
	if len(picked) != 3 || picked[1] == 0 || picked[2] == 0 || picked[4] == 0 {
		t.Errorf("ties picked %v, want indexes 1, 2 and 4 only", picked)
	}
	if Best(nil, r) != -1 {
		t.Errorf("Best(nil) != -1")
	}
}

func TestHostPortsConflict(t *testing.T) {
	pod := func(ports ...v1.ContainerPort) *v1.Pod {
		return &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c", Ports: ports}}}}
	}
	any21017 := pod(v1.ContainerPort{ContainerPort: 21017, HostPort: 21017})
	for _, tc := range []struct {
		name string
		a, b *v1.Pod
		want bool
	}{
		{"same port, both on every address", any21017, any21017, true},
		{"every address overlaps one", any21017, pod(v1.ContainerPort{ContainerPort: 80, HostPort: 21017, HostIP: "192.0.2.1"}), true},
		{"two host IPs", pod(v1.ContainerPort{HostPort: 80, HostIP: "127.0.0.1"}), pod(v1.ContainerPort{HostPort: 80, HostIP: "192.0.2.1"}), false},
		{"two protocols", any21017, pod(v1.ContainerPort{HostPort: 21017, Protocol: v1.ProtocolUDP}), false},
		{"TCP is the default", any21017, pod(v1.ContainerPort{HostPort: 21017, Protocol: v1.ProtocolTCP}), true},
		{"no host port", any21017, pod(v1.ContainerPort{ContainerPort: 21017}), false},
	} {
		if got := HostPortsConflict(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: conflict = %v, want %v", tc.name, got, tc.want)
		}
	}
	if !HasHostPorts(any21017) || HasHostPorts(pod(v1.ContainerPort{ContainerPort: 80})) {
		t.Error("HasHostPorts")
	}
}
