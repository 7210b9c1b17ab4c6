//go:build linux

package iptables_test

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

	"github.com/portal-net/portal/internal/proxy/dataplane"
	"github.com/portal-net/portal/internal/proxy/iptables"
	"github.com/portal-net/portal/internal/testutil/netnstest"
	"github.com/portal-net/portal/internal/testutil/proxylab"
)

const (
	nodeIP    = proxylab.NodeIP
	clientIP  = proxylab.ClientIP
	lbAllowed = "203.0.113.14"
	lbDenied  = "203.0.113.15"
)

var roundTrip = proxylab.RoundTrip

func newLab(t *testing.T, pods ...string) *proxylab.Lab {
	t.Helper()
	netnstest.Require(t)
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		t.Skipf("no iptables-restore: %v", err)
	}
	return proxylab.New(t, pods...)
}

func dial(ns, src, addr string, timeout time.Duration) (net.Conn, error) {
	return proxylab.Dial(ns, src, addr, timeout)
}

// get does one HTTP request on a new connection and returns the pod that
// answered and the client address it saw.
func get(ns, src, addr string) (pod, peer string, err error) {
	body, err := proxylab.Get(ns, src, addr)
	if err != nil {
		return "", "", err
	}
	f := strings.Fields(body)
	if len(f) != 2 {
		return "", "", fmt.Errorf("body %q", body)
	}
	return f[0], f[1], nil
}

func tcpSvc(name, vip string, port, nodePort uint16, eps []netip.AddrPort) dataplane.ServicePort {
	return dataplane.ServicePort{Name: name, VIPs: []netip.Addr{ip(vip)}, Protocol: "tcp", Port: port,
		NodePort: nodePort, Endpoints: eps, ExternalEndpoints: eps}
}

// iptablesSave is both tables as iptables-save shows them.
func iptablesSave(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"nat", "filter"} {
		out, err := exec.Command("iptables-save", "-t", table).CombinedOutput()
		if err != nil {
			t.Fatalf("iptables-save -t %s: %v: %s", table, err, out)
		}
		b.Write(out)
	}
	return b.String()
}

// realBackend is a Backend on the iptables-restore on PATH whose rules are
// removed at the end of the test.
func realBackend(t testing.TB) *iptables.Backend {
	t.Helper()
	b := iptables.New(iptables.Options{})
	t.Cleanup(func() {
		if err := b.Cleanup(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return b
}

func TestDatapath(t *testing.T) {
	netnstest.Require(t)
	l := newLab(t, "a", "b")
	l.Serve(t)
	ctx := context.Background()
	epA := netip.AddrPortFrom(l.PodIP["a"], 8080)
	epB := netip.AddrPortFrom(l.PodIP["b"], 8080)
	state := func(webEps ...netip.AddrPort) dataplane.State {
		return dataplane.State{
			ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16")},
			PodCIDR:      netip.MustParsePrefix("10.244.0.0/16"),
			NodeIPs:      []netip.Addr{ip(nodeIP), ip("127.0.0.1")},
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
			},
		}
	}
	b := realBackend(t)
	if err := b.Sync(ctx, state(epA, epB)); err != nil {
		t.Fatal(err)
	}

	// hits does n requests on new connections and counts answers per pod
	// and the client addresses the pods saw.
	hits := func(t *testing.T, ns, addr string, n int) (map[string]int, map[string]bool) {
		t.Helper()
		pods, peers := map[string]int{}, map[string]bool{}
		for range n {
			pod, peer, err := get(ns, "", addr)
			if err != nil {
				t.Fatalf("GET %s from %q: %v", addr, ns, err)
			}
			pods[pod]++
			peers[peer] = true
		}
		return pods, peers
	}
	dropped := func(t *testing.T, ns, addr string) {
		t.Helper()
		c, err := dial(ns, "", addr, 300*time.Millisecond)
		if err == nil {
			c.Close()
			t.Fatalf("dial %s from %q connected, want the SYN dropped", addr, ns)
		}
		if ne, ok := errors.AsType[net.Error](err); !ok || !ne.Timeout() {
			t.Errorf("dial %s from %q: %v, want a time-out (dropped, not rejected)", addr, ns, err)
		}
	}
	refusedFast := func(t *testing.T, ns, addr string) {
		t.Helper()
		start := time.Now()
		c, err := dial(ns, "", addr, 3*time.Second)
		took := time.Since(start)
		if err == nil {
			c.Close()
			t.Fatalf("dial %s from %q succeeded, want refused", addr, ns)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) || took > 100*time.Millisecond {
			t.Errorf("dial %s from %q: %v after %v, want connection refused in < 100ms", addr, ns, err, took)
		}
	}

	t.Run("ClusterIP spreads over both endpoints", func(t *testing.T) {
		pods, _ := hits(t, "", "10.96.0.10:80", 200)
		if pods["a"] < 50 || pods["b"] < 50 {
			t.Errorf("200 requests split %v, want both endpoints well used", pods)
		}
		pods, _ = hits(t, l.Pods["b"], "10.96.0.11:80", 5)
		if pods["a"] != 5 {
			t.Errorf("pod b → only-a reached %v", pods)
		}
	})
	t.Run("ClusterIP from outside the pod CIDR is masqueraded", func(t *testing.T) {
		pods, peers := hits(t, l.Client, "10.96.0.10:80", 20)
		if len(pods) != 2 || peers[clientIP] || !peers["10.244.1.1"] {
			t.Errorf("pods %v saw clients %v, want both pods and only the node's bridge address", pods, peers)
		}
		// From a pod (inside the pod CIDR) the source is kept.
		_, peers = hits(t, l.Pods["b"], "10.96.0.11:80", 3)
		if !peers[l.PodIP["b"].String()] || len(peers) != 1 {
			t.Errorf("pod b → ClusterIP seen as %v, want its own address", peers)
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
		// Never on 127.0.0.1.
		c, err := dial("", "", "127.0.0.1:30080", 300*time.Millisecond)
		if err == nil {
			c.Close()
			t.Error("NodePort answered on 127.0.0.1")
		}
	})
	t.Run("externalTrafficPolicy Local keeps the client address", func(t *testing.T) {
		pods, peers := hits(t, l.Client, nodeIP+":30081", 10)
		if pods["a"] != 10 || len(peers) != 1 || !peers[clientIP] {
			t.Errorf("pods %v saw clients %v, want only the local endpoint a and the client's own address", pods, peers)
		}
		if pods, _ := hits(t, "", "10.96.0.12:80", 40); len(pods) != 2 {
			t.Errorf("ClusterIP of an eTP Local service reached %v, want both", pods)
		}
	})
	t.Run("externalTrafficPolicy Local without local endpoints drops", func(t *testing.T) {
		dropped(t, l.Client, nodeIP+":30082")
	})
	t.Run("internalTrafficPolicy Local without local endpoints drops", func(t *testing.T) {
		dropped(t, "", "10.96.0.16:80")
		dropped(t, l.Pods["a"], "10.96.0.16:80")
	})
	t.Run("loadBalancerSourceRanges: listed sources reach the LB IP, others are dropped", func(t *testing.T) {
		if pods, _ := hits(t, l.Client, lbAllowed+":80", 5); pods["a"] != 5 {
			t.Errorf("allowed client reached %v, want pod a 5 times", pods)
		}
		dropped(t, l.Client, lbDenied+":80")
		if pods, _ := hits(t, l.Client, "10.96.0.15:80", 3); pods["a"] != 3 {
			t.Errorf("ClusterIP of a source-filtered service reached %v", pods)
		}
	})
	t.Run("hairpin: a pod reaches itself through its service", func(t *testing.T) {
		pods, peers := hits(t, l.Pods["a"], "10.96.0.11:80", 5)
		if pods["a"] != 5 || peers[l.PodIP["a"].String()] {
			t.Errorf("pods %v saw clients %v, want pod a, source masqueraded", pods, peers)
		}
	})
	t.Run("no endpoints is refused at once", func(t *testing.T) {
		refusedFast(t, "", "10.96.0.20:80")
		refusedFast(t, l.Client, "10.96.0.20:80")
		refusedFast(t, l.Pods["a"], "10.96.0.20:80")
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
		if err := b.Sync(ctx, state()); err != nil {
			t.Fatal(err)
		}
		refusedFast(t, "", "10.96.0.10:80")
		if err := b.Sync(ctx, state(epA, epB)); err != nil {
			t.Fatal(err)
		}
		if pods, _ := hits(t, "", "10.96.0.10:80", 60); pods["a"] == 0 || pods["b"] == 0 {
			t.Errorf("after adding b back: %v, want both", pods)
		}
	})
	t.Run("restart full sync keeps an established connection", func(t *testing.T) {
		c, err := dial(l.Client, "", "10.96.0.10:80", 2*time.Second)
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
		// A chain an earlier run left behind (a service since deleted).
		stale := iptables.ChainPrefix + "SVC-STALETEST"
		if err := (iptables.ExecRunner{RestorePath: "iptables-restore"}).Restore(ctx, []byte("*nat\n:"+stale+" - [0:0]\n-A "+stale+" -j RETURN\nCOMMIT\n")); err != nil {
			t.Fatal(err)
		}
		// A new Backend is a restarted proxy: its first sync is a full one.
		if err := iptables.New(iptables.Options{}).Sync(ctx, state(epA, epB)); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(iptablesSave(t), stale) {
			t.Errorf("the restarted proxy left the stale chain %s", stale)
		}
		for i := range 3 {
			again, err := roundTrip(c, br, false)
			if err != nil || again != first {
				t.Fatalf("request %d on the old connection after restart: %q, %v; want %q", i, again, err, first)
			}
		}
		if n := strings.Count(iptablesSave(t), `--comment "`+iptables.JumpComment+`"`); n != 6 {
			t.Errorf("%d jump rules after a restart, want 6 (one per builtin chain)", n)
		}
	})
	t.Run("Cleanup leaves nothing of ours and keeps the host's rules", func(t *testing.T) {
		host := "-A FORWARD -s 192.0.2.1/32 -j ACCEPT"
		if out, err := exec.Command("iptables", "-A", "FORWARD", "-s", "192.0.2.1/32", "-j", "ACCEPT").CombinedOutput(); err != nil {
			t.Fatalf("host rule: %v: %s", err, out)
		}
		if err := b.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
		saved := iptablesSave(t)
		if strings.Contains(saved, iptables.ChainPrefix) {
			t.Errorf("after Cleanup iptables-save still shows our chains:\n%s", saved)
		}
		if !strings.Contains(saved, host) {
			t.Errorf("Cleanup removed the host's rule %q:\n%s", host, saved)
		}
		if _, _, err := get("", "", "10.96.0.11:80"); err == nil {
			t.Error("ClusterIP still answers after Cleanup")
		}
		// Sync after a Cleanup programs everything again.
		if err := b.Sync(ctx, state(epA, epB)); err != nil {
			t.Fatal(err)
		}
		if pods, _ := hits(t, "", "10.96.0.11:80", 3); pods["a"] != 3 {
			t.Errorf("after Cleanup and Sync: %v", pods)
		}
	})
}

func TestAffinityDatapath(t *testing.T) {
	netnstest.Require(t)
	l := newLab(t, "a", "b", "c")
	l.Serve(t)
	ctx := context.Background()
	// Ten client addresses outside the node.
	clients := l.Clients(t, 10)
	ep := map[string]netip.AddrPort{}
	for _, p := range []string{"a", "b", "c"} {
		ep[p] = netip.AddrPortFrom(l.PodIP[p], 8080)
	}
	state := func(pods ...string) dataplane.State {
		var e []netip.AddrPort
		for _, p := range pods {
			e = append(e, ep[p])
		}
		sp := tcpSvc("default/sticky:http", "10.96.0.60", 80, 30060, e)
		sp.Affinity, sp.AffinityTimeout = true, 2*time.Second
		return dataplane.State{
			ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16")},
			PodCIDR:      netip.MustParsePrefix("10.244.0.0/16"),
			NodeIPs:      []netip.Addr{ip(nodeIP)},
			Services:     []dataplane.ServicePort{sp},
		}
	}
	b := realBackend(t)
	if err := b.Sync(ctx, state("a", "b", "c")); err != nil {
		t.Fatal(err)
	}
	const vip = "10.96.0.60:80"
	getFrom := func(t *testing.T, src, addr string) string {
		t.Helper()
		pod, _, err := get(l.Client, src, addr)
		if err != nil {
			t.Fatalf("GET %s from %s: %v", addr, src, err)
		}
		return pod
	}
	// pinned has every client make n connections, checks each client kept
	// one pod, and returns it per client.
	pinned := func(t *testing.T, addr string, n int) map[string]string {
		t.Helper()
		got := map[string]string{}
		for _, c := range clients {
			for range n {
				p := getFrom(t, c, addr)
				if prev, ok := got[c]; ok && prev != p {
					t.Fatalf("client %s reached %s then %s, want one pod", c, prev, p)
				}
				got[c] = p
			}
		}
		return got
	}
	var pins map[string]string
	t.Run("clients are pinned and spread over the endpoints", func(t *testing.T) {
		pins = pinned(t, vip, 5)
		seen := map[string]bool{}
		for _, p := range pins {
			seen[p] = true
		}
		if len(seen) < 2 {
			t.Errorf("10 clients all pinned to %v, want at least 2 endpoints", seen)
		}
	})
	t.Run("NodePort traffic keeps the same pins", func(t *testing.T) {
		got := pinned(t, nodeIP+":30060", 2)
		for c, p := range got {
			if pins[c] != p {
				t.Errorf("client %s: NodePort reached %s, ClusterIP %s", c, p, pins[c])
			}
		}
	})
	t.Run("removing the pinned endpoint moves its clients only", func(t *testing.T) {
		first := clients[0]
		gone := pins[first]
		var rest []string
		for _, p := range []string{"a", "b", "c"} {
			if p != gone {
				rest = append(rest, p)
			}
		}
		if err := b.Sync(ctx, state(rest...)); err != nil {
			t.Fatal(err)
		}
		p := getFrom(t, first, vip)
		if p == gone {
			t.Fatalf("client still reached removed endpoint %s", gone)
		}
		for range 5 {
			if again := getFrom(t, first, vip); again != p {
				t.Fatalf("after the move the client reached %s then %s, want one pod", p, again)
			}
		}
		for _, c := range clients[1:] {
			if pins[c] != gone {
				if got := getFrom(t, c, vip); got != pins[c] {
					t.Errorf("client %s moved from %s to %s when %s went", c, pins[c], got, gone)
				}
			}
		}
		if err := b.Sync(ctx, state("a", "b", "c")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("pins expire after the timeout", func(t *testing.T) {
		before := pinned(t, vip, 1)
		moved := 0
		for range 2 {
			time.Sleep(2500 * time.Millisecond)
			now := pinned(t, vip, 1)
			for c, p := range now {
				if p != before[c] {
					moved++
				}
			}
			before = now
		}
		if moved == 0 {
			t.Errorf("after idle periods longer than the timeout none of 20 fresh choices moved")
		}
	})
}

// TestSyncScale measures a full sync of 10,000 service ports × 10
// endpoints through iptables-restore, then one-service deltas.
func TestSyncScale(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test skipped under -short")
	}
	netnstest.Require(t)
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		t.Skipf("no iptables-restore: %v", err)
	}
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
	run := &timedRunner{Runner: iptables.ExecRunner{RestorePath: "iptables-restore", SavePath: "iptables-save", IptablesPath: "iptables"}}
	b := iptables.New(iptables.Options{Runner: run})
	t.Cleanup(func() {
		if err := b.Cleanup(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	start := time.Now()
	if err := b.Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	t.Logf("full sync %d service ports × %d endpoints: %v, of which in iptables-restore: %v, reading back: %v",
		services, perService, time.Since(start), run.restore, run.read)

	var deltas []time.Duration
	for i := range 20 {
		s.Services = append(s.Services, tcpSvc(fmt.Sprintf("ns/extra%d:http", i),
			netip.AddrFrom4([4]byte{10, 96, 200, byte(i)}).String(), 80, 0, s.Services[i].Endpoints[:2]))
		start = time.Now()
		if err := b.Sync(ctx, s); err != nil {
			t.Fatal(err)
		}
		deltas = append(deltas, time.Since(start))
	}
	slices.Sort(deltas)
	t.Logf("add one service (delta) at that size, %d runs: median %v, p99/max %v", len(deltas), deltas[len(deltas)/2], deltas[len(deltas)-1])

	run.read = 0
	start = time.Now()
	if err := b.FullSync(ctx, s); err != nil {
		t.Fatal(err)
	}
	t.Logf("periodic full sync over the loaded tables: %v, of which in iptables-restore: %v, reading back: %v", time.Since(start), run.restore, run.read)
	run.read = 0
	start = time.Now()
	if err := iptables.New(iptables.Options{Runner: run}).Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart full sync over the loaded tables: %v, of which in iptables-restore: %v, reading back: %v", time.Since(start), run.restore, run.read)
}

// timedRunner remembers how long the last Restore took and adds up the
// time spent reading rules back.
type timedRunner struct {
	iptables.Runner
	restore, read time.Duration
}

func (r *timedRunner) Restore(ctx context.Context, input []byte) error {
	start := time.Now()
	defer func() { r.restore = time.Since(start) }()
	return r.Runner.Restore(ctx, input)
}

func (r *timedRunner) Save(ctx context.Context, table string) ([]byte, error) {
	start := time.Now()
	defer func() { r.read += time.Since(start) }()
	return r.Runner.Save(ctx, table)
}

func (r *timedRunner) ListRules(ctx context.Context, table, chain string) ([]byte, error) {
	start := time.Now()
	defer func() { r.read += time.Since(start) }()
	return r.Runner.ListRules(ctx, table, chain)
}

func (r *timedRunner) ListChains(ctx context.Context, table string) ([]string, error) {
	start := time.Now()
	defer func() { r.read += time.Since(start) }()
	return r.Runner.ListChains(ctx, table)
}
