package nodelifecycle

import (
	"fmt"
	"slices"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func readyNode(status v1.ConditionStatus, heartbeat time.Time, extra ...v1.NodeCondition) *v1.Node {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour))}}
	n.Status.Conditions = append([]v1.NodeCondition{{Type: v1.NodeReady, Status: status, Reason: "KubeletReady",
		LastHeartbeatTime: metav1.NewTime(heartbeat), LastTransitionTime: metav1.NewTime(heartbeat)}}, extra...)
	return n
}

func lease(renew time.Time) *coordinationv1.Lease {
	return &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{RenewTime: ptr.To(metav1.NewMicroTime(renew))}}
}

func TestObserve(t *testing.T) {
	node := readyNode(v1.ConditionTrue, t0)
	h := observe(nil, node, lease(t0), t0.Add(5*time.Second))
	if !h.probe.Equal(t0.Add(5 * time.Second)) {
		t.Fatalf("first sight: probe %v, want the time of observation (a full grace period after restart)", h.probe)
	}
	steps := []struct {
		name      string
		heartbeat time.Time
		renew     time.Time
		at        time.Time
		wantProbe time.Time
	}{
		{"nothing renewed", t0, t0, t0.Add(20 * time.Second), t0.Add(5 * time.Second)},
		{"lease renewed", t0, t0.Add(30 * time.Second), t0.Add(31 * time.Second), t0.Add(31 * time.Second)},
		{"heartbeat renewed, lease older", t0.Add(40 * time.Second), t0.Add(30 * time.Second), t0.Add(41 * time.Second), t0.Add(41 * time.Second)},
		{"lease went backwards", t0.Add(40 * time.Second), t0.Add(10 * time.Second), t0.Add(60 * time.Second), t0.Add(41 * time.Second)},
	}
	for _, s := range steps {
		h = observe(h, readyNode(v1.ConditionTrue, s.heartbeat), lease(s.renew), s.at)
		if !h.probe.Equal(s.wantProbe) {
			t.Fatalf("%s: probe %v, want %v", s.name, h.probe, s.wantProbe)
		}
	}

	fresh := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "new", CreationTimestamp: metav1.NewTime(t0)}}
	if h := observe(nil, fresh, nil, t0.Add(time.Minute)); !h.probe.Equal(t0) {
		t.Fatalf("never-posted node: probe %v, want its creation %v", h.probe, t0)
	}
}

func TestStaleConditions(t *testing.T) {
	o := Options{NodeMonitorGracePeriod: 50 * time.Second, NodeStartupGracePeriod: 60 * time.Second}
	pressure := v1.NodeCondition{Type: v1.NodeMemoryPressure, Status: v1.ConditionFalse, Reason: "KubeletHasSufficientMemory"}
	tests := []struct {
		name    string
		node    *v1.Node
		probe   time.Time
		now     time.Time
		changed bool
		want    map[v1.NodeConditionType]string // type -> status/reason
	}{
		{name: "at the grace boundary", node: readyNode(v1.ConditionTrue, t0), probe: t0, now: t0.Add(50 * time.Second)},
		{name: "just past the boundary", node: readyNode(v1.ConditionTrue, t0, pressure), probe: t0, now: t0.Add(50*time.Second + time.Millisecond),
			changed: true, want: map[v1.NodeConditionType]string{
				v1.NodeReady:          "Unknown/NodeStatusUnknown",
				v1.NodeMemoryPressure: "Unknown/NodeStatusUnknown",
				v1.NodeDiskPressure:   "Unknown/NodeStatusNeverUpdated",
				v1.NodePIDPressure:    "Unknown/NodeStatusNeverUpdated",
			}},
		{name: "NotReady node goes Unknown too", node: readyNode(v1.ConditionFalse, t0), probe: t0, now: t0.Add(time.Minute),
			changed: true, want: map[v1.NodeConditionType]string{v1.NodeReady: "Unknown/NodeStatusUnknown"}},
		{name: "already Unknown: nothing to write", probe: t0, now: t0.Add(time.Hour),
			node: func() *v1.Node {
				n := readyNode(v1.ConditionUnknown, t0)
				for _, ct := range []v1.NodeConditionType{v1.NodeMemoryPressure, v1.NodeDiskPressure, v1.NodePIDPressure} {
					n.Status.Conditions = append(n.Status.Conditions, v1.NodeCondition{Type: ct, Status: v1.ConditionUnknown})
				}
				return n
			}()},
		{name: "never posted, within startup grace", node: &v1.Node{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(t0)}},
			probe: t0, now: t0.Add(55 * time.Second)},
		{name: "never posted, past startup grace", node: &v1.Node{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(t0)}},
			probe: t0, now: t0.Add(61 * time.Second), changed: true,
			want: map[v1.NodeConditionType]string{v1.NodeReady: "Unknown/NodeStatusNeverUpdated"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conds, changed := staleConditions(tt.node, &health{probe: tt.probe}, o, tt.now)
			if changed != tt.changed {
				t.Fatalf("changed = %v, want %v (conditions %+v)", changed, tt.changed, conds)
			}
			n := &v1.Node{Status: v1.NodeStatus{Conditions: conds}}
			for ct, want := range tt.want {
				c := condition(n, ct)
				if c == nil {
					t.Fatalf("%s missing", ct)
				}
				if got := string(c.Status) + "/" + c.Reason; got != want {
					t.Errorf("%s = %s, want %s", ct, got, want)
				}
				if c.Reason == reasonStatusUnknown && c.Message != "Kubelet stopped posting node status." {
					t.Errorf("%s message %q", ct, c.Message)
				}
				if !c.LastTransitionTime.Time.Equal(tt.now) {
					t.Errorf("%s transition time %v, want %v", ct, c.LastTransitionTime, tt.now)
				}
			}
			if ready := condition(n, v1.NodeReady); ready != nil && ready.Reason == reasonStatusUnknown && !ready.LastHeartbeatTime.Time.Equal(t0) {
				t.Errorf("heartbeat time changed to %v; it must keep the node's last report", ready.LastHeartbeatTime)
			}
		})
	}
}

func taintStrings(ts []v1.Taint) []string {
	var out []string
	for _, t := range ts {
		s := t.Key + ":" + string(t.Effect)
		if t.TimeAdded != nil {
			s += "@" + t.TimeAdded.UTC().Format("15:04:05")
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func TestReconcileTaints(t *testing.T) {
	now := t0.Add(time.Minute)
	old := metav1.NewTime(t0)
	user := v1.Taint{Key: "dedicated", Value: "db", Effect: v1.TaintEffectNoExecute}
	tests := []struct {
		name    string
		node    *v1.Node
		taints  []v1.Taint
		want    []string
		changed bool
	}{
		{name: "ready node, no taints", node: readyNode(v1.ConditionTrue, t0)},
		{name: "unknown gets unreachable", node: readyNode(v1.ConditionUnknown, t0), taints: []v1.Taint{user}, changed: true,
			want: []string{"dedicated:NoExecute", "node.kubernetes.io/unreachable:NoExecute@12:01:00", "node.kubernetes.io/unreachable:NoSchedule@12:01:00"}},
		{name: "not ready gets not-ready", node: readyNode(v1.ConditionFalse, t0), changed: true,
			want: []string{"node.kubernetes.io/not-ready:NoExecute@12:01:00", "node.kubernetes.io/not-ready:NoSchedule@12:01:00"}},
		{name: "unknown to not ready swaps the taints", node: readyNode(v1.ConditionFalse, t0), changed: true,
			taints: []v1.Taint{{Key: v1.TaintNodeUnreachable, Effect: v1.TaintEffectNoExecute, TimeAdded: &old}, {Key: v1.TaintNodeUnreachable, Effect: v1.TaintEffectNoSchedule, TimeAdded: &old}},
			want:   []string{"node.kubernetes.io/not-ready:NoExecute@12:01:00", "node.kubernetes.io/not-ready:NoSchedule@12:01:00"}},
		{name: "existing taints keep their time", node: readyNode(v1.ConditionUnknown, t0),
			taints: []v1.Taint{{Key: v1.TaintNodeUnreachable, Effect: v1.TaintEffectNoExecute, TimeAdded: &old}, {Key: v1.TaintNodeUnreachable, Effect: v1.TaintEffectNoSchedule, TimeAdded: &old}},
			want:   []string{"node.kubernetes.io/unreachable:NoExecute@12:00:00", "node.kubernetes.io/unreachable:NoSchedule@12:00:00"}},
		{name: "recovered node loses them, user taint stays", node: readyNode(v1.ConditionTrue, t0), changed: true,
			taints: []v1.Taint{user, {Key: v1.TaintNodeUnreachable, Effect: v1.TaintEffectNoExecute, TimeAdded: &old}, {Key: v1.TaintNodeUnreachable, Effect: v1.TaintEffectNoSchedule}},
			want:   []string{"dedicated:NoExecute"}},
		{name: "pressure and unschedulable", changed: true,
			node: func() *v1.Node {
				n := readyNode(v1.ConditionTrue, t0, v1.NodeCondition{Type: v1.NodeMemoryPressure, Status: v1.ConditionTrue}, v1.NodeCondition{Type: v1.NodeDiskPressure, Status: v1.ConditionFalse})
				n.Spec.Unschedulable = true
				return n
			}(),
			want: []string{"node.kubernetes.io/memory-pressure:NoSchedule@12:01:00", "node.kubernetes.io/unschedulable:NoSchedule@12:01:00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.node.Spec.Taints = tt.taints
			got, changed := reconcileTaints(tt.node, now)
			if changed != tt.changed || !slices.Equal(taintStrings(got), tt.want) {
				t.Fatalf("got %v changed=%v, want %v changed=%v", taintStrings(got), changed, tt.want, tt.changed)
			}
		})
	}
}

func TestEvictionTime(t *testing.T) {
	added := metav1.NewTime(t0)
	unreachable := v1.Taint{Key: v1.TaintNodeUnreachable, Effect: v1.TaintEffectNoExecute, TimeAdded: &added}
	noSchedule := v1.Taint{Key: v1.TaintNodeUnreachable, Effect: v1.TaintEffectNoSchedule, TimeAdded: &added}
	tol := func(key string, secs *int64) v1.Toleration {
		return v1.Toleration{Key: key, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoExecute, TolerationSeconds: secs}
	}
	seen := t0.Add(7 * time.Second)
	tests := []struct {
		name   string
		taints []v1.Taint
		tols   []v1.Toleration
		want   string // "never" or offset from t0
	}{
		{name: "no taints", want: "never"},
		{name: "NoSchedule only", taints: []v1.Taint{noSchedule}, want: "never"},
		{name: "not tolerated: at once", taints: []v1.Taint{unreachable}, want: "0s"},
		{name: "default 300s toleration", taints: []v1.Taint{unreachable}, tols: []v1.Toleration{tol(v1.TaintNodeUnreachable, ptr.To[int64](300))}, want: "5m0s"},
		{name: "tolerated forever", taints: []v1.Taint{unreachable}, tols: []v1.Toleration{tol(v1.TaintNodeUnreachable, nil)}, want: "never"},
		{name: "shortest matching toleration wins", taints: []v1.Taint{unreachable},
			tols: []v1.Toleration{tol(v1.TaintNodeUnreachable, nil), tol("", ptr.To[int64](60)), tol(v1.TaintNodeUnreachable, ptr.To[int64](300))}, want: "1m0s"},
		{name: "negative seconds mean at once", taints: []v1.Taint{unreachable}, tols: []v1.Toleration{tol(v1.TaintNodeUnreachable, ptr.To[int64](-5))}, want: "0s"},
		{name: "one untolerated taint among tolerated ones", taints: []v1.Taint{unreachable, {Key: "dedicated", Effect: v1.TaintEffectNoExecute, TimeAdded: &added}},
			tols: []v1.Toleration{tol(v1.TaintNodeUnreachable, nil)}, want: "0s"},
		{name: "taint without timeAdded counts from first sight", taints: []v1.Taint{{Key: "maint", Effect: v1.TaintEffectNoExecute}},
			tols: []v1.Toleration{tol("maint", ptr.To[int64](10))}, want: "17s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &v1.Pod{Spec: v1.PodSpec{Tolerations: tt.tols}}
			at, ok := evictionTime(klog.Background(), pod, tt.taints, func(v1.Taint) time.Time { return seen })
			got := "never"
			if ok {
				got = fmt.Sprint(at.Sub(t0))
			}
			if got != tt.want {
				t.Fatalf("eviction at %s, want %s", got, tt.want)
			}
		})
	}
}
