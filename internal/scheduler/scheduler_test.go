package scheduler

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/portal-net/portal/internal/apitest"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// startScheduler runs a scheduler against the test API server with events
// recorded into the API, as in production.
func startScheduler(t *testing.T, client kubernetes.Interface) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: DefaultSchedulerName})
	f := informers.NewSharedInformerFactory(client, 0)
	s := New(client, f, recorder, Options{InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	f.Start(ctx.Done())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx, 1) }()
	t.Cleanup(func() {
		cancel()
		<-done
		f.Shutdown()
		broadcaster.Shutdown()
	})
}

// addNode registers a Ready node with the given CPU and labels, as a node
// agent would: create, then report status.
func addNode(t *testing.T, c kubernetes.Interface, name, cpu string, labels map[string]string, taints ...v1.Taint) {
	t.Helper()
	ctx := context.Background()
	l := map[string]string{"kubernetes.io/hostname": name}
	for k, v := range labels {
		l[k] = v
	}
	n, err := c.CoreV1().Nodes().Create(ctx, &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l},
		Spec:       v1.NodeSpec{Taints: taints},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Status.Allocatable = v1.ResourceList{
		v1.ResourceCPU:    resource.MustParse(cpu),
		v1.ResourceMemory: resource.MustParse("8Gi"),
		v1.ResourcePods:   resource.MustParse("110"),
	}
	n.Status.Capacity = n.Status.Allocatable
	n.Status.Conditions = []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady",
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	if _, err := c.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

type podSpec struct {
	name         string
	owner        types.UID
	cpu          string
	nodeSelector map[string]string
	tolerations  []v1.Toleration
}

func createPod(t *testing.T, c kubernetes.Interface, ns string, ps podSpec) {
	t.Helper()
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: ps.name, Namespace: ns, Labels: map[string]string{"app": "web"}},
		Spec: v1.PodSpec{
			Containers:   []v1.Container{{Name: "c", Image: "nginx"}},
			NodeSelector: ps.nodeSelector,
			Tolerations:  ps.tolerations,
		},
	}
	if ps.cpu != "" {
		p.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceCPU: resource.MustParse(ps.cpu)}
	}
	if ps.owner != "" {
		yes := true
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: ps.owner, Controller: &yes}}
	}
	if _, err := c.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitBound waits until every named pod has a node and returns pod → node.
func waitBound(t *testing.T, c kubernetes.Interface, ns string, names ...string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		for _, n := range names {
			p, err := c.CoreV1().Pods(ns).Get(ctx, n, metav1.GetOptions{})
			if err != nil || p.Spec.NodeName == "" {
				return false, nil
			}
			got[n] = p.Spec.NodeName
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("pods %v not all bound: %v (so far %v)", names, err, got)
	}
	return got
}

func TestSchedulerPlacesPods(t *testing.T) {
	s := apitest.Start(t)
	c := s.Client
	ctx := context.Background()
	for _, n := range []string{"node-1", "node-2", "node-3"} {
		labels := map[string]string(nil)
		if n == "node-2" {
			labels = map[string]string{"disk": "ssd"}
		}
		addNode(t, c, n, "2", labels)
	}
	startScheduler(t, c)
	const ns = "default"

	t.Run("pods of one owner spread 2/2/2", func(t *testing.T) {
		var names []string
		for i := range 6 {
			names = append(names, fmt.Sprintf("web-%d", i))
			createPod(t, c, ns, podSpec{name: names[i], owner: "rs-web-uid", cpu: "100m"})
		}
		perNode := map[string]int{}
		for _, node := range waitBound(t, c, ns, names...) {
			perNode[node]++
		}
		want := map[string]int{"node-1": 2, "node-2": 2, "node-3": 2}
		if fmt.Sprint(perNode) != fmt.Sprint(want) {
			t.Errorf("pods per node %v, want %v", perNode, want)
		}
		p, err := c.CoreV1().Pods(ns).Get(ctx, "web-0", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cond := podScheduledCondition(p); cond == nil || cond.Status != v1.ConditionTrue {
			t.Errorf("PodScheduled condition %+v, want True", cond)
		}
		waitEvent(t, c, ns, "web-0", "Scheduled", "Successfully assigned default/web-0 to "+p.Spec.NodeName)
	})

	t.Run("nodeSelector pod lands on the labelled node", func(t *testing.T) {
		createPod(t, c, ns, podSpec{name: "ssd", nodeSelector: map[string]string{"disk": "ssd"}})
		if got := waitBound(t, c, ns, "ssd")["ssd"]; got != "node-2" {
			t.Errorf("ssd pod on %s, want node-2", got)
		}
	})

	t.Run("tainted node gets only tolerating pods", func(t *testing.T) {
		n, err := c.CoreV1().Nodes().Get(ctx, "node-3", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n.Spec.Taints = []v1.Taint{{Key: "dedicated", Value: "gpu", Effect: v1.TaintEffectNoSchedule}}
		if _, err := c.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		// Let the scheduler's cache see the taint before pods arrive.
		time.Sleep(300 * time.Millisecond)
		var plain []string
		for i := range 6 {
			plain = append(plain, fmt.Sprintf("plain-%d", i))
			createPod(t, c, ns, podSpec{name: plain[i], owner: "rs-plain-uid"})
		}
		createPod(t, c, ns, podSpec{name: "gpu", nodeSelector: map[string]string{"kubernetes.io/hostname": "node-3"},
			tolerations: []v1.Toleration{{Key: "dedicated", Operator: v1.TolerationOpEqual, Value: "gpu", Effect: v1.TaintEffectNoSchedule}}})
		for name, node := range waitBound(t, c, ns, plain...) {
			if node == "node-3" {
				t.Errorf("%s landed on tainted node-3", name)
			}
		}
		if got := waitBound(t, c, ns, "gpu")["gpu"]; got != "node-3" {
			t.Errorf("tolerating pod on %s, want node-3", got)
		}
	})

	t.Run("too big pod waits for a big enough node", func(t *testing.T) {
		createPod(t, c, ns, podSpec{name: "huge", cpu: "8"})
		want := "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu."
		var last *v1.Pod
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
			p, err := c.CoreV1().Pods(ns).Get(ctx, "huge", metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			last = p
			cond := podScheduledCondition(p)
			return cond != nil && cond.Status == v1.ConditionFalse && cond.Reason == "Unschedulable" && cond.Message == want, nil
		})
		if err != nil {
			t.Fatalf("PodScheduled condition never became False/Unschedulable %q: %+v", want, last.Status.Conditions)
		}
		if last.Spec.NodeName != "" || last.Status.Phase != v1.PodPending {
			t.Errorf("huge pod node %q phase %q, want unbound and Pending", last.Spec.NodeName, last.Status.Phase)
		}
		waitEvent(t, c, ns, "huge", "FailedScheduling", want)

		addNode(t, c, "node-big", "16", nil)
		if got := waitBound(t, c, ns, "huge")["huge"]; got != "node-big" {
			t.Errorf("huge pod on %s, want node-big", got)
		}
	})

	t.Run("back-to-back pods never overbook a node", func(t *testing.T) {
		// node-big has 8 of 16 cores left: exactly one of these fits.
		createPod(t, c, ns, podSpec{name: "half-a", cpu: "8"})
		createPod(t, c, ns, podSpec{name: "half-b", cpu: "8"})
		want := "0/4 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 3 Insufficient cpu."
		var bound, pending []string
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
			bound, pending = nil, nil
			for _, name := range []string{"half-a", "half-b"} {
				p, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return false, nil
				}
				if p.Spec.NodeName != "" {
					bound = append(bound, name+"@"+p.Spec.NodeName)
				} else if cond := podScheduledCondition(p); cond != nil && cond.Reason == "Unschedulable" && cond.Message == want {
					pending = append(pending, name)
				}
			}
			return len(bound)+len(pending) == 2, nil
		})
		if err != nil || len(bound) != 1 || len(pending) != 1 || bound[0][len(bound[0])-len("node-big"):] != "node-big" {
			t.Errorf("bound %v, unschedulable %v (%v); want one on node-big and one Unschedulable with %q", bound, pending, err, want)
		}
	})
}

func waitEvent(t *testing.T, c kubernetes.Interface, ns, pod, reason, message string) {
	t.Helper()
	var seen []string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		evs, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		seen = seen[:0]
		for _, e := range evs.Items {
			if e.InvolvedObject.Name != pod {
				continue
			}
			seen = append(seen, e.Reason+": "+e.Message)
			if e.Reason == reason && e.Message == message && e.Source.Component == DefaultSchedulerName {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Errorf("no event %s %q for %s; saw %q", reason, message, pod, seen)
	}
}
