package endpoints

import (
	"context"
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/portal-net/portal/internal/controller/internal/ctltest"
)

func TestController(t *testing.T) {
	noSel := ctltest.Service("play-app-svc-no-selector", func(s *v1.Service) { s.Spec.Selector = nil })
	userEp := &v1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "play-app-svc-no-selector", Namespace: "default"},
		Subsets:    []v1.EndpointSubset{{Addresses: []v1.EndpointAddress{{IP: "10.3.42.250"}}, Ports: []v1.EndpointPort{{Port: 30050}}}},
	}
	client := fake.NewClientset(ctltest.Service("web"), noSel, userEp,
		ctltest.Pod("a", "web", "10.1.0.1", true), ctltest.Pod("b", "web", "10.1.0.2", true), ctltest.Pod("c", "web", "10.1.0.3", true))
	factory := informers.NewSharedInformerFactory(client, time.Second)
	c := New(client, factory, Options{})
	syncs := ctltest.CountSyncs(&c.loop.Sync)
	ctx := ctltest.Run(t, factory, func(ctx context.Context) { c.Run(ctx, 2) })

	get := func(name string) (*v1.Endpoints, error) {
		return client.CoreV1().Endpoints("default").Get(ctx, name, metav1.GetOptions{})
	}
	ctltest.Eventually(t, 10*time.Second, "endpoints with 3 addresses", func() (bool, string) {
		ep, err := get("web")
		if err != nil {
			return false, err.Error()
		}
		return len(ep.Subsets) == 1 && len(ep.Subsets[0].Addresses) == 3, render(ep.Subsets)
	})

	// Wait for the queue to go idle, then watch a full resync (min 1s).
	time.Sleep(300 * time.Millisecond)
	before := ctltest.CountWrites(client, "endpoints")
	syncs.Store(0)
	time.Sleep(1500 * time.Millisecond)
	if syncs.Load() == 0 {
		t.Fatalf("no resync happened during the no-churn window")
	}
	if after := ctltest.CountWrites(client, "endpoints"); after != before {
		t.Fatalf("resync without changes wrote %d times", after-before)
	}
	if before != 1 {
		t.Errorf("want exactly one write (the create), got %d", before)
	}

	if _, err := client.CoreV1().Pods("default").Update(ctx, ctltest.Pod("c", "web", "10.1.0.3", false), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ctltest.Eventually(t, 10*time.Second, "c not ready", func() (bool, string) {
		ep, _ := get("web")
		return len(ep.Subsets) == 1 && len(ep.Subsets[0].NotReadyAddresses) == 1, render(ep.Subsets)
	})

	// Deleting services: ours goes, the user's stays.
	for _, name := range []string{"web", "play-app-svc-no-selector"} {
		if err := client.CoreV1().Services("default").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ctltest.Eventually(t, 10*time.Second, "web endpoints deleted", func() (bool, string) {
		_, err := get("web")
		return err != nil, fmt.Sprint(err)
	})
	time.Sleep(200 * time.Millisecond)
	kept, err := get("play-app-svc-no-selector")
	if err != nil {
		t.Fatalf("user endpoints deleted: %v", err)
	}
	if r := render(kept.Subsets); kept.Subsets[0].Addresses[0].IP != "10.3.42.250" || kept.Labels != nil {
		t.Errorf("user endpoints modified: %s labels %v", r, kept.Labels)
	}
}
