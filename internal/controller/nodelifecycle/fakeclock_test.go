package nodelifecycle

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

// TestSyncWithFakeClock drives the controller's syncs by hand on a fake
// clock: nothing sleeps, every boundary is exact. Beside the failing node
// n1 there is a Ready n2 (evictions happen) or nothing (a fully disrupted
// zone: evictions are held).
func TestSyncWithFakeClock(t *testing.T) {
	t.Run("with a Ready neighbour", func(t *testing.T) { runWithFakeClock(t, true) })
	t.Run("alone in its zone", func(t *testing.T) { runWithFakeClock(t, false) })
}

func runWithFakeClock(t *testing.T, neighbour bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := clocktesting.NewFakeClock(t0)
	node := readyNode(v1.ConditionTrue, t0)
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "uid-p"},
		Spec: v1.PodSpec{NodeName: "n1", Tolerations: []v1.Toleration{
			{Key: v1.TaintNodeUnreachable, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)}}},
		Status: v1.PodStatus{Phase: v1.PodRunning, Conditions: []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue}}},
	}
	objs := []runtime.Object{node, pod}
	if neighbour {
		n2 := readyNode(v1.ConditionTrue, t0)
		n2.Name = "n2"
		objs = append(objs, n2)
	}
	client := fake.NewClientset(objs...)
	f := informers.NewSharedInformerFactory(client, 0)
	c := New(client, f, record.NewFakeRecorder(100), Options{Clock: clk})
	var scheduled []time.Duration
	c.after = func(_ string, d time.Duration) { scheduled = append(scheduled, d) }
	f.Start(ctx.Done())
	defer func() { cancel(); f.Shutdown() }()
	cache.WaitForCacheSync(ctx.Done(), c.nodeLoop.Synced...)

	// waitCache lets the informers catch up with the controller's writes.
	waitCache := func(what string, ok func() bool) {
		t.Helper()
		for i := 0; i < 200 && !ok(); i++ {
			time.Sleep(5 * time.Millisecond)
		}
		if !ok() {
			t.Fatalf("cache never showed %s", what)
		}
	}
	syncNode := func() *v1.Node {
		t.Helper()
		if err := c.syncNode(ctx, "n1"); err != nil {
			t.Fatal(err)
		}
		n, err := client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	// First sight starts the grace period; at exactly 50s nothing happens.
	syncNode()
	clk.Step(DefaultNodeMonitorGracePeriod)
	if n := syncNode(); readyStatus(n) != v1.ConditionTrue || len(n.Spec.Taints) != 0 {
		t.Fatalf("at the grace boundary: ready=%s taints=%v", readyStatus(n), taintStrings(n.Spec.Taints))
	}
	// One tick later the node is Unknown and tainted, stamped with now.
	clk.Step(time.Second)
	n := syncNode()
	if readyStatus(n) != v1.ConditionUnknown {
		t.Fatalf("past the grace: ready=%s", readyStatus(n))
	}
	taint := hasTaint(n, v1.TaintNodeUnreachable, v1.TaintEffectNoExecute)
	if taint == nil || !taint.TimeAdded.Time.Equal(clk.Now()) || hasTaint(n, v1.TaintNodeUnreachable, v1.TaintEffectNoSchedule) == nil {
		t.Fatalf("taints %v, want unreachable NoSchedule+NoExecute added at %v", taintStrings(n.Spec.Taints), clk.Now())
	}
	taintedAt := clk.Now()
	waitCache("tainted node", func() bool {
		cached, _ := c.nodes.Get("n1")
		return len(cached.Spec.Taints) == 2
	})

	// The pod goes not ready at once and is scheduled for 300s later.
	if err := c.syncPod(ctx, "default/p"); err != nil {
		t.Fatal(err)
	}
	got, _ := client.CoreV1().Pods("default").Get(ctx, "p", metav1.GetOptions{})
	if got.Status.Conditions[0].Status != v1.ConditionFalse {
		t.Fatalf("pod Ready = %s, want False", got.Status.Conditions[0].Status)
	}
	if len(scheduled) != 1 || scheduled[0] != 300*time.Second {
		t.Fatalf("scheduled %v, want one eviction 300s out", scheduled)
	}
	waitCache("pod not ready", func() bool {
		p, _ := c.pods.Pods("default").Get("p")
		return p.Status.Conditions[0].Status == v1.ConditionFalse
	})

	// A second before the deadline it is still there; at the deadline it
	// is evicted.
	clk.SetTime(taintedAt.Add(299 * time.Second))
	if err := c.syncPod(ctx, "default/p"); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Pods("default").Get(ctx, "p", metav1.GetOptions{}); err != nil {
		t.Fatalf("pod evicted before its toleration ran out: %v", err)
	}
	if scheduled[len(scheduled)-1] != time.Second {
		t.Fatalf("rescheduled in %v, want 1s", scheduled[len(scheduled)-1])
	}
	clk.SetTime(taintedAt.Add(300 * time.Second))
	if err := c.syncPod(ctx, "default/p"); err != nil {
		t.Fatal(err)
	}
	_, err := client.CoreV1().Pods("default").Get(ctx, "p", metav1.GetOptions{})
	if !neighbour {
		if err != nil {
			t.Fatalf("the only node's pod was evicted: %v", err)
		}
		if last := scheduled[len(scheduled)-1]; last != DefaultNodeMonitorPeriod {
			t.Fatalf("held eviction looked at again in %v, want %v", last, DefaultNodeMonitorPeriod)
		}
		return
	}
	if err == nil {
		t.Fatalf("pod not evicted at its deadline")
	}

	// The kubelet reports again: taints go.
	n, _ = client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	ready := condition(n, v1.NodeReady)
	ready.Status, ready.Reason = v1.ConditionTrue, "KubeletReady"
	ready.LastHeartbeatTime = metav1.NewTime(clk.Now())
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCache("ready node", func() bool {
		cached, _ := c.nodes.Get("n1")
		return readyStatus(cached) == v1.ConditionTrue
	})
	if n := syncNode(); len(n.Spec.Taints) != 0 || readyStatus(n) != v1.ConditionTrue {
		t.Fatalf("after recovery: ready=%s taints=%v", readyStatus(n), taintStrings(n.Spec.Taints))
	}
}
