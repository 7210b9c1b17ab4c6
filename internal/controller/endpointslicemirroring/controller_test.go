package endpointslicemirroring

import (
	"context"
	"fmt"
	"testing"
	"time"

	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"

	"github.com/portal-net/portal/internal/controller/internal/ctltest"
)

func TestController(t *testing.T) {
	userSlice := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "by-hand", Namespace: "seed-c", Labels: map[string]string{
			discovery.LabelServiceName: "play-app-svc-no-selector", discovery.LabelManagedBy: "someone-else"}},
		AddressType: discovery.AddressTypeIPv4,
		Endpoints:   []discovery.Endpoint{{Addresses: []string{"10.9.9.9"}}},
	}
	client := ctltest.NewFakeClient(seedService(), seedEndpoints(), userSlice)
	factory := informers.NewSharedInformerFactory(client, time.Second)
	c := New(client, factory, Options{})
	syncs := ctltest.CountSyncs(&c.loop.Sync)
	ctx := ctltest.Run(t, factory, func(ctx context.Context) { c.Run(ctx, 2) })

	mirrored := func() []discovery.EndpointSlice {
		l, err := client.DiscoveryV1().EndpointSlices("seed-c").List(ctx, metav1.ListOptions{LabelSelector: discovery.LabelManagedBy + "=" + ControllerName})
		if err != nil {
			t.Fatal(err)
		}
		return l.Items
	}
	writes := func() int { return ctltest.CountWrites(client, "endpointslices") }
	ctltest.Eventually(t, 10*time.Second, "mirrored slice", func() (bool, string) {
		m := mirrored()
		return len(m) == 1 && len(m[0].Endpoints) == 1 && m[0].Endpoints[0].Addresses[0] == "10.3.42.250" && *m[0].Ports[0].Port == 30050, fmt.Sprintf("%+v", m)
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
	ctltest.Eventually(t, 10*time.Second, "mirror deleted", func() (bool, string) {
		m := mirrored()
		return len(m) == 0, fmt.Sprintf("%d mirrored slices", len(m))
	})
	got, err := client.DiscoveryV1().EndpointSlices("seed-c").Get(ctx, "by-hand", metav1.GetOptions{})
	if err != nil || got.Endpoints[0].Addresses[0] != "10.9.9.9" {
		t.Fatalf("hand-written slice changed: %v %v", got, err)
	}
}
