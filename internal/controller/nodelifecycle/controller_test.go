package nodelifecycle

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portal-net/portal/internal/apitest"
	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/portal-net/portal/internal/controller/internal/ctltest"
)

// kubelet simulates a node agent: it posts Ready and renews the lease.
type kubelet struct {
	client kubernetes.Interface
	name   string
	paused atomic.Bool
}

func (k *kubelet) register(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if _, err := k.client.CoreV1().Nodes().Create(ctx, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: k.name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	k.postReady(t)
	_, err := k.client.CoordinationV1().Leases(v1.NamespaceNodeLease).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: k.name},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(k.name), LeaseDurationSeconds: ptr.To[int32](40), RenewTime: ptr.To(metav1.NowMicro())},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func (k *kubelet) postReady(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	n, err := k.client.CoreV1().Nodes().Get(ctx, k.name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	n.Status.Conditions = []v1.NodeCondition{
		{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now},
		{Type: v1.NodeMemoryPressure, Status: v1.ConditionFalse, Reason: "KubeletHasSufficientMemory", LastHeartbeatTime: now, LastTransitionTime: now},
	}
	if _, err := k.client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// renew renews the lease every 200ms (unless paused) until ctx ends.
func (k *kubelet) renew(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
		if k.paused.Load() {
			continue
		}
		l, err := k.client.CoordinationV1().Leases(v1.NamespaceNodeLease).Get(ctx, k.name, metav1.GetOptions{})
		if err != nil {
			continue
		}
		l.Spec.RenewTime = ptr.To(metav1.NowMicro())
		_, _ = k.client.CoordinationV1().Leases(v1.NamespaceNodeLease).Update(ctx, l, metav1.UpdateOptions{})
	}
}

func runningPod(t *testing.T, client kubernetes.Interface, name, node string, tols ...v1.Toleration) {
	t.Helper()
	ctx := context.Background()
	p, err := client.CoreV1().Pods("default").Create(ctx, &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PodSpec{NodeName: node, Tolerations: tols,
			Containers: []v1.Container{{Name: "c", Image: "nginx"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	p.Status.Phase = v1.PodRunning
	p.Status.PodIP = "10.42.0.10"
	p.Status.Conditions = []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue, LastTransitionTime: now}}
	if _, err := client.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func podReady(t *testing.T, client kubernetes.Interface, name string) v1.ConditionStatus {
	t.Helper()
	p, err := client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod %s: %v", name, err)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady {
			return c.Status
		}
	}
	return ""
}

func nodeState(t *testing.T, client kubernetes.Interface, name string) (*v1.Node, string) {
	t.Helper()
	n, err := client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n, fmt.Sprintf("ready=%s taints=%v", readyStatus(n), taintStrings(n.Spec.Taints))
}

func hasTaint(n *v1.Node, key string, effect v1.TaintEffect) *v1.Taint {
	for i := range n.Spec.Taints {
		if n.Spec.Taints[i].Key == key && n.Spec.Taints[i].Effect == effect {
			return &n.Spec.Taints[i]
		}
	}
	return nil
}

func TestNodeLifecycleAgainstAPIServer(t *testing.T) {
	s := apitest.Start(t)
	client := s.Client
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	alive := &kubelet{client: client, name: "alive"}
	dying := &kubelet{client: client, name: "dying"}
	alive.register(t)
	dying.register(t)
	go alive.renew(ctx)
	go dying.renew(ctx)

	runningPod(t, client, "web-alive", "alive")
	runningPod(t, client, "web-dying", "dying") // gets the API server's 300s tolerations
	runningPod(t, client, "quick", "dying", v1.Toleration{Key: v1.TaintNodeUnreachable, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](1)})
	runningPod(t, client, "stays", "dying", v1.Toleration{Operator: v1.TolerationOpExists})

	const grace, period = 2 * time.Second, 200 * time.Millisecond
	rec := record.NewFakeRecorder(100)
	f := informers.NewSharedInformerFactory(client, 0)
	c := New(client, f, rec, Options{NodeMonitorGracePeriod: grace, NodeMonitorPeriod: period})
	f.Start(ctx.Done())
	done := make(chan struct{})
	go func() { c.Run(ctx, 2); close(done) }()
	defer func() { cancel(); <-done; f.Shutdown() }()

	// Both nodes renew: after more than a grace period both are Ready
	// and untainted.
	time.Sleep(grace + 2*period)
	for _, name := range []string{"alive", "dying"} {
		if n, state := nodeState(t, client, name); readyStatus(n) != v1.ConditionTrue || len(n.Spec.Taints) > 0 {
			t.Fatalf("renewing node %s: %s", name, state)
		}
	}

	dying.paused.Store(true)
	stopped := time.Now()
	var tainted *v1.Taint
	at := ctltest.Eventually(t, grace+3*period+2*time.Second, "dying node Unknown and tainted unreachable", func() (bool, string) {
		n, state := nodeState(t, client, "dying")
		ready := condition(n, v1.NodeReady)
		tainted = hasTaint(n, v1.TaintNodeUnreachable, v1.TaintEffectNoExecute)
		ok := ready.Status == v1.ConditionUnknown && ready.Reason == "NodeStatusUnknown" &&
			ready.Message == "Kubelet stopped posting node status." &&
			condition(n, v1.NodeMemoryPressure).Status == v1.ConditionUnknown &&
			tainted != nil && tainted.TimeAdded != nil && hasTaint(n, v1.TaintNodeUnreachable, v1.TaintEffectNoSchedule) != nil
		return ok, state
	})
	// Measured from the last renewal that landed (the pause may come just
	// after one), not from the pause itself.
	l, err := client.CoordinationV1().Leases(v1.NamespaceNodeLease).Get(ctx, "dying", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := at.Sub(l.Spec.RenewTime.Time); d < grace {
		t.Fatalf("node marked Unknown %v after the last renewal, before the %v grace period", d, grace)
	}
	t.Logf("node Unknown and tainted %v after renewals stopped", at.Sub(stopped))
	ctltest.Eventually(t, time.Second, "pods on the dying node not ready", func() (bool, string) {
		a, b := podReady(t, client, "web-dying"), podReady(t, client, "stays")
		return a == v1.ConditionFalse && b == v1.ConditionFalse, fmt.Sprintf("web-dying=%s stays=%s", a, b)
	})
	if r := podReady(t, client, "web-alive"); r != v1.ConditionTrue {
		t.Fatalf("pod on the healthy node: Ready=%s", r)
	}
	if n, state := nodeState(t, client, "alive"); readyStatus(n) != v1.ConditionTrue || len(n.Spec.Taints) > 0 {
		t.Fatalf("renewing node alive: %s", state)
	}

	// quick tolerates the taint for 1s. Bound pods are deleted gracefully,
	// and no kubelet confirms, so the pod stays Terminating: its
	// deletionTimestamp is what the eviction leaves behind.
	evicted := ctltest.Eventually(t, 5*time.Second, "quick evicted", func() (bool, string) {
		p, err := client.CoreV1().Pods("default").Get(context.Background(), "quick", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			t.Log("quick was removed outright")
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		if p.DeletionTimestamp != nil {
			t.Log("quick is Terminating (no kubelet to confirm the graceful delete)")
		}
		return p.DeletionTimestamp != nil, fmt.Sprintf("conditions %v", p.Status.Conditions)
	})
	if due := tainted.TimeAdded.Add(time.Second); evicted.Before(due) {
		t.Fatalf("quick evicted at %v, before its toleration ran out at %v", evicted, due)
	}
	if p, err := client.CoreV1().Pods("default").Get(context.Background(), "quick", metav1.GetOptions{}); err == nil {
		disrupted := false
		for _, c := range p.Status.Conditions {
			disrupted = disrupted || (c.Type == v1.DisruptionTarget && c.Status == v1.ConditionTrue && c.Reason == "DeletionByTaintManager")
		}
		if !disrupted {
			t.Errorf("evicted pod lacks the DisruptionTarget condition: %v", p.Status.Conditions)
		}
	}
	time.Sleep(time.Second)
	for _, name := range []string{"web-dying", "stays", "web-alive"} {
		p, err := client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil || p.DeletionTimestamp != nil {
			t.Fatalf("pod %s should stay (300s or unlimited toleration): err=%v deletion=%v", name, err, p.DeletionTimestamp)
		}
	}

	// The node comes back: the kubelet posts Ready and renews again.
	dying.postReady(t)
	dying.paused.Store(false)
	ctltest.Eventually(t, 2*time.Second, "taints removed after recovery", func() (bool, string) {
		n, state := nodeState(t, client, "dying")
		return readyStatus(n) == v1.ConditionTrue && len(n.Spec.Taints) == 0, state
	})
	time.Sleep(grace + 2*period)
	if n, state := nodeState(t, client, "dying"); readyStatus(n) != v1.ConditionTrue || len(n.Spec.Taints) > 0 {
		t.Fatalf("recovered, renewing node went bad again: %s", state)
	}

	events := map[string]bool{}
	for len(rec.Events) > 0 {
		events[<-rec.Events] = true
	}
	for _, want := range []string{
		"Normal NodeNotReady Node dying status is now: NodeNotReady",
		"Warning NodeNotReady Node is not ready",
		"Normal TaintManagerEviction Marking for deletion Pod default/quick",
	} {
		if !events[want] {
			t.Errorf("missing event %q; got %v", want, events)
		}
	}
}
