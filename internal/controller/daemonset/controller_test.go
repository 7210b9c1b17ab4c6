package daemonset

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/portal-net/portal/internal/apitest"
	"github.com/portal-net/portal/internal/controller/internal/podutil"
	"github.com/portal-net/portal/internal/scheduler"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
)

func addNode(t *testing.T, c kubernetes.Interface, name string, taints ...v1.Taint) {
	t.Helper()
	ctx := context.Background()
	n, err := c.CoreV1().Nodes().Create(ctx, &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Spec:       v1.NodeSpec{Taints: taints},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Status.Allocatable = v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("8Gi"), v1.ResourcePods: resource.MustParse("110")}
	n.Status.Conditions = []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	if _, err := c.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// fakeKubelets stands in for the node agents: bound pods start and turn
// Ready, terminating pods finish and disappear.
func fakeKubelets(ctx context.Context, c kubernetes.Interface, ns string) {
	zero := int64(0)
	_ = wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			switch {
			case p.DeletionTimestamp != nil:
				_ = c.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
			case p.Spec.NodeName != "" && p.Status.Phase != v1.PodRunning:
				p.Status.Phase = v1.PodRunning
				p.Status.PodIP = fmt.Sprintf("10.42.0.%d", 10+i)
				p.Status.Conditions = append(p.Status.Conditions, v1.PodCondition{Type: v1.PodReady, Status: v1.ConditionTrue, LastTransitionTime: metav1.Now()})
				_, _ = c.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
			}
		}
		return false, nil
	})
}

func start(t *testing.T, c kubernetes.Interface) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := informers.NewSharedInformerFactory(c, 0)
	sched := scheduler.New(c, f, record.NewFakeRecorder(1000), scheduler.Options{})
	dsc := New(c, f, record.NewFakeRecorder(1000), Options{})
	f.Start(ctx.Done())
	done := make(chan struct{}, 3)
	go func() { sched.Run(ctx, 1); done <- struct{}{} }()
	go func() { dsc.Run(ctx, 2); done <- struct{}{} }()
	go func() { fakeKubelets(ctx, c, "default"); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		for range 3 {
			<-done
		}
		f.Shutdown()
	})
}

// podsByNode returns node → images of the DaemonSet's live pods, and
// whether every pod is bound.
func podsByNode(ctx context.Context, c kubernetes.Interface) (map[string][]string, bool, error) {
	pods, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=agent"})
	if err != nil {
		return nil, false, err
	}
	out := map[string][]string{}
	bound := true
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		if p.Spec.NodeName == "" {
			bound = false
		}
		out[p.Spec.NodeName] = append(out[p.Spec.NodeName], p.Spec.Containers[0].Image)
	}
	return out, bound, nil
}

// waitRolledOut waits for what `kubectl rollout status ds` waits for, and
// for exactly one bound pod with image on each of nodes.
func waitRolledOut(t *testing.T, c kubernetes.Interface, image string, nodes ...string) {
	t.Helper()
	want := map[string][]string{}
	for _, n := range nodes {
		want[n] = []string{image}
	}
	var got map[string][]string
	var st appsv1.DaemonSetStatus
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		ds, err := c.AppsV1().DaemonSets("default").Get(ctx, "agent", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		st = ds.Status
		var bound bool
		got, bound, err = podsByNode(ctx, c)
		if err != nil || !bound || fmt.Sprint(got) != fmt.Sprint(want) {
			return false, nil
		}
		n := int32(len(nodes))
		return st.ObservedGeneration >= ds.Generation && st.DesiredNumberScheduled == n && st.CurrentNumberScheduled == n &&
			st.UpdatedNumberScheduled == n && st.NumberAvailable == n && st.NumberReady == n && st.NumberUnavailable == 0 &&
			st.NumberMisscheduled == 0, nil
	})
	if err != nil {
		t.Fatalf("not rolled out: pods %v, want %v; status %+v", got, want, st)
	}
}

func TestDaemonSetRunsOnePodPerEligibleNode(t *testing.T) {
	s := apitest.Start(t)
	c := s.Client
	ctx := context.Background()
	for _, n := range []string{"node-1", "node-2", "node-3"} {
		addNode(t, c, n)
	}
	start(t, c)

	_, err := c.AppsV1().DaemonSets("default").Create(ctx, &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
				Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "agent", Image: "agent:v1"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, c, "agent:v1", "node-1", "node-2", "node-3")

	pods, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=agent"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.Kind != "DaemonSet" || ref.Name != "agent" {
			t.Errorf("pod %s controller %+v", p.Name, ref)
		}
		if TargetNode(&p) != p.Spec.NodeName || p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields[0].Values[0] != p.Spec.NodeName {
			t.Errorf("pod %s on %s is not pinned there by affinity: %+v", p.Name, p.Spec.NodeName, p.Spec.Affinity)
		}
		if p.Labels[appsv1.ControllerRevisionHashLabelKey] == "" {
			t.Errorf("pod %s has no %s label", p.Name, appsv1.ControllerRevisionHashLabelKey)
		}
	}

	t.Run("a new node gets a pod", func(t *testing.T) {
		addNode(t, c, "node-4")
		waitRolledOut(t, c, "agent:v1", "node-1", "node-2", "node-3", "node-4")
	})

	t.Run("a tainted node without toleration gets none", func(t *testing.T) {
		addNode(t, c, "node-tainted", v1.Taint{Key: "dedicated", Value: "db", Effect: v1.TaintEffectNoSchedule})
		// Give the controller time to (wrongly) act on the new node.
		time.Sleep(time.Second)
		waitRolledOut(t, c, "agent:v1", "node-1", "node-2", "node-3", "node-4")
	})

	t.Run("an image change rolls every pod", func(t *testing.T) {
		ds, err := c.AppsV1().DaemonSets("default").Get(ctx, "agent", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ds.Spec.Template.Spec.Containers[0].Image = "agent:v2"
		// Watch availability while the rollout runs: maxUnavailable
		// defaults to 1, so 3 of the 4 nodes keep a Ready pod throughout.
		watchCtx, stopWatch := context.WithCancel(ctx)
		minReady := make(chan int, 1)
		go func() { minReady <- minReadyNodes(watchCtx, c) }()
		if _, err := c.AppsV1().DaemonSets("default").Update(ctx, ds, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitRolledOut(t, c, "agent:v2", "node-1", "node-2", "node-3", "node-4")
		stopWatch()
		if got := <-minReady; got < 3 {
			t.Errorf("during the rollout only %d nodes had a Ready pod, want at least 3", got)
		}

		revs, err := c.AppsV1().ControllerRevisions("default").List(ctx, metav1.ListOptions{LabelSelector: "app=agent"})
		if err != nil {
			t.Fatal(err)
		}
		var numbers []int64
		for _, r := range revs.Items {
			numbers = append(numbers, r.Revision)
		}
		sort.Slice(numbers, func(i, j int) bool { return numbers[i] < numbers[j] })
		if fmt.Sprint(numbers) != "[1 2]" {
			t.Errorf("revision numbers %v, want [1 2]", numbers)
		}
		pods, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=agent"})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			var newest appsv1.ControllerRevision
			for _, r := range revs.Items {
				if r.Revision == 2 {
					newest = r
				}
			}
			if p.DeletionTimestamp == nil && newest.Name != ds.Name+"-"+p.Labels[appsv1.ControllerRevisionHashLabelKey] {
				t.Errorf("pod %s hash %q, want the one of revision %s", p.Name, p.Labels[appsv1.ControllerRevisionHashLabelKey], newest.Name)
			}
		}
	})
}

// minReadyNodes samples, until ctx ends, how many nodes have a Ready,
// non-terminating daemon pod, and returns the lowest count seen.
func minReadyNodes(ctx context.Context, c kubernetes.Interface) int {
	lowest := 1 << 30
	for ctx.Err() == nil {
		pods, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=agent"})
		if err == nil {
			ready := map[string]bool{}
			for _, p := range pods.Items {
				if p.DeletionTimestamp == nil && p.Spec.NodeName != "" && podutil.Ready(&p) {
					ready[p.Spec.NodeName] = true
				}
			}
			lowest = min(lowest, len(ready))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return lowest
}
