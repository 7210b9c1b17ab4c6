package nftables_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/portal-net/portal/internal/proxy/dataplane"
	"github.com/portal-net/portal/internal/proxy/nftables"
	"github.com/portal-net/portal/internal/testutil/netnstest"
	"github.com/portal-net/portal/internal/testutil/proxylab"
)

const (
	nodeIP    = proxylab.NodeIP
	clientIP  = proxylab.ClientIP
	lbAllowed = "203.0.113.14"
	lbDenied  = "203.0.113.15"
)

var (
	newLab    = proxylab.New
	ask       = proxylab.Ask
	roundTrip = proxylab.RoundTrip
)

func dial(ns, addr string, timeout time.Duration) (net.Conn, error) {
	return proxylab.Dial(ns, "", addr, timeout)
}

func get(ns, addr string) (string, error) { return proxylab.Get(ns, "", addr) }

func tcpSvc(name, vip string, port, nodePort uint16, eps []netip.AddrPort) dataplane.ServicePort {
	return dataplane.ServicePort{Name: name, VIPs: []netip.Addr{ip(vip)}, Protocol: "tcp", Port: port,
		NodePort: nodePort, Endpoints: eps, ExternalEndpoints: eps}
}

func realNFT(t testing.TB, opts ...knftables.Option) knftables.Interface {
	t.Helper()
	nft, err := knftables.New(knftables.IPv4Family, nftables.TableName, opts...)
	if err != nil {
		t.Skipf("no nftables: %v", err)
	}
	t.Cleanup(func() {
		tx := nft.NewTransaction()
		tx.Delete(&knftables.Table{})
		if err := nft.Run(context.Background(), tx); err != nil && !knftables.IsNotFound(err) {
			t.Errorf("delete table: %v", err)
		}
	})
	return nft
}

func TestDatapath(t *testing.T) {
	netnstest.Require(t)
	l := newLab(t, "a", "b", "c")
	l.Serve(t)
	ctx := context.Background()
	epA := netip.AddrPortFrom(l.PodIP["a"], 8080)
	epB := netip.AddrPortFrom(l.PodIP["b"], 8080)
	epC := netip.AddrPortFrom(l.PodIP["c"], 8080)
	state := func(webEps ...netip.AddrPort) dataplane.State {
		return dataplane.State{
			ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16")},
			PodCIDR:      netip.MustParsePrefix("10.244.0.0/16"),
			NodeIPs:      []netip.Addr{ip(nodeIP)},
			Services: []dataplane.ServicePort{
				tcpSvc("default/web:http", "10.96.0.10", 80, 30080, webEps),
				tcpSvc("default/empty:http", "10.96.0.20", 80, 30090, nil),
				tcpSvc("default/only-a:http", "10.96.0.11", 80, 0, []netip.AddrPort{epA}),
				{Name: "default/local:http", VIPs: []netip.Addr{ip("10.96.0.12")}, Protocol: "tcp", Port: 80, NodePort: 30081,
					Endpoints: []netip.AddrPort{epA, epB}, ExternalEndpoints: []netip.AddrPort{epA}, ExternalLocal: true},
				{Name: "default/local-none:http", VIPs: []netip.Addr{ip("10.96.0.13")}, Protocol: "tcp", Port: 80, NodePort: 30082,
					Endpoints: []netip.AddrPort{epA, epB}, ExternalLocal: true, ExternalDrop: true},
				{Name: "default/lb-allowed:http", VIPs: []netip.Addr{ip("10.96.0.14")}, LoadBalancerIPs: []netip.Addr{ip(lbAllowed)},
					SourceRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix(clientIP + "/32")},
					Protocol:     "tcp", Port: 80, Endpoints: []netip.AddrPort{epA}, ExternalEndpoints: []netip.AddrPort{epA}},
				{Name: "default/lb-denied:http", VIPs: []netip.Addr{ip("10.96.0.15")}, LoadBalancerIPs: []netip.Addr{ip(lbDenied)},
					SourceRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
					Protocol:     "tcp", Port: 80, Endpoints: []netip.AddrPort{epA}, ExternalEndpoints: []netip.AddrPort{epA}},
				{Name: "default/itp-local-none:http", VIPs: []netip.Addr{ip("10.96.0.16")}, Protocol: "tcp", Port: 80, ClusterDrop: true},
				// UDP on the same address and port number as a TCP service.
				{Name: "default/dns:udp", VIPs: []netip.Addr{ip("10.96.0.10")}, Protocol: "UDP", Port: 80, NodePort: 30080,
					Endpoints: []netip.AddrPort{epA, epB}, ExternalEndpoints: []netip.AddrPort{epA, epB}},
				{Name: "default/dns-a:udp", VIPs: []netip.Addr{ip("10.96.0.17")}, Protocol: "UDP", Port: 53, NodePort: 30053,
					Endpoints: []netip.AddrPort{epA}, ExternalEndpoints: []netip.AddrPort{epA}},
			},
		}
	}
	nft := realNFT(t)
	b := nftables.New(nft)
	if err := b.Sync(ctx, state(epA, epB)); err != nil {
		t.Fatal(err)
	}

	// hits does n requests on new connections and counts answers per pod
	// and the client addresses the pods saw.
	hits := func(t *testing.T, ns, addr string, n int) (map[string]int, map[string]bool) {
		t.Helper()
		pods, peers := map[string]int{}, map[string]bool{}
		for range n {
			body, err := get(ns, addr)
			if err != nil {
				t.Fatalf("GET %s: %v", addr, err)
			}
			f := strings.Fields(body)
			if len(f) != 2 {
				t.Fatalf("GET %s: body %q", addr, body)
			}
			pods[f[0]]++
			peers[f[1]] = true
		}
		return pods, peers
	}

	// asks does n UDP queries, each from a new socket, and counts answers
	// per pod and the client addresses the pods saw.
	asks := func(t *testing.T, ns, addr string, n int) (map[string]int, map[string]bool) {
		t.Helper()
		pods, peers := map[string]int{}, map[string]bool{}
		for range n {
			body, err := ask(ns, addr)
			if err != nil {
				t.Fatalf("UDP %s from %q: %v", addr, ns, err)
			}
			f := strings.Fields(body)
			if len(f) != 2 {
				t.Fatalf("UDP %s: answer %q", addr, body)
			}
			pods[f[0]]++
			peers[f[1]] = true
		}
		return pods, peers
	}
	// udp checks UDP ClusterIPs and NodePorts. It runs after the first
	// full sync and again after a restart: nft adds a protocol match
	// implied by a map's declared value type to a DNAT rule written in a
	// later transaction than the map (a restart rewrites every chain), so
	// one backends map for all protocols broke UDP only then.
	udp := func(t *testing.T) {
		pods, _ := asks(t, "", "10.96.0.10:80", 100)
		if pods["a"] < 20 || pods["b"] < 20 {
			t.Errorf("100 queries to a UDP ClusterIP split %v, want both endpoints well used", pods)
		}
		if pods, _ := asks(t, l.Pods["b"], "10.96.0.17:53", 5); pods["a"] != 5 {
			t.Errorf("one-endpoint UDP service from pod b reached %v, want pod a 5 times", pods)
		}
		pods, peers := asks(t, l.Client, nodeIP+":30080", 40)
		if len(pods) != 2 || peers[clientIP] {
			t.Errorf("UDP NodePort: pods %v saw clients %v, want both pods, client masqueraded", pods, peers)
		}
		if pods, _ := asks(t, l.Client, nodeIP+":30053", 5); pods["a"] != 5 {
			t.Errorf("one-endpoint UDP NodePort reached %v, want pod a 5 times", pods)
		}
	}
	t.Run("UDP ClusterIP and NodePort", udp)
	t.Run("UDP service with an endpoint count new in a delta sync", func(t *testing.T) {
		// Its pick chain is written in a transaction of its own, after
		// the maps: the case where nft used to add a `tcp` match.
		s := state(epA, epB)
		s.Services = append(s.Services, dataplane.ServicePort{Name: "default/three:udp", VIPs: []netip.Addr{ip("10.96.0.18")},
			Protocol: "UDP", Port: 53, NodePort: 30054, Endpoints: []netip.AddrPort{epA, epB, epC}, ExternalEndpoints: []netip.AddrPort{epA, epB, epC}})
		if err := b.Sync(ctx, s); err != nil {
			t.Fatal(err)
		}
		if pods, _ := asks(t, "", "10.96.0.18:53", 90); len(pods) != 3 {
			t.Errorf("UDP ClusterIP with 3 endpoints reached %v, want all three", pods)
		}
		if pods, _ := asks(t, l.Client, nodeIP+":30054", 60); len(pods) != 3 {
			t.Errorf("UDP NodePort with 3 endpoints reached %v, want all three", pods)
		}
		if err := b.Sync(ctx, state(epA, epB)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ClusterIP spreads over both endpoints", func(t *testing.T) {
		pods, _ := hits(t, "", "10.96.0.10:80", 200)
		if pods["a"] < 50 || pods["b"] < 50 {
			t.Errorf("200 requests split %v, want both endpoints well used", pods)
		}
	})
	t.Run("ClusterIP from outside the pod CIDR is masqueraded", func(t *testing.T) {
		pods, peers := hits(t, l.Client, "10.96.0.10:80", 20)
		if len(pods) != 2 || peers[clientIP] || !peers["10.244.1.1"] {
			t.Errorf("pods %v saw clients %v, want both pods and only the node's bridge address", pods, peers)
		}
	})
	t.Run("NodePort from a client outside the node", func(t *testing.T) {
		pods, peers := hits(t, l.Client, nodeIP+":30080", 40)
		if len(pods) != 2 || peers[clientIP] {
			t.Errorf("pods %v saw clients %v, want both pods, client masqueraded", pods, peers)
		}
		pods, _ = hits(t, "", nodeIP+":30080", 20)
		if len(pods) != 2 {
			t.Errorf("NodePort from the node itself reached %v", pods)
		}
	})
	t.Run("externalTrafficPolicy Local keeps the client address", func(t *testing.T) {
		pods, peers := hits(t, l.Client, nodeIP+":30081", 10)
		if pods["a"] != 10 || len(peers) != 1 || !peers[clientIP] {
			t.Errorf("pods %v saw clients %v, want only the local endpoint a and the client's own address", pods, peers)
		}
		// Cluster traffic to the same service still uses every endpoint.
		if pods, _ := hits(t, "", "10.96.0.12:80", 40); len(pods) != 2 {
			t.Errorf("ClusterIP of an eTP Local service reached %v, want both", pods)
		}
	})
	t.Run("externalTrafficPolicy Local without local endpoints drops", func(t *testing.T) {
		c, err := dial(l.Client, nodeIP+":30082", 300*time.Millisecond)
		if err == nil {
			c.Close()
			t.Fatal("connected, want the SYN dropped")
		}
		if ne, ok := errors.AsType[net.Error](err); !ok || !ne.Timeout() {
			t.Errorf("dial: %v, want a time-out (dropped, not rejected)", err)
		}
	})
	dropped := func(t *testing.T, ns, addr string) {
		t.Helper()
		c, err := dial(ns, addr, 300*time.Millisecond)
		if err == nil {
			c.Close()
			t.Fatalf("dial %s from %q connected, want the SYN dropped", addr, ns)
		}
		if ne, ok := errors.AsType[net.Error](err); !ok || !ne.Timeout() {
			t.Errorf("dial %s from %q: %v, want a time-out (dropped, not rejected)", addr, ns, err)
		}
	}
	t.Run("loadBalancerSourceRanges: listed sources reach the LB IP, others are dropped", func(t *testing.T) {
		if pods, _ := hits(t, l.Client, lbAllowed+":80", 5); pods["a"] != 5 {
			t.Errorf("allowed client reached %v, want pod a 5 times", pods)
		}
		dropped(t, l.Client, lbDenied+":80")
		// The ClusterIP of the same service is not filtered.
		if pods, _ := hits(t, l.Client, "10.96.0.15:80", 3); pods["a"] != 3 {
			t.Errorf("ClusterIP of a source-filtered service reached %v", pods)
		}
	})
	t.Run("internalTrafficPolicy Local without local endpoints drops", func(t *testing.T) {
		dropped(t, "", "10.96.0.16:80")
	})
	t.Run("hairpin: a pod reaches itself through its service", func(t *testing.T) {
		pods, peers := hits(t, l.Pods["a"], "10.96.0.11:80", 5)
		if pods["a"] != 5 || peers[l.PodIP["a"].String()] {
			t.Errorf("pods %v saw clients %v, want pod a, source masqueraded", pods, peers)
		}
	})
	refusedFast := func(t *testing.T, ns, addr string) {
		t.Helper()
		start := time.Now()
		c, err := dial(ns, addr, 3*time.Second)
		took := time.Since(start)
		if err == nil {
			c.Close()
			t.Fatalf("dial %s from %q succeeded, want refused", addr, ns)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) || took > 100*time.Millisecond {
			t.Errorf("dial %s from %q: %v after %v, want connection refused in < 100ms", addr, ns, err, took)
		}
	}
	t.Run("no endpoints is refused at once", func(t *testing.T) {
		refusedFast(t, "", "10.96.0.20:80")
		refusedFast(t, l.Client, "10.96.0.20:80")
		refusedFast(t, l.Client, nodeIP+":30090")
	})
	t.Run("unallocated service address is refused at once", func(t *testing.T) {
		refusedFast(t, "", "10.96.5.5:80")
		refusedFast(t, l.Client, "10.96.5.5:80")
		refusedFast(t, "", "10.96.0.10:81")
	})
	t.Run("delta sync removes and adds an endpoint", func(t *testing.T) {
		if err := b.Sync(ctx, state(epA)); err != nil {
			t.Fatal(err)
		}
		if pods, _ := hits(t, "", "10.96.0.10:80", 30); pods["a"] != 30 {
			t.Errorf("after removing b: %v, want all on a", pods)
		}
		if err := b.Sync(ctx, state(epA, epB)); err != nil {
			t.Fatal(err)
		}
		if pods, _ := hits(t, "", "10.96.0.10:80", 60); pods["a"] == 0 || pods["b"] == 0 {
			t.Errorf("after adding b back: %v, want both", pods)
		}
	})
	t.Run("restart full sync keeps an established connection", func(t *testing.T) {
		c, err := dial(l.Client, "10.96.0.10:80", 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		first, err := roundTrip(c, br, false)
		if err != nil {
			t.Fatal(err)
		}
		// A new Backend is a restarted proxy: its first sync is a full one.
		if err := nftables.New(nft).Sync(ctx, state(epA, epB)); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			again, err := roundTrip(c, br, false)
			if err != nil || again != first {
				t.Fatalf("request %d on the old connection after restart: %q, %v; want %q", i, again, err, first)
			}
		}
	})
	t.Run("no endpoints for a while: established connections live on, new ones are refused", func(t *testing.T) {
		// kube-proxy rejects only new connections: a service whose
		// endpoints are briefly not ready must not reset kept-alive ones.
		type conn struct {
			c  net.Conn
			br *bufio.Reader
		}
		var conns []conn
		for _, tt := range []struct{ ns, addr string }{{"", "10.96.0.10:80"}, {l.Client, "10.96.0.10:80"}, {l.Client, nodeIP + ":30080"}} {
			c, err := dial(tt.ns, tt.addr, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			conns = append(conns, conn{c, bufio.NewReader(c)})
		}
		use := func(when string) {
			t.Helper()
			for i, c := range conns {
				if body, err := roundTrip(c.c, c.br, false); err != nil || len(strings.Fields(body)) != 2 {
					t.Fatalf("%s: request on established connection %d: %q, %v", when, i, body, err)
				}
			}
		}
		use("before")
		if err := b.Sync(ctx, state()); err != nil {
			t.Fatal(err)
		}
		use("without endpoints")
		refusedFast(t, "", "10.96.0.10:80")
		refusedFast(t, l.Client, "10.96.0.10:80")
		refusedFast(t, l.Client, nodeIP+":30080")
		if err := b.Sync(ctx, state(epA, epB)); err != nil {
			t.Fatal(err)
		}
		use("with endpoints again")
		if pods, _ := hits(t, l.Client, "10.96.0.10:80", 20); len(pods) != 2 {
			t.Errorf("new connections after the endpoints came back reached %v, want both", pods)
		}
	})
	t.Run("UDP ClusterIP and NodePort after the restart", udp)
	t.Run("TCP ClusterIP after the restart", func(t *testing.T) {
		if pods, _ := hits(t, "", "10.96.0.10:80", 40); len(pods) != 2 {
			t.Errorf("after restart: %v, want both", pods)
		}
	})
}

// timedNFT remembers how long the last Run and List took.
type timedNFT struct {
	knftables.Interface
	last, list time.Duration
}

func (n *timedNFT) List(ctx context.Context, objectType string) ([]string, error) {
	start := time.Now()
	defer func() { n.list = time.Since(start) }()
	return n.Interface.List(ctx, objectType)
}

func (n *timedNFT) Run(ctx context.Context, tx *knftables.Transaction) error {
	start := time.Now()
	defer func() { n.last = time.Since(start) }()
	return n.Interface.Run(ctx, tx)
}

// TestSyncScale measures a full sync of 10,000 service ports × 10
// endpoints (structure through knftables and nft, elements over
// netlink), one-service deltas, a restart and a periodic full sync.
func TestSyncScale(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test skipped under -short")
	}
	netnstest.Require(t)
	ctx := context.Background()
	const services, perService = 10000, 10
	s := dataplane.State{
		ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16")},
		PodCIDR:      netip.MustParsePrefix("10.244.0.0/16"),
		NodeIPs:      []netip.Addr{ip(nodeIP)},
	}
	for i := range services {
		var eps []netip.AddrPort
		for j := range perService {
			n := i*perService + j
			eps = append(eps, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 244, byte(n >> 8), byte(n)}), 8080))
		}
		s.Services = append(s.Services, tcpSvc(fmt.Sprintf("ns/svc%d:http", i),
			netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}).String(), 80, 0, eps))
	}
	// UseNetlink: `nft list table` reads every element back (2.6 s here at
	// this size) just to name the chains a full sync may delete.
	nft := &timedNFT{Interface: realNFT(t, knftables.UseNetlink)}
	b := nftables.New(nft)
	// CPU time (ours, the kernel's on our behalf, and nft's) says what a
	// sync costs when the machine is busy with something else.
	measure := func(what string, f func() error) {
		t.Helper()
		cpu0, start := cpuTime(), time.Now()
		if err := f(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %v (CPU %v), of which in nft: %v", what, time.Since(start).Round(time.Millisecond),
			(cpuTime() - cpu0).Round(time.Millisecond), nft.last.Round(time.Millisecond))
	}
	measure(fmt.Sprintf("full sync %d service ports × %d endpoints", services, perService), func() error { return b.Sync(ctx, s) })

	var deltas, cpus []time.Duration
	const adds = 100
	for i := range adds {
		s.Services = append(s.Services, tcpSvc(fmt.Sprintf("ns/extra%d:http", i),
			netip.AddrFrom4([4]byte{10, 96, 200, byte(i)}).String(), 80, 0, s.Services[i].Endpoints[:2]))
		cpu0, start := cpuTime(), time.Now()
		if err := b.Sync(ctx, s); err != nil {
			t.Fatal(err)
		}
		deltas, cpus = append(deltas, time.Since(start)), append(cpus, cpuTime()-cpu0)
	}
	slices.Sort(deltas)
	slices.Sort(cpus)
	t.Logf("add one service (delta) at that size, %d runs: median %v, p99 %v, max %v; CPU median %v, p99 %v",
		adds, deltas[adds/2].Round(10*time.Microsecond), deltas[adds*99/100].Round(10*time.Microsecond), deltas[adds-1].Round(10*time.Microsecond),
		cpus[adds/2], cpus[adds*99/100])

	measure("restart (a new Backend's full sync over the loaded table)", func() error { return nftables.New(nft).Sync(ctx, s) })
	measure("periodic FullSync of the same state", func() error { return b.FullSync(ctx, s) })
}

// cpuTime is the CPU time used so far by this process and its waited-for
// children (nft).
func cpuTime() time.Duration {
	var self, kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	var d time.Duration
	for _, tv := range []syscall.Timeval{self.Utime, self.Stime, kids.Utime, kids.Stime} {
		d += time.Duration(tv.Nano())
	}
	return d
}

// oldLayout is the table as the version with one backends map for every
// protocol wrote it (trimmed to what one service port needs).
const oldLayout = `
add table ip portal-proxy
add map ip portal-proxy dispatch { type ipv4_addr . inet_proto . inet_service : verdict ; }
add map ip portal-proxy backends { typeof ip daddr . meta l4proto . th dport . numgen random mod 2 : ip daddr . tcp dport ; }
add map ip portal-proxy nodeport-backends { typeof meta l4proto . th dport . numgen random mod 2 : ip daddr . tcp dport ; }
add chain ip portal-proxy nat-output { type nat hook output priority -100 ; }
add chain ip portal-proxy services
add chain ip portal-proxy pick1
add rule ip portal-proxy nat-output jump services
add rule ip portal-proxy services ip daddr . meta l4proto . th dport vmap @dispatch
add rule ip portal-proxy pick1 dnat to ip daddr . meta l4proto . th dport . numgen random mod 1 map @backends
add element ip portal-proxy backends { 10.96.0.10 . tcp . 80 . 0 : 10.244.1.2 . 8080 }
add element ip portal-proxy dispatch { 10.96.0.10 . tcp . 80 : goto pick1 }
`

// TestUpgradeFromOneBackendsMap: a proxy of this version started over the
// table of the previous layout takes it over in place (no delete, so no
// window of rejected service traffic), drops the old maps and chains, and
// serves TCP and UDP.
func TestUpgradeFromOneBackendsMap(t *testing.T) {
	netnstest.Require(t)
	l := newLab(t, "a")
	l.Serve(t)
	ctx := context.Background()
	nft := realNFT(t)
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(oldLayout)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("load the old layout: %v: %s", err, out)
	}
	handle := func() string {
		t.Helper()
		out, err := exec.Command("nft", "-a", "list", "table", "ip", nftables.TableName).Output()
		if err != nil {
			t.Fatalf("nft list table: %v", err)
		}
		first, _, _ := strings.Cut(string(out), "\n")
		return first // "table ip portal-proxy { # handle N"
	}
	before := handle()
	if body, err := get("", "10.96.0.10:80"); err != nil || !strings.HasPrefix(body, "a ") {
		t.Fatalf("old layout serves %q, %v", body, err)
	}

	ep := netip.AddrPortFrom(l.PodIP["a"], 8080)
	s := dataplane.State{
		ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16")},
		PodCIDR:      netip.MustParsePrefix("10.244.0.0/16"),
		NodeIPs:      []netip.Addr{ip(nodeIP)},
		Services: []dataplane.ServicePort{
			tcpSvc("default/web:http", "10.96.0.10", 80, 30080, []netip.AddrPort{ep}),
			{Name: "default/dns:dns", VIPs: []netip.Addr{ip("10.96.0.10")}, Protocol: "UDP", Port: 53,
				Endpoints: []netip.AddrPort{ep}, ExternalEndpoints: []netip.AddrPort{ep}},
		},
	}
	if err := nftables.New(nft).Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if after := handle(); after != before {
		t.Errorf("table recreated: %q, then %q", before, after)
	}
	maps, err := nft.List(ctx, "maps")
	if err != nil {
		t.Fatal(err)
	}
	chains, err := nft.List(ctx, "chains")
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(maps, "backends") || slices.Contains(maps, "nodeport-backends") || slices.Contains(chains, "pick1") {
		t.Errorf("old layout left behind: maps %v, chains %v", maps, chains)
	}
	if body, err := get("", "10.96.0.10:80"); err != nil || !strings.HasPrefix(body, "a ") {
		t.Errorf("TCP after the upgrade: %q, %v", body, err)
	}
	if body, err := ask("", "10.96.0.10:53"); err != nil || !strings.HasPrefix(body, "a ") {
		t.Errorf("UDP after the upgrade: %q, %v", body, err)
	}
}
