package endpointslice

import (
	"context"
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/portal-net/portal/internal/controller/internal/ctltest"
)

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
	client := ctltest.NewFakeClient(ctltest.Service("web"), node,
		ctltest.Pod("a", "web", "10.1.0.1", true), ctltest.Pod("b", "web", "10.1.0.2", true), ctltest.Pod("c", "web", "10.1.0.3", true),
		ctltest.Pod("other", "db", "10.1.0.9", true))
	factory := informers.NewSharedInformerFactory(client, time.Second)
	c := New(client, factory, Options{BatchPeriod: 10 * time.Millisecond})
	syncs := ctltest.CountSyncs(&c.loop.Sync)
	ctx := ctltest.Run(t, factory, func(ctx context.Context) { c.Run(ctx, 2) })

	ctltest.Eventually(t, 10*time.Second, "one slice with 3 ready endpoints", func() (bool, string) {
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
	before := ctltest.CountWrites(client, "endpointslices")
	syncs.Store(0)
	time.Sleep(1500 * time.Millisecond)
	if syncs.Load() == 0 {
		t.Fatalf("no resync happened during the no-churn window")
	}
	if after := ctltest.CountWrites(client, "endpointslices"); after != before {
		t.Fatalf("resync without changes wrote %d times", after-before)
	}
	if before != 1 {
		t.Errorf("initial sync: want exactly 1 write (the create), got %d", before)
	}

	// A pod going unready is reflected.
	p := ctltest.Pod("b", "web", "10.1.0.2", false)
	if _, err := client.CoreV1().Pods("default").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ctltest.Eventually(t, 10*time.Second, "pod b not ready", func() (bool, string) {
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
	ctltest.Eventually(t, 10*time.Second, "slice recreated", func() (bool, string) {
		ss := slicesOf(t, client, "web")
		return len(ss) == 1 && ss[0].Name != ss[0].GenerateName && len(ss[0].Endpoints) == 3, fmt.Sprintf("%d slices", len(ss))
	})

	// Deleting the service removes its slices.
	if err := client.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ctltest.Eventually(t, 10*time.Second, "slices gone", func() (bool, string) {
		ss := slicesOf(t, client, "web")
		return len(ss) == 0, fmt.Sprintf("%d slices", len(ss))
	})
}

func TestControllerBurstCoalesces(t *testing.T) {
	client := ctltest.NewFakeClient(ctltest.Service("web"))
	factory := informers.NewSharedInformerFactory(client, 0)
	c := New(client, factory, Options{BatchPeriod: time.Second})
	ctx := ctltest.Run(t, factory, func(ctx context.Context) {
		factory.WaitForCacheSync(ctx.Done())
		c.Run(ctx, 1)
	})
	ctltest.Eventually(t, 10*time.Second, "placeholder slice", func() (bool, string) {
		return len(slicesOf(t, client, "web")) == 1, ""
	})
	before := ctltest.CountWrites(client, "endpointslices")
	for _, p := range ctltest.Pods(20, "web") {
		if _, err := client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ctltest.Eventually(t, 10*time.Second, "20 endpoints", func() (bool, string) {
		ss := slicesOf(t, client, "web")
		return len(ss) == 1 && len(ss[0].Endpoints) == 20, fmt.Sprintf("%d slices", len(ss))
	})
	if w := ctltest.CountWrites(client, "endpointslices") - before; w > 2 {
		for _, a := range client.Actions() {
			t.Logf("%s %s", a.GetVerb(), a.GetResource().Resource)
		}
		t.Errorf("20 pod creations within the batch period caused %d slice writes, want at most 2", w)
	}
}
