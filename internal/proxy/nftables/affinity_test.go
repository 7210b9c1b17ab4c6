//go:build linux

package nftables_test

import (
	"bufio"
	"context"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/portal-net/portal/internal/proxy/dataplane"
	"github.com/portal-net/portal/internal/proxy/nftables"
	"github.com/portal-net/portal/internal/sys/netns"
	"github.com/portal-net/portal/internal/testutil/netnstest"
)

// affinityState has a plain service and a ClientIP-affinity one with a
// ClusterIP, an external IP and a NodePort.
func affinityState() dataplane.State {
	s := sampleState()
	s.Services = []dataplane.ServicePort{s.Services[0], {
		Name: "default/sticky:http/tcp", VIPs: []netip.Addr{ip("10.96.0.60")}, External: []netip.Addr{ip("203.0.113.60")},
		Protocol: "tcp", Port: 80, NodePort: 30060,
		Endpoints: eps("10.244.1.2:8080", "10.244.2.3:8080"), ExternalEndpoints: eps("10.244.1.2:8080", "10.244.2.3:8080"),
		Affinity: true, AffinityTimeout: 1500 * time.Millisecond,
	}}
	return s
}

func TestAffinityGolden(t *testing.T) {
	nft := newRecorder()
	if err := nft.backend().Sync(context.Background(), affinityState()); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(sortedLines(nft.Dump()), "\n") + "\n"
	golden := filepath.Join("testdata", "affinity.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if w := strings.Join(sortedLines(string(want)), "\n") + "\n"; got != w {
		t.Errorf("ruleset differs from %s (run with -update to accept):\n%s", golden, lineDiff(w, got))
	}
	// Chains stay few: two for the affinity service port, none for the
	// other one; one set per endpoint.
	chains, _ := nft.List(context.Background(), "chains")
	var aff []string
	for _, c := range chains {
		if strings.HasPrefix(c, "aff-") {
			aff = append(aff, c)
		}
	}
	if len(aff) != 2 {
		t.Errorf("affinity chains %v, want 2 (cluster, external)", aff)
	}
}

// affNames returns the names of the affinity chain (cluster) and the set
// of endpoint ep, read from the table.
func affNames(t *testing.T, nft *recorder, ep string) (chain, set string) {
	t.Helper()
	tbl := nft.Tables[knftables.IPv4Family][nftables.TableName]
	v := nft.dispatch(t, "10.96.0.60 . tcp . 80")
	if v == "" {
		t.Fatal("no dispatch element for the affinity service")
	}
	chain = strings.TrimPrefix(v, "goto ")
	suffix := "-" + strings.ReplaceAll(ep, ":", "-")
	for name := range tbl.Sets {
		if strings.HasPrefix(name, "aff-") && strings.HasSuffix(name, suffix) {
			set = name
		}
	}
	if set == "" {
		t.Fatalf("no affinity set for %s", ep)
	}
	return chain, set
}

func TestAffinityDelta(t *testing.T) {
	const tbl = "ip portal-proxy "
	ctx := context.Background()
	base := newRecorder()
	if err := base.backend().Sync(ctx, affinityState()); err != nil {
		t.Fatal(err)
	}
	chain, setA := affNames(t, base, "10.244.1.2:8080")
	_, setB := affNames(t, base, "10.244.2.3:8080")
	tests := []struct {
		name   string
		change func(s *dataplane.State)
		// want lines must be in the delta; notWant substrings must not.
		want, notWant []string
	}{{
		name: "endpoint removed: its rule and set go, the other set (the pins) stays",
		change: func(s *dataplane.State) {
			s.Services[1].Endpoints = eps("10.244.2.3:8080")
			s.Services[1].ExternalEndpoints = eps("10.244.2.3:8080")
		},
		want: []string{
			"flush chain " + tbl + chain,
			"add rule " + tbl + chain + " ip saddr @" + setB + " meta l4proto tcp update @" + setB + " { ip saddr timeout 2s } dnat to 10.244.2.3:8080",
			"delete set " + tbl + setA,
		},
		notWant: []string{"delete set " + tbl + setB, "add set", "flush set", "element", "dnat to 10.244.1.2"},
	}, {
		name:    "timeout change rewrites the chains only",
		change:  func(s *dataplane.State) { s.Services[1].AffinityTimeout = 7 * time.Second },
		want:    []string{"flush chain " + tbl + chain},
		notWant: []string{"element", " set ip ", "timeout 2s"},
	}, {
		name:   "affinity off: back to the shared pick chain",
		change: func(s *dataplane.State) { s.Services[1].Affinity = false },
		want: []string{
			"add element " + tbl + "dispatch { 10.96.0.60 . tcp . 80 : goto pick-tcp-2 }",
			"add element " + tbl + "backends-tcp { 10.96.0.60 . tcp . 80 . 0 : 10.244.1.2 . 8080 }",
			"add element " + tbl + "nodeports { tcp . 30060 : goto np-pick-tcp-2 }",
			"delete chain " + tbl + chain,
			"delete set " + tbl + setA,
			"delete set " + tbl + setB,
		},
	}, {
		name:    "another service's change leaves affinity alone",
		change:  func(s *dataplane.State) { s.Services[0].Endpoints = eps("10.244.1.2:8080") },
		notWant: []string{"aff-"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nft := newRecorder()
			b := nft.backend()
			if err := b.Sync(ctx, affinityState()); err != nil {
				t.Fatal(err)
			}
			s := affinityState()
			tt.change(&s)
			if err := b.Sync(ctx, s); err != nil {
				t.Fatal(err)
			}
			if len(nft.runs) != 2 {
				t.Fatalf("ran %d transactions, want 2", len(nft.runs))
			}
			tx := nft.last(t)
			for _, w := range tt.want {
				if !slices.Contains(tx, w) {
					t.Errorf("delta lacks %q", w)
				}
			}
			for _, l := range tx {
				for _, nw := range tt.notWant {
					if strings.Contains(l, nw) {
						t.Errorf("delta has %q (matches %q)", l, nw)
					}
				}
			}
			fresh := newRecorder()
			if err := fresh.backend().Sync(ctx, s); err != nil {
				t.Fatal(err)
			}
			var d []string
			for l := range strings.SplitSeq(lineDiff(fresh.Dump(), nft.Dump()), "\n") {
				if l != "" && !stalePick(l) {
					d = append(d, l)
				}
			}
			if len(d) > 0 {
				t.Errorf("table after delta differs from a full sync:\n%s", strings.Join(d, "\n"))
			}
		})
	}
	t.Run("affinity on", func(t *testing.T) {
		nft := newRecorder()
		b := nft.backend()
		s := affinityState()
		s.Services[1].Affinity = false
		if err := b.Sync(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := b.Sync(ctx, affinityState()); err != nil {
			t.Fatal(err)
		}
		tx := nft.last(t)
		for _, w := range []string{"add chain " + tbl + chain, "add set " + tbl + setA + " { type ipv4_addr ; flags dynamic,timeout ; }",
			"add element " + tbl + "dispatch { 10.96.0.60 . tcp . 80 : goto " + chain + " }",
			"delete element " + tbl + "backends-tcp { 10.96.0.60 . tcp . 80 . 1 }"} {
			if !slices.Contains(tx, w) {
				t.Errorf("delta lacks %q:\n%s", w, strings.Join(tx, "\n"))
			}
		}
		if l := lineDiff(base.Dump(), nft.Dump()); strings.TrimSpace(l) != "" && !allStale(l) {
			t.Errorf("table after turning affinity on differs from a full sync:\n%s", l)
		}
	})
}

func allStale(diff string) bool {
	for l := range strings.SplitSeq(diff, "\n") {
		if l != "" && !stalePick(l) {
			return false
		}
	}
	return true
}

func TestAffinityFullSyncKeepsPins(t *testing.T) {
	ctx := context.Background()
	nft := newRecorder()
	b := nft.backend()
	if err := b.Sync(ctx, affinityState()); err != nil {
		t.Fatal(err)
	}
	_, setA := affNames(t, nft, "10.244.1.2:8080")
	// The periodic resync and a restarted proxy must keep the pins: the
	// sets are added (a no-op on a set that exists) but never flushed or
	// deleted. (TestAffinityDatapath checks that real nft keeps the pins.)
	if err := b.FullSync(ctx, affinityState()); err != nil {
		t.Fatal(err)
	}
	for _, l := range nft.last(t) {
		if strings.Contains(l, setA) && (strings.HasPrefix(l, "flush set") || strings.HasPrefix(l, "delete set")) {
			t.Errorf("full sync drops the pins: %q", l)
		}
	}
	if !slices.Contains(nft.last(t), "add set ip portal-proxy "+setA+" { type ipv4_addr ; flags dynamic,timeout ; }") {
		t.Errorf("full sync does not declare %s", setA)
	}
	// A restart without the affinity service deletes its chains and sets.
	s := affinityState()
	s.Services = s.Services[:1]
	if err := nft.backend().Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	sets, _ := nft.List(ctx, "sets")
	chains, _ := nft.List(ctx, "chains")
	for _, n := range append(sets, chains...) {
		if strings.HasPrefix(n, "aff-") {
			t.Errorf("%s left after the affinity service went", n)
		}
	}
}

// getFrom does one HTTP request on a new connection from source address
// src in ns and returns the pod that answered.
func getFrom(t *testing.T, ns, src, addr string) string {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	var c net.Conn
	if err := netns.Do(ns, func() (err error) { c, err = d.Dial("tcp4", addr); return err }); err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	body, err := roundTrip(c, bufio.NewReader(c), true)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", addr, src, err)
	}
	pod, _, _ := strings.Cut(body, " ")
	return pod
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
			Services:     []dataplane.ServicePort{sp, tcpSvc("default/web:http", "10.96.0.10", 80, 0, e)},
		}
	}
	nft := realNFT(t)
	b := nftables.New(nft)
	if err := b.Sync(ctx, state("a", "b", "c")); err != nil {
		t.Fatal(err)
	}
	const vip = "10.96.0.60:80"
	// pinned has every client make n connections, checks each client kept
	// one pod, and returns it per client.
	pinned := func(t *testing.T, addr string, n int) map[string]string {
		t.Helper()
		got := map[string]string{}
		for _, c := range clients {
			for range n {
				p := getFrom(t, l.Client, c, addr)
				if prev, ok := got[c]; ok && prev != p {
					t.Fatalf("client %s reached %s then %s, want one pod", c, prev, p)
				}
				got[c] = p
			}
		}
		return got
	}
	first := clients[0]
	pins := map[string]string{}
	t.Run("a client keeps its endpoint", func(t *testing.T) {
		p := getFrom(t, l.Client, first, vip)
		for i := range 20 {
			if again := getFrom(t, l.Client, first, vip); again != p {
				t.Fatalf("connection %d went to %s, want %s", i+1, again, p)
			}
		}
	})
	t.Run("different clients spread over the endpoints", func(t *testing.T) {
		pins = pinned(t, vip, 3)
		seen := map[string]bool{}
		for _, p := range pins {
			seen[p] = true
		}
		if len(seen) < 2 {
			t.Errorf("10 clients all pinned to %v, want at least 2 endpoints", seen)
		}
	})
	t.Run("NodePort traffic is pinned too", func(t *testing.T) {
		pinned(t, nodeIP+":30060", 3)
	})
	t.Run("a restart keeps the pins", func(t *testing.T) {
		if err := nftables.New(nft).Sync(ctx, state("a", "b", "c")); err != nil {
			t.Fatal(err)
		}
		if got := pinned(t, vip, 1); !maps.Equal(got, pins) {
			t.Errorf("after a full sync clients went to %v, were pinned to %v", got, pins)
		}
	})
	t.Run("removing the pinned endpoint moves the client at once", func(t *testing.T) {
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
		p := getFrom(t, l.Client, first, vip)
		if p == gone {
			t.Fatalf("client still reached removed endpoint %s", gone)
		}
		for range 10 {
			if again := getFrom(t, l.Client, first, vip); again != p {
				t.Fatalf("after the move the client reached %s then %s, want one pod", p, again)
			}
		}
		// Clients pinned elsewhere stay where they were.
		for _, c := range clients[1:] {
			if pins[c] != gone {
				if got := getFrom(t, l.Client, c, vip); got != pins[c] {
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
		moved, seen := 0, map[string]bool{}
		for range 2 {
			time.Sleep(2500 * time.Millisecond)
			now := pinned(t, vip, 1)
			for c, p := range now {
				seen[p] = true
				if p != before[c] {
					moved++
				}
			}
			before = now
		}
		// Without expiry no client would ever move; with it each of the 20
		// fresh choices moves with probability 2/3.
		if moved == 0 || len(seen) < 2 {
			t.Errorf("after idle periods longer than the timeout %d of 20 fresh choices moved, pods seen %v", moved, seen)
		}
	})
}
