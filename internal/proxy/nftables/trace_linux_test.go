package nftables_test

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portal-net/portal/internal/proxy/dataplane"
	"github.com/portal-net/portal/internal/proxy/nftables"
	"github.com/portal-net/portal/internal/testutil/netnstest"
)

// tracer follows packets through the kernel's evaluation of the ruleset
// (`meta nftrace set 1` on every new packet, read back with `nft monitor
// trace`): the rules of table portal-proxy each packet hit, with their
// verdicts, in order.
type tracer struct {
	mu     sync.Mutex
	traces map[string]*trace // trace id → trace
	order  []string
}

type trace struct {
	packet string   // the first "packet:" description
	hits   []string // "chain: rule → verdict"
}

var traceLine = regexp.MustCompile(`^trace id (\S+) ip (\S+) (\S+) (.*)$`)

func startTracer(t *testing.T) *tracer {
	t.Helper()
	setup := exec.Command("nft", "-f", "-")
	setup.Stdin = strings.NewReader(`table ip trace-all {
	chain pre { type filter hook prerouting priority mangle; ct state new meta nftrace set 1; }
	chain out { type filter hook output priority mangle; ct state new meta nftrace set 1; }
}
`)
	if out, err := setup.CombinedOutput(); err != nil {
		t.Fatalf("trace table: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("nft", "delete", "table", "ip", "trace-all").Run() })
	ctx, cancel := context.WithCancel(context.Background())
	mon := exec.CommandContext(ctx, "nft", "monitor", "trace")
	out, err := mon.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := mon.Start(); err != nil {
		t.Fatal(err)
	}
	tr := &tracer{traces: map[string]*trace{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			tr.add(sc.Text())
		}
	}()
	t.Cleanup(func() { cancel(); _ = mon.Wait(); <-done })
	time.Sleep(200 * time.Millisecond) // the monitor subscribes
	return tr
}

func (tr *tracer) add(line string) {
	m := traceLine.FindStringSubmatch(line)
	if m == nil {
		return
	}
	id, table, chain, rest := m[1], m[2], m[3], m[4]
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tc := tr.traces[id]
	if tc == nil {
		tc = &trace{}
		tr.traces[id] = tc
		tr.order = append(tr.order, id)
	}
	switch {
	case strings.HasPrefix(rest, "packet: "):
		if tc.packet == "" {
			tc.packet = rest
		}
	case table == nftables.TableName && strings.HasPrefix(rest, "rule "):
		rule, verdict, _ := strings.Cut(strings.TrimPrefix(rest, "rule "), " (verdict ")
		tc.hits = append(tc.hits, chain+": "+rule+" → "+strings.TrimSuffix(verdict, ")"))
	}
}

// path returns the rules hit by the first new packet to dst (addr:port)
// seen so far, waiting a moment for the monitor to catch up.
func (tr *tracer) path(t *testing.T, dst netip.AddrPort) []string {
	t.Helper()
	want := fmt.Sprintf("ip daddr %s ", dst.Addr())
	port := fmt.Sprintf(" dport %d ", dst.Port())
	deadline := time.Now().Add(2 * time.Second)
	for {
		tr.mu.Lock()
		for _, id := range tr.order {
			tc := tr.traces[id]
			if strings.Contains(tc.packet, want) && strings.Contains(tc.packet+" ", port) {
				hits := append([]string(nil), tc.hits...)
				tr.mu.Unlock()
				time.Sleep(100 * time.Millisecond) // the rest of its lines
				tr.mu.Lock()
				hits = append([]string(nil), tc.hits...)
				tr.mu.Unlock()
				return hits
			}
		}
		tr.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no trace of a packet to %s", dst)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPacketTrace walks one new packet per feature through the rules the
// kernel holds and checks which rules it hit and their verdicts.
func TestPacketTrace(t *testing.T) {
	netnstest.Require(t)
	l := newLab(t, "a", "b")
	l.Serve(t)
	epA := netip.AddrPortFrom(l.PodIP["a"], 8080)
	epB := netip.AddrPortFrom(l.PodIP["b"], 8080)
	s := dataplane.State{
		ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16")},
		PodCIDR:      netip.MustParsePrefix("10.244.0.0/16"),
		NodeIPs:      []netip.Addr{ip(nodeIP)},
		Services: []dataplane.ServicePort{
			tcpSvc("default/web:http", "10.96.0.10", 80, 30080, []netip.AddrPort{epA, epB}),
			tcpSvc("default/empty:http", "10.96.0.20", 80, 0, nil),
			{Name: "default/local-none:http", VIPs: []netip.Addr{ip("10.96.0.13")}, Protocol: "tcp", Port: 80, NodePort: 30082,
				Endpoints: []netip.AddrPort{epA, epB}, ExternalLocal: true, ExternalDrop: true},
			{Name: "default/lb-denied:http", VIPs: []netip.Addr{ip("10.96.0.15")}, LoadBalancerIPs: []netip.Addr{ip(lbDenied)},
				SourceRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
				Protocol:     "tcp", Port: 80, Endpoints: []netip.AddrPort{epA}, ExternalEndpoints: []netip.AddrPort{epA}},
		},
	}
	if err := nftables.New(realNFT(t)).Sync(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	tr := startTracer(t)
	const (
		filterJump = "filter-prerouting: ct state new jump filter-services → jump filter-services"
		natJump    = "nat-prerouting: jump services → jump services"
	)
	for _, tc := range []struct {
		name string
		from string // namespace; "" is the node
		dst  string
		want []string // the rules hit in table portal-proxy, in order
	}{{
		name: "ClusterIP from outside: dispatch → pick chain marks for masquerade and DNATs",
		from: l.Client, dst: "10.96.0.10:80",
		want: []string{filterJump, natJump,
			"services: ip daddr . meta l4proto . th dport vmap @dispatch → goto pick-tcp-2",
			"pick-tcp-2: ip saddr != 10.244.0.0/16 meta mark set meta mark | 0x00004000 → continue",
			"pick-tcp-2: dnat ip to ip daddr . meta l4proto . tcp dport . numgen random mod 2 map @backends-tcp → accept",
			"nat-postrouting: meta mark & 0x00004000 == 0x00004000 meta mark set meta mark & 0xffffbfff masquerade → accept"},
	}, {
		name: "NodePort: the node-ports map, external pick chain",
		from: l.Client, dst: nodeIP + ":30080",
		want: []string{filterJump, natJump,
			"services: ip daddr @node-ips meta l4proto . th dport vmap @nodeports → goto np-pick-tcp-2",
			"np-pick-tcp-2: meta mark set meta mark | 0x00004000 → continue",
			"np-pick-tcp-2: dnat ip to meta l4proto . tcp dport . numgen random mod 2 map @nodeport-backends-tcp → accept",
			"nat-postrouting: meta mark & 0x00004000 == 0x00004000 meta mark set meta mark & 0xffffbfff masquerade → accept"},
	}, {
		name: "no endpoints: rejected before NAT",
		from: l.Client, dst: "10.96.0.20:80",
		want: []string{filterJump,
			"filter-services: ip daddr . meta l4proto . th dport vmap @no-endpoints → goto reject-chain",
			"reject-chain: reject with tcp reset → drop"},
	}, {
		name: "unallocated service address: rejected",
		from: l.Client, dst: "10.96.9.9:80",
		want: []string{filterJump,
			"filter-services: ip daddr @service-cidrs ip daddr . meta l4proto . th dport != @service-ports goto reject-chain → goto reject-chain",
			"reject-chain: reject with tcp reset → drop"},
	}, {
		name: "externalTrafficPolicy Local without a local endpoint: dropped",
		from: l.Client, dst: nodeIP + ":30082",
		want: []string{filterJump,
			"filter-services: ip daddr @node-ips meta l4proto . th dport vmap @nodeport-no-endpoints → drop"},
	}, {
		name: "loadBalancerSourceRanges: a source outside them is dropped",
		from: l.Client, dst: lbDenied + ":80",
		want: []string{filterJump,
			"filter-services: ip daddr . meta l4proto . th dport @lb-source-filtered ip daddr . meta l4proto . th dport . ip saddr != @lb-source-allowed drop → drop"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := dial(tc.from, tc.dst, 300*time.Millisecond); err == nil {
				c.Close()
			}
			got := tr.path(t, netip.MustParseAddrPort(tc.dst))
			// nft prints a port of a pick chain's key as "th dport" or,
			// when it inferred the protocol from the map, "tcp dport".
			same := func(s []string) string { return strings.ReplaceAll(strings.Join(s, "\n"), " tcp dport", " th dport") }
			if same(got) != same(tc.want) {
				t.Errorf("rules hit:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}
