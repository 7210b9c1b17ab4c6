package runner

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/portal-net/portal/internal/feed"
	"github.com/portal-net/portal/internal/proxy/dataplane"
	"github.com/portal-net/portal/internal/sys/conntrack"
)

type recorder struct {
	mu     sync.Mutex
	states []dataplane.State
	fulls  int
}

func (r *recorder) Sync(_ context.Context, s dataplane.State) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	// The State is the caller's once Sync returns: keep a copy.
	s.Services = slices.Clone(s.Services)
	r.states = append(r.states, s)
	return nil
}

func (r *recorder) FullSync(ctx context.Context, s dataplane.State) error {
	r.mu.Lock()
	r.fulls++
	r.mu.Unlock()
	return r.Sync(ctx, s)
}

func (r *recorder) counts() (syncs, fulls int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.states), r.fulls
}

func (r *recorder) last() (dataplane.State, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.states) == 0 {
		return dataplane.State{}, 0
	}
	return r.states[len(r.states)-1], len(r.states)
}

func service(name, ip string, proto v1.Protocol, port int32) *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeClusterIP, ClusterIP: ip, ClusterIPs: []string{ip},
			Ports: []v1.ServicePort{{Port: port, Protocol: proto}}},
	}
}

func slice(svc string, proto v1.Protocol, port int32, ips ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: svc + "-abc", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Port: ptr.To(port), Protocol: ptr.To(proto), Name: ptr.To("")}},
	}
	for _, ip := range ips {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
	}
	return s
}

func waitState(t *testing.T, r *recorder, what string, ok func(dataplane.State) bool) dataplane.State {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if s, n := r.last(); n > 0 && ok(s) {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
	s, _ := r.last()
	t.Fatalf("%s: last state %+v", what, s)
	return s
}

// Services and slices from the API become the datapath state; removing a
// UDP endpoint clears its stale flows.
func TestRunnerSyncsModelToDatapath(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := fake.NewSimpleClientset(
		&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: map[string]string{v1.LabelTopologyZone: "z1"}}},
		service("web", "10.96.0.10", v1.ProtocolTCP, 80),
		slice("web", v1.ProtocolTCP, 8080, "10.42.0.2", "10.42.0.3"),
		service("dns", "10.96.0.53", v1.ProtocolUDP, 53),
		slice("dns", v1.ProtocolUDP, 5353, "10.42.0.4"),
	)
	f := informers.NewSharedInformerFactory(cs, 0)
	rec := &recorder{}
	ct := conntrack.NewFake(conntrack.NATFlow(conntrack.UDP,
		netip.MustParseAddrPort("10.42.0.9:4000"), netip.MustParseAddrPort("10.96.0.53:53"), netip.MustParseAddrPort("10.42.0.4:5353")))
	r, err := New(Config{NodeName: "node-1", SyncPeriod: time.Hour, MinSyncPeriod: 10 * time.Millisecond,
		ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"), Datapath: rec, Conntrack: ct}, f)
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	go r.Run(ctx)

	s := waitState(t, rec, "two services", func(s dataplane.State) bool { return len(s.Services) == 2 && len(s.Services[1].Endpoints) == 2 })
	web := s.Services[1]
	if web.Name != "default/web:/TCP" || web.Protocol != "tcp" || web.Port != 80 || web.VIPs[0] != netip.MustParseAddr("10.96.0.10") ||
		web.Endpoints[0] != netip.MustParseAddrPort("10.42.0.2:8080") {
		t.Errorf("web: %+v", web)
	}
	if len(ct.Flows()) != 1 {
		t.Errorf("a live UDP flow was cleared: %+v", ct.Flows())
	}
	if web.Affinity {
		t.Errorf("web has session affinity without asking for it")
	}

	// sessionAffinity ClientIP with its timeout reaches the datapath.
	sticky := service("web", "10.96.0.10", v1.ProtocolTCP, 80)
	sticky.Spec.SessionAffinity = v1.ServiceAffinityClientIP
	sticky.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](7)}}
	if _, err := cs.CoreV1().Services("default").Update(ctx, sticky, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, rec, "web sticky for 7s", func(s dataplane.State) bool {
		return len(s.Services) == 2 && s.Services[1].Affinity && s.Services[1].AffinityTimeout == 7*time.Second
	})

	// The DNS pod moves: its old flow must go.
	if _, err := cs.DiscoveryV1().EndpointSlices("default").Update(ctx, slice("dns", v1.ProtocolUDP, 5353, "10.42.1.7"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, rec, "dns moved", func(s dataplane.State) bool {
		return len(s.Services) == 2 && len(s.Services[0].Endpoints) == 1 && s.Services[0].Endpoints[0] == netip.MustParseAddrPort("10.42.1.7:5353")
	})
	deadline := time.Now().Add(5 * time.Second)
	for len(ct.Flows()) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if len(ct.Flows()) != 0 {
		t.Errorf("stale UDP flow to the vanished DNS pod kept: %+v", ct.Flows())
	}
}

// A partial sync rebuilds only the service ports that changed; whatever
// the sequence of changes, its state is the one a full rebuild gives.
func TestPartialStateMatchesFull(t *testing.T) {
	f := informers.NewSharedInformerFactory(fake.NewSimpleClientset(), 0)
	r, err := New(Config{NodeName: "node-1", SyncPeriod: time.Hour, Datapath: &recorder{}}, f)
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	svcs := map[string]*v1.Service{}
	eps := map[string]*discoveryv1.EndpointSlice{}
	var prev []dataplane.ServicePort
	for step := range 400 {
		name := fmt.Sprintf("s%d", rnd.IntN(30))
		switch op := rnd.IntN(5); {
		case op == 0 && svcs[name] != nil:
			r.tracker.Services.Update(svcs[name], nil)
			delete(svcs, name)
		case op <= 2:
			proto := []v1.Protocol{v1.ProtocolTCP, v1.ProtocolUDP}[rnd.IntN(2)]
			s := service(name, fmt.Sprintf("10.96.0.%d", rnd.IntN(40)), proto, int32(80+rnd.IntN(3)))
			r.tracker.Services.Update(svcs[name], s)
			svcs[name] = s
		default:
			var ips []string
			for range rnd.IntN(4) {
				ips = append(ips, fmt.Sprintf("10.42.0.%d", 2+rnd.IntN(20)))
			}
			proto := v1.ProtocolTCP
			if svcs[name] != nil {
				proto = svcs[name].Spec.Ports[0].Protocol
			}
			sl := slice(name, proto, 8080, ips...)
			r.tracker.Endpoints.Update(eps[name], sl)
			eps[name] = sl
		}
		ch := r.tracker.Take()
		got := r.desired(ch, false)
		want := (&Runner{cfg: r.cfg, nodes: r.nodes}).desired(ch, true)
		if !reflect.DeepEqual(got.Services, want.Services) {
			t.Fatalf("step %d: partial state\n%+v\nfull state\n%+v", step, got.Services, want.Services)
		}
		// The promise of State.Changed: every other port is as it was.
		if step > 0 && got.Changed == nil {
			t.Fatalf("step %d: a partial state without Changed", step)
		}
		for _, sp := range prev {
			if got.Changed[sp.Name] {
				continue
			}
			at, ok := slices.BinarySearchFunc(got.Services, sp.Name, listOrder)
			if !ok || !got.Services[at].Equal(&sp) {
				t.Fatalf("step %d: %s changed but is not in Changed %v", step, sp.Name, got.Changed)
			}
		}
		for _, sp := range got.Services {
			if _, ok := slices.BinarySearchFunc(prev, sp.Name, listOrder); !ok && !got.Changed[sp.Name] {
				t.Fatalf("step %d: %s is new but not in Changed %v", step, sp.Name, got.Changed)
			}
		}
		prev = slices.Clone(got.Services)
		r.partial = true // as after a successful sync
	}
}

// The periodic sync is a cheap partial one, and a full rewrite only once
// FullSyncPeriod has passed.
func TestPeriodicSyncsAreFullOnlyEveryFullSyncPeriod(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := informers.NewSharedInformerFactory(fake.NewSimpleClientset(service("web", "10.96.0.10", v1.ProtocolTCP, 80)), 0)
	rec := &recorder{}
	r, err := New(Config{NodeName: "node-1", SyncPeriod: 20 * time.Millisecond, FullSyncPeriod: 200 * time.Millisecond, Datapath: rec}, f)
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	time.Sleep(700 * time.Millisecond)
	cancel()
	<-done
	syncs, fulls := rec.counts()
	// ~35 periodic syncs in 700 ms, of which a full one every 200 ms.
	if syncs < 10 || fulls < 1 || fulls > 4 {
		t.Errorf("%d syncs, %d full ones; want many syncs and a full one about every 200 ms (3)", syncs, fulls)
	}
}

// With the agent's EndpointSlice feed (no informer copy of the slices), a
// slice relabelled to another service leaves its old service: the feed
// hands the tracker a previous version carrying the old label.
func TestRunnerWithEndpointSliceFeed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := fake.NewClientset(
		&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}},
		service("web", "10.96.0.10", v1.ProtocolTCP, 80),
		service("api", "10.96.0.11", v1.ProtocolTCP, 80),
		slice("web", v1.ProtocolTCP, 8080, "10.42.0.2", "10.42.0.3"),
	)
	f := informers.NewSharedInformerFactory(cs, 0)
	slices := feed.EndpointSlices(cs)
	rec := &recorder{}
	r, err := New(Config{NodeName: "node-1", SyncPeriod: time.Hour, MinSyncPeriod: 10 * time.Millisecond,
		ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"), Datapath: rec, Conntrack: conntrack.NewFake(), EndpointSlices: slices}, f)
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx.Done())
	slices.Start(ctx)
	go r.Run(ctx)
	endpoints := func(s dataplane.State, name string) int {
		for _, sp := range s.Services {
			if sp.Name == "default/"+name+":/TCP" {
				return len(sp.Endpoints)
			}
		}
		return -1
	}
	waitState(t, rec, "web with two endpoints", func(s dataplane.State) bool { return endpoints(s, "web") == 2 && endpoints(s, "api") == 0 })
	moved := slice("web", v1.ProtocolTCP, 8080, "10.42.0.2", "10.42.0.3")
	moved.Labels[discoveryv1.LabelServiceName] = "api"
	if _, err := cs.DiscoveryV1().EndpointSlices("default").Update(ctx, moved, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, rec, "the slice moved to api", func(s dataplane.State) bool { return endpoints(s, "web") == 0 && endpoints(s, "api") == 2 })
	if err := cs.DiscoveryV1().EndpointSlices("default").Delete(ctx, moved.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, rec, "the slice deleted", func(s dataplane.State) bool { return endpoints(s, "web") == 0 && endpoints(s, "api") == 0 })
}

// The portal.dev/weights annotation reaches the datapath as weights of the
// endpoints whose targetRef is a named pod; other endpoints weigh 1 (are
// not in the map).
func TestWeightsAnnotationReachesDatapath(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	web := service("web", "10.96.0.10", v1.ProtocolTCP, 80)
	web.Annotations = map[string]string{"portal.dev/scheduler": "wrr", "portal.dev/weights": "web-a=3,web-c=0,gone=9"}
	sl := slice("web", v1.ProtocolTCP, 8080, "10.42.0.2", "10.42.0.3", "10.42.0.4")
	for i, pod := range []string{"web-a", "web-b", "web-c"} {
		sl.Endpoints[i].TargetRef = &v1.ObjectReference{Kind: "Pod", Namespace: "default", Name: pod}
	}
	cs := fake.NewClientset(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}, web, sl)
	f := informers.NewSharedInformerFactory(cs, 0)
	rec := &recorder{}
	r, err := New(Config{NodeName: "node-1", SyncPeriod: time.Hour, ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"), Datapath: rec, Conntrack: conntrack.NewFake()}, f)
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx.Done())
	go r.Run(ctx)
	s := waitState(t, rec, "web with three endpoints", func(s dataplane.State) bool { return len(s.Services) == 1 && len(s.Services[0].Endpoints) == 3 })
	want := map[netip.AddrPort]int{netip.MustParseAddrPort("10.42.0.2:8080"): 3, netip.MustParseAddrPort("10.42.0.4:8080"): 0}
	if sp := s.Services[0]; sp.Scheduler != "wrr" || !reflect.DeepEqual(sp.Weights, want) {
		t.Errorf("scheduler %q weights %v, want wrr %v", sp.Scheduler, sp.Weights, want)
	}
}

// Endpoints known to run on other nodes reach the datapath as
// RemoteEndpoints (they need no hairpin rules here); one whose node is
// unknown does not, and a move to this node takes an endpoint off.
func TestRemoteEndpointsReachDatapath(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	onNodes := func(nodes ...string) *discoveryv1.EndpointSlice {
		s := slice("web", v1.ProtocolTCP, 8080, "10.42.0.2", "10.42.0.3", "10.42.0.4")
		for i, n := range nodes {
			if n != "" {
				s.Endpoints[i].NodeName = ptr.To(n)
			}
		}
		return s
	}
	cs := fake.NewSimpleClientset(
		&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}},
		service("web", "10.96.0.10", v1.ProtocolTCP, 80),
		onNodes("node-1", "node-2", ""),
	)
	f := informers.NewSharedInformerFactory(cs, 0)
	rec := &recorder{}
	r, err := New(Config{NodeName: "node-1", SyncPeriod: time.Hour, MinSyncPeriod: 10 * time.Millisecond,
		ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"), Datapath: rec, Conntrack: conntrack.NewFake()}, f)
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	go r.Run(ctx)

	remote := func(s dataplane.State) []netip.Addr {
		if len(s.Services) != 1 || len(s.Services[0].Endpoints) != 3 {
			return nil
		}
		return s.Services[0].RemoteEndpoints
	}
	s := waitState(t, rec, "web with three endpoints", func(s dataplane.State) bool { return len(remote(s)) > 0 })
	if got, want := remote(s), []netip.Addr{netip.MustParseAddr("10.42.0.3")}; !slices.Equal(got, want) {
		t.Errorf("RemoteEndpoints = %v, want %v", got, want)
	}
	if _, err := cs.DiscoveryV1().EndpointSlices("default").Update(ctx, onNodes("node-1", "node-1", "node-3"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, rec, "10.42.0.3 local, 10.42.0.4 remote", func(s dataplane.State) bool {
		return slices.Equal(remote(s), []netip.Addr{netip.MustParseAddr("10.42.0.4")})
	})
}
