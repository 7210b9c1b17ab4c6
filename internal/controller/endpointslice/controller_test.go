package endpointslice

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	ktesting "k8s.io/client-go/testing"
)

// newFakeClient returns a clientset that, like the API server, names objects
// created with generateName.
func newFakeClient(objs ...runtime.Object) *fake.Clientset {
	client := fake.NewClientset(objs...)
	var n atomic.Int64
	client.PrependReactor("create", "*", func(a ktesting.Action) (bool, runtime.Object, error) {
		if obj, ok := a.(ktesting.CreateAction).GetObject().(metav1.Object); ok && obj.GetName() == "" && obj.GetGenerateName() != "" {
			obj.SetName(fmt.Sprintf("%s%05d", obj.GetGenerateName(), n.Add(1)))
		}
		return false, nil, nil
	})
	return client
}

func countWrites(client *fake.Clientset, resource string) int {
	n := 0
	for _, a := range client.Actions() {
		if a.GetResource().Resource != resource {
			continue
		}
		switch a.GetVerb() {
		case "create", "update", "delete", "patch":
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last: %s", what, last)
}

func slicesOf(t *testing.T, client *fake.Clientset, svc string) []discovery.EndpointSlice {
	t.Helper()
	l, err := client.DiscoveryV1().EndpointSlices("default").List(context.Background(), metav1.ListOptions{LabelSelector: discovery.LabelServiceName + "=" + svc})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func TestControllerLifecycle(t *testing.T) {
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{v1.LabelTopologyZone: "zone-1"}}}
	client := newFakeClient(svc("web"), node,
		pod("a", "web", "10.1.0.1", true), pod("b", "web", "10.1.0.2", true), pod("c", "web", "10.1.0.3", true),
		pod("other", "db", "10.1.0.9", true))
	factory := informers.NewSharedInformerFactory(client, time.Second)
	c := New(client, factory, Options{BatchPeriod: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	defer func() { cancel(); <-done; factory.Shutdown() }()
	factory.Start(ctx.Done())
	var syncs atomic.Int64
	inner := c.loop.Sync
	c.loop.Sync = func(ctx context.Context, key string) error { syncs.Add(1); return inner(ctx, key) }
	go func() { c.Run(ctx, 2); close(done) }()

	waitFor(t, "one slice with 3 ready endpoints", func() (bool, string) {
		ss := slicesOf(t, client, "web")
		if len(ss) != 1 || len(ss[0].Endpoints) != 3 {
			return false, fmt.Sprintf("%d slices", len(ss))
		}
		for _, ep := range ss[0].Endpoints {
			if !*ep.Conditions.Ready || ep.Zone == nil || *ep.Zone != "zone-1" {
				return false, fmt.Sprintf("endpoint %+v", ep)
			}
		}
		return true, ""
	})

	// No churn: informer resyncs (every 50ms) must not cause writes.
	// Wait for the queue to go idle, then watch a full resync (min 1s).
	time.Sleep(300 * time.Millisecond)
	before := countWrites(client, "endpointslices")
	syncs.Store(0)
	time.Sleep(1500 * time.Millisecond)
	if syncs.Load() == 0 {
		t.Fatalf("no resync happened during the no-churn window")
	}
	if after := countWrites(client, "endpointslices"); after != before {
		t.Fatalf("resync without changes wrote %d times", after-before)
	}
	if before != 1 {
		t.Errorf("initial sync: want exactly 1 write (the create), got %d", before)
	}

	// A pod going unready is reflected.
	p := pod("b", "web", "10.1.0.2", false)
	if _, err := client.CoreV1().Pods("default").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pod b not ready", func() (bool, string) {
		for _, ep := range slicesOf(t, client, "web")[0].Endpoints {
			if ep.TargetRef.Name == "b" {
				return !*ep.Conditions.Ready, "still ready"
			}
		}
		return false, "b missing"
	})

	// A slice deleted behind our back is recreated.
	ss := slicesOf(t, client, "web")
	if err := client.DiscoveryV1().EndpointSlices("default").Delete(ctx, ss[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "slice recreated", func() (bool, string) {
		ss := slicesOf(t, client, "web")
		return len(ss) == 1 && ss[0].Name != ss[0].GenerateName && len(ss[0].Endpoints) == 3, fmt.Sprintf("%d slices", len(ss))
	})

	// Deleting the service removes its slices.
	if err := client.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "slices gone", func() (bool, string) {
		ss := slicesOf(t, client, "web")
		return len(ss) == 0, fmt.Sprintf("%d slices", len(ss))
	})
}

func TestControllerBurstCoalesces(t *testing.T) {
	client := newFakeClient(svc("web"))
	factory := informers.NewSharedInformerFactory(client, 0)
	c := New(client, factory, Options{BatchPeriod: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	defer func() { cancel(); <-done; factory.Shutdown() }()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	go func() { c.Run(ctx, 1); close(done) }()
	waitFor(t, "placeholder slice", func() (bool, string) {
		return len(slicesOf(t, client, "web")) == 1, ""
	})
	before := countWrites(client, "endpointslices")
	for _, p := range pods(20, "web") {
		if _, err := client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "20 endpoints", func() (bool, string) {
		ss := slicesOf(t, client, "web")
		return len(ss) == 1 && len(ss[0].Endpoints) == 20, fmt.Sprintf("%d slices", len(ss))
	})
	if w := countWrites(client, "endpointslices") - before; w > 2 {
		for _, a := range client.Actions() {
			t.Logf("%s %s", a.GetVerb(), a.GetResource().Resource)
		}
		t.Errorf("20 pod creations within the batch period caused %d slice writes, want at most 2", w)
	}
}
