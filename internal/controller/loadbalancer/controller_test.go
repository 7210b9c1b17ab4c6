package loadbalancer

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	poolclient "github.com/portal-net/portal/internal/api/portal/client"
	portalv1 "github.com/portal-net/portal/internal/api/portal/v1"
)

func lbService(name string, age int, mod ...func(*v1.Service)) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name,
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, age, 0, 0, time.UTC))},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeLoadBalancer, ClusterIP: "10.0.0.1",
			Ports: []v1.ServicePort{{Protocol: v1.ProtocolTCP, Port: 80}}},
	}
	for _, m := range mod {
		m(s)
	}
	return s
}

type harness struct {
	t      *testing.T
	client *fake.Clientset
	pools  *poolclient.Fake
	events *record.FakeRecorder
	cancel context.CancelFunc
}

func addressPool(name string, addrs ...string) *portalv1.AddressPool {
	return &portalv1.AddressPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: portalv1.AddressPoolSpec{Addresses: addrs}}
}

// start runs the controller with one pool per argument (pool-0, pool-1...).
func start(t *testing.T, client *fake.Clientset, pools ...string) *harness {
	t.Helper()
	var objs []*portalv1.AddressPool
	for i, p := range pools {
		objs = append(objs, addressPool(fmt.Sprintf("pool-%d", i), p))
	}
	return startWith(t, client, poolclient.NewFake(objs...), Options{})
}

func startWith(t *testing.T, client *fake.Clientset, pools *poolclient.Fake, opts Options) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := informers.NewSharedInformerFactory(client, 0)
	events := record.NewFakeRecorder(100)
	c, err := New(client, pools, f, events, opts)
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx.Done())
	go c.Run(ctx, 1)
	h := &harness{t: t, client: client, pools: pools, events: events, cancel: cancel}
	t.Cleanup(cancel)
	return h
}

// status waits until the service's ingress and condition satisfy ok.
func (h *harness) wait(name, what string, ok func(ips []string, cond *metav1.Condition) bool) {
	h.t.Helper()
	var ips []string
	var cond *metav1.Condition
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s, err := h.client.CoreV1().Services("default").Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			ips = nil
			for _, in := range s.Status.LoadBalancer.Ingress {
				ips = append(ips, in.IP)
			}
			cond = meta.FindStatusCondition(s.Status.Conditions, ConditionAssigned)
			if ok(ips, cond) {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("%s: %s: ingress %v, condition %+v", name, what, ips, cond)
}

func (h *harness) wantIP(name, ip string) {
	h.t.Helper()
	h.wait(name, "ingress "+ip, func(ips []string, cond *metav1.Condition) bool {
		return len(ips) == 1 && ips[0] == ip && cond != nil && cond.Status == metav1.ConditionTrue
	})
}

func (h *harness) wantPending(name, reason, message string) {
	h.t.Helper()
	h.wait(name, "pending "+reason, func(ips []string, cond *metav1.Condition) bool {
		return len(ips) == 0 && cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == reason && strings.Contains(cond.Message, message)
	})
}

func (h *harness) wantEvent(prefix string) {
	h.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case e := <-h.events.Events:
			if strings.HasPrefix(e, prefix) {
				return
			}
		case <-deadline:
			h.t.Fatalf("no event %q", prefix)
		}
	}
}

func TestAssignReleaseAndReasons(t *testing.T) {
	client := fake.NewClientset()
	h := start(t, client, "192.0.2.0/30") // .1 and .2: network and broadcast are held back
	ctx := context.Background()
	create := func(s *v1.Service) {
		t.Helper()
		if _, err := client.CoreV1().Services("default").Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	create(lbService("a", 1))
	h.wantIP("a", "192.0.2.1")
	h.wantEvent("Normal AddressAssigned Assigned 192.0.2.1 (pool pool-0)")
	create(lbService("b", 2))
	h.wantIP("b", "192.0.2.2")
	create(lbService("c", 3))
	h.wantPending("c", "AddressPoolExhausted", "")
	h.wantEvent("Warning AddressNotAssigned")

	// A released address goes to the pending service.
	if err := client.CoreV1().Services("default").Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.wantIP("c", "192.0.2.1")

	// An address outside every pool is refused, never swapped.
	create(lbService("d", 4, func(s *v1.Service) { s.Spec.LoadBalancerIP = "198.51.100.7" }))
	h.wantPending("d", "AddressNotInPool", "198.51.100.7")

	// Another class's service and a ClusterIP service are left alone.
	create(lbService("e", 5, func(s *v1.Service) { s.Spec.LoadBalancerClass = ptr.To("example.com/other") }))
	create(lbService("f", 6, func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeClusterIP }))
	time.Sleep(200 * time.Millisecond)
	for _, name := range []string{"e", "f"} {
		s, _ := client.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
		if len(s.Status.LoadBalancer.Ingress) > 0 || len(s.Status.Conditions) > 0 {
			t.Errorf("%s was touched: %+v", name, s.Status)
		}
	}

	// A type change away from LoadBalancer gives the address back.
	b, _ := client.CoreV1().Services("default").Get(ctx, "b", metav1.GetOptions{})
	b.Spec.Type = v1.ServiceTypeClusterIP
	if _, err := client.CoreV1().Services("default").Update(ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.wait("b", "no ingress", func(ips []string, cond *metav1.Condition) bool { return len(ips) == 0 && cond == nil })
	create(lbService("g", 7))
	h.wantIP("g", "192.0.2.2")
}

// A restarted controller keeps every address where it was, even when the
// order of services would hand them out differently.
func TestRestartKeepsAddresses(t *testing.T) {
	held := func(name string, age int, ip string) *v1.Service {
		return lbService(name, age, func(s *v1.Service) {
			s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: ip, IPMode: ptr.To(v1.LoadBalancerIPModeVIP)}}
		})
	}
	client := fake.NewClientset(held("x", 1, "192.0.2.2"), held("y", 2, "192.0.2.1"), lbService("z", 3))
	h := start(t, client, "192.0.2.0/29")
	h.wantIP("x", "192.0.2.2")
	h.wantIP("y", "192.0.2.1")
	h.wantIP("z", "192.0.2.3")
}

// waitPool waits until the pool's status satisfies ok.
func (h *harness) waitPool(name, what string, ok func(portalv1.AddressPoolStatus) bool) {
	h.t.Helper()
	var st portalv1.AddressPoolStatus
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if p, err := h.pools.Get(context.Background(), name); err == nil {
			st = p.Status
			if ok(st) {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("pool %s: %s: status %+v", name, what, st)
}

// AddressPools are live: a pool added later serves the pending service, a
// narrowed pool moves the address it no longer holds, a deleted pool's
// services go pending, and each pool's status counts its addresses.
func TestPoolsFollowTheAPI(t *testing.T) {
	client := fake.NewClientset()
	pools := poolclient.NewFake(addressPool("small", "192.0.2.10"))
	h := startWith(t, client, pools, Options{})
	ctx := context.Background()
	for i, name := range []string{"a", "b"} {
		if _, err := client.CoreV1().Services("default").Create(ctx, lbService(name, i), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	h.wantIP("a", "192.0.2.10")
	h.wantPending("b", "AddressPoolExhausted", "")
	h.waitPool("small", "1 assigned, 0 free", func(st portalv1.AddressPoolStatus) bool {
		c := meta.FindStatusCondition(st.Conditions, PoolConditionReady)
		return st.Assigned == 1 && st.AvailableIPv4 == 0 && c != nil && c.Status == metav1.ConditionTrue
	})

	if _, err := pools.Create(ctx, addressPool("more", "198.51.100.0/30")); err != nil {
		t.Fatal(err)
	}
	h.wantIP("b", "198.51.100.1")
	h.waitPool("more", "1 assigned, 1 free", func(st portalv1.AddressPoolStatus) bool { return st.Assigned == 1 && st.AvailableIPv4 == 1 })

	// "small" now holds another address: a's is in no pool any more, and
	// a gets the lowest free address of the pools in name order.
	p, _ := pools.Get(ctx, "small")
	p.Spec.Addresses = []string{"192.0.2.20"}
	if _, err := pools.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	h.wantIP("a", "198.51.100.2")

	// Without "more", one of a and b gets small's only address.
	pools.Delete("more")
	waitFor(t, "one service on 192.0.2.20, the other pending", func() bool {
		var ips []string
		pending := 0
		for _, name := range []string{"a", "b"} {
			s, _ := client.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
			for _, in := range s.Status.LoadBalancer.Ingress {
				ips = append(ips, in.IP)
			}
			if c := meta.FindStatusCondition(s.Status.Conditions, ConditionAssigned); c != nil && c.Reason == "AddressPoolExhausted" {
				pending++
			}
		}
		return len(ips) == 1 && ips[0] == "192.0.2.20" && pending == 1
	})
}

// --lb-pool creates the "default" pool, and on a later start sets its
// addresses (and only those) from the flag.
func TestDefaultPoolFromFlag(t *testing.T) {
	client := fake.NewClientset(lbService("a", 1))
	pools := poolclient.NewFake()
	h := startWith(t, client, pools, Options{DefaultPool: []string{"192.0.2.100-192.0.2.101"}})
	h.wantIP("a", "192.0.2.100")
	h.cancel()

	p, _ := pools.Get(context.Background(), DefaultPoolName)
	no := false
	p.Spec.AutoAssign = &no
	if _, err := pools.Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	startWith(t, client, pools, Options{DefaultPool: []string{"192.0.2.100/31"}})
	waitFor(t, "default pool from the new flag", func() bool {
		p, err := pools.Get(context.Background(), DefaultPoolName)
		return err == nil && len(p.Spec.Addresses) == 1 && p.Spec.Addresses[0] == "192.0.2.100/31" &&
			p.Spec.AutoAssign != nil && !*p.Spec.AutoAssign
	})
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
