package endpoints

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

func writes(client *fake.Clientset) int {
	n := 0
	for _, a := range client.Actions() {
		if a.GetResource().Resource == "endpoints" && a.GetVerb() != "get" && a.GetVerb() != "list" && a.GetVerb() != "watch" {
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

func TestController(t *testing.T) {
	noSel := svc("play-app-svc-no-selector", func(s *v1.Service) { s.Spec.Selector = nil })
	userEp := &v1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "play-app-svc-no-selector", Namespace: "default"},
		Subsets:    []v1.EndpointSubset{{Addresses: []v1.EndpointAddress{{IP: "10.3.42.250"}}, Ports: []v1.EndpointPort{{Port: 30050}}}},
	}
	client := fake.NewClientset(svc("web"), noSel, userEp,
		pod("a", "web", "10.1.0.1", true), pod("b", "web", "10.1.0.2", true), pod("c", "web", "10.1.0.3", true))
	factory := informers.NewSharedInformerFactory(client, time.Second)
	c := New(client, factory, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	defer func() { cancel(); <-done; factory.Shutdown() }()
	factory.Start(ctx.Done())
	var syncs atomic.Int64
	inner := c.loop.Sync
	c.loop.Sync = func(ctx context.Context, key string) error { syncs.Add(1); return inner(ctx, key) }
	go func() { c.Run(ctx, 2); close(done) }()

	get := func(name string) (*v1.Endpoints, error) {
		return client.CoreV1().Endpoints("default").Get(ctx, name, metav1.GetOptions{})
	}
	waitFor(t, "endpoints with 3 addresses", func() (bool, string) {
		ep, err := get("web")
		if err != nil {
			return false, err.Error()
		}
		return len(ep.Subsets) == 1 && len(ep.Subsets[0].Addresses) == 3, render(ep.Subsets)
	})

	// Wait for the queue to go idle, then watch a full resync (min 1s).
	time.Sleep(300 * time.Millisecond)
	before := writes(client)
	syncs.Store(0)
	time.Sleep(1500 * time.Millisecond)
	if syncs.Load() == 0 {
		t.Fatalf("no resync happened during the no-churn window")
	}
	if after := writes(client); after != before {
		t.Fatalf("resync without changes wrote %d times", after-before)
	}
	if before != 1 {
		t.Errorf("want exactly one write (the create), got %d", before)
	}

	if _, err := client.CoreV1().Pods("default").Update(ctx, pod("c", "web", "10.1.0.3", false), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "c not ready", func() (bool, string) {
		ep, _ := get("web")
		return len(ep.Subsets) == 1 && len(ep.Subsets[0].NotReadyAddresses) == 1, render(ep.Subsets)
	})

	// Deleting services: ours goes, the user's stays.
	for _, name := range []string{"web", "play-app-svc-no-selector"} {
		if err := client.CoreV1().Services("default").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "web endpoints deleted", func() (bool, string) {
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
