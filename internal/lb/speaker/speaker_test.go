package speaker

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/portal-net/portal/internal/feed"
)

type fakeMembers struct {
	mu      sync.Mutex
	live    []string
	peers   map[string]netip.Addr
	ready   bool
	changes chan struct{}
}

func (m *fakeMembers) SetPeers(p map[string]netip.Addr) { m.mu.Lock(); m.peers = p; m.mu.Unlock() }
func (m *fakeMembers) SetReady(r bool)                  { m.mu.Lock(); m.ready = r; m.mu.Unlock() }
func (m *fakeMembers) Live() []string                   { m.mu.Lock(); defer m.mu.Unlock(); return slices.Clone(m.live) }
func (m *fakeMembers) Changes() <-chan struct{}         { return m.changes }
func (m *fakeMembers) Run(ctx context.Context) error    { <-ctx.Done(); return nil }
func (m *fakeMembers) setLive(l ...string) {
	m.mu.Lock()
	m.live = l
	m.mu.Unlock()
	select {
	case m.changes <- struct{}{}:
	default:
	}
}

type fakeAnnouncer struct {
	mu      sync.Mutex
	ips     map[netip.Addr]bool
	repeats int
}

func (a *fakeAnnouncer) Reannounce(ip netip.Addr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.repeats++
	return a.ips[ip]
}

func (a *fakeAnnouncer) Announce(ip netip.Addr) error {
	a.mu.Lock()
	a.ips[ip] = true
	a.mu.Unlock()
	return nil
}
func (a *fakeAnnouncer) Withdraw(ip netip.Addr) { a.mu.Lock(); delete(a.ips, ip); a.mu.Unlock() }
func (a *fakeAnnouncer) Close() error           { return nil }
func (a *fakeAnnouncer) has(ip netip.Addr) bool { a.mu.Lock(); defer a.mu.Unlock(); return a.ips[ip] }

func node(name, ip string, lbls map[string]string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}}}
}

func lbSvc(name, ip string, local bool) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:   corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: ip}}}}}
	if local {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	return s
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The speaker announces what its node wins, takes over when the winner
// leaves the live set, follows eTP Local endpoints, and withdraws
// deleted services and everything on stop.
func TestSpeaker(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.10")
	all := []string{"node-1", "node-2", "node-3"}
	win := Winner(ip, all)
	// self is the node that wins once the winner is gone.
	var rest []string
	for _, n := range all {
		if n != win {
			rest = append(rest, n)
		}
	}
	self := Winner(ip, rest)
	client := fake.NewClientset(node("node-1", "198.51.100.11", nil), node("node-2", "198.51.100.12", nil), node("node-3", "198.51.100.13", nil),
		lbSvc("web", ip.String(), false))
	f := informers.NewSharedInformerFactory(client, 0)
	slicesInf := f.Discovery().V1().EndpointSlices().Informer()
	m := &fakeMembers{changes: make(chan struct{}, 1), live: all}
	ann := &fakeAnnouncer{ips: map[netip.Addr]bool{}}
	events := record.NewFakeRecorder(20)
	sp, err := New(Config{NodeName: self, NodeIP: netip.MustParseAddr("198.51.100.11"), Members: m, Recorder: events,
		NewAnnouncer: func(iface string) (Announcer, error) { return ann, nil },
		InterfaceFor: func(netip.Addr) (string, error) { return "eth0", nil },
	}, f, feed.FromInformer(slicesInf))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.Start(ctx.Done())
	done := make(chan struct{})
	go func() { sp.Run(ctx); close(done) }()

	waitUntil(t, "peers set and ready", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.ready && len(m.peers) == 2 && m.peers[self] == (netip.Addr{})
	})
	time.Sleep(50 * time.Millisecond)
	if ann.has(ip) {
		t.Fatalf("%s announces while %s is live and wins", self, win)
	}
	m.setLive(rest...)
	waitUntil(t, self+" takes over", func() bool { return ann.has(ip) })
	select {
	case e := <-events.Events:
		if !strings.Contains(e, "AddressAnnounced 192.0.2.10 announced by node "+self+" on eth0 (ARP)") {
			t.Errorf("event %q", e)
		}
	case <-time.After(2 * time.Second):
		t.Error("no AddressAnnounced event")
	}
	// Another node (not the winner) coming back: self keeps the address
	// and repeats its announcement.
	m.setLive(append(rest, "node-4")...)
	waitUntil(t, "a gratuitous repeat when the live set changes", func() bool { ann.mu.Lock(); defer ann.mu.Unlock(); return ann.repeats > 0 })
	if !ann.has(ip) {
		t.Fatal("address lost when a non-winning node joined")
	}
	m.setLive(all...)
	waitUntil(t, self+" withdraws when "+win+" is back", func() bool { return !ann.has(ip) })

	// eTP Local: only self has a ready endpoint, so self announces even
	// though win is live.
	svc, _ := client.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	if _, err := client.CoreV1().Services("default").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-1",
		Labels: map[string]string{discoveryv1.LabelServiceName: "web"}}, AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.42.0.5"}, NodeName: ptr.To(self), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}}}
	if _, err := client.DiscoveryV1().EndpointSlices("default").Create(ctx, es, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "eTP Local: the node with the endpoint announces", func() bool { return ann.has(ip) })
	es.Endpoints[0].Conditions.Ready = ptr.To(false)
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, es, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "eTP Local: no ready endpoint, no announcement", func() bool { return !ann.has(ip) })

	// Excluded nodes never announce.
	svc, _ = client.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	if _, err := client.CoreV1().Services("default").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	m.setLive(rest...)
	waitUntil(t, "announced again", func() bool { return ann.has(ip) })
	n, _ := client.CoreV1().Nodes().Get(ctx, self, metav1.GetOptions{})
	n.Labels = map[string]string{LabelExcludeFromLB: ""}
	if _, err := client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "excluded node withdraws", func() bool { return !ann.has(ip) })
	n.Labels = nil
	if _, err := client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "announced again", func() bool { return ann.has(ip) })

	// Stop: withdrawn.
	cancel()
	<-done
	if ann.has(ip) {
		t.Error("still announced after stop")
	}
}
