package endpointslicemirroring

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	ktesting "k8s.io/client-go/testing"
)

func TestController(t *testing.T) {
	userSlice := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "by-hand", Namespace: "seed-c", Labels: map[string]string{
			discovery.LabelServiceName: "play-app-svc-no-selector", discovery.LabelManagedBy: "someone-else"}},
		AddressType: discovery.AddressTypeIPv4,
		Endpoints:   []discovery.Endpoint{{Addresses: []string{"10.9.9.9"}}},
	}
	client := fake.NewClientset(seedService(), seedEndpoints(), userSlice)
	var n atomic.Int64
	client.PrependReactor("create", "endpointslices", func(a ktesting.Action) (bool, runtime.Object, error) {
		s := a.(ktesting.CreateAction).GetObject().(*discovery.EndpointSlice)
		if s.Name == "" {
			s.Name = fmt.Sprintf("%s%d", s.GenerateName, n.Add(1))
		}
		return false, nil, nil
	})
	factory := informers.NewSharedInformerFactory(client, time.Second)
	c := New(client, factory, Options{})
	var syncs atomic.Int64
	inner := c.loop.Sync
	c.loop.Sync = func(ctx context.Context, key string) error { syncs.Add(1); return inner(ctx, key) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	defer func() { cancel(); <-done; factory.Shutdown() }()
	factory.Start(ctx.Done())
	go func() { c.Run(ctx, 2); close(done) }()

	mirrored := func() []discovery.EndpointSlice {
		l, err := client.DiscoveryV1().EndpointSlices("seed-c").List(ctx, metav1.ListOptions{LabelSelector: discovery.LabelManagedBy + "=" + ControllerName})
		if err != nil {
			t.Fatal(err)
		}
		return l.Items
	}
	writes := func() int {
		w := 0
		for _, a := range client.Actions() {
			if a.GetResource().Resource == "endpointslices" && (a.GetVerb() == "create" || a.GetVerb() == "update" || a.GetVerb() == "delete") {
				w++
			}
		}
		return w
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if cond() {
				return
			}
		}
		t.Fatalf("timed out waiting for %s", what)
	}
	wait("mirrored slice", func() bool {
		m := mirrored()
		return len(m) == 1 && len(m[0].Endpoints) == 1 && m[0].Endpoints[0].Addresses[0] == "10.3.42.250" && *m[0].Ports[0].Port == 30050
	})

	time.Sleep(300 * time.Millisecond)
	before := writes()
	syncs.Store(0)
	time.Sleep(1500 * time.Millisecond)
	if syncs.Load() == 0 {
		t.Fatal("no resync happened")
	}
	if w := writes() - before; w != 0 {
		t.Fatalf("resync wrote %d times", w)
	}

	// Endpoints gone: mirror gone, the hand-written slice untouched.
	if err := client.CoreV1().Endpoints("seed-c").Delete(ctx, "play-app-svc-no-selector", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("mirror deleted", func() bool { return len(mirrored()) == 0 })
	got, err := client.DiscoveryV1().EndpointSlices("seed-c").Get(ctx, "by-hand", metav1.GetOptions{})
	if err != nil || got.Endpoints[0].Addresses[0] != "10.9.9.9" {
		t.Fatalf("hand-written slice changed: %v %v", got, err)
	}
}
