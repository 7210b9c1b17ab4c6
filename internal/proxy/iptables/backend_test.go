package iptables_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portal-net/portal/internal/proxy/dataplane"
	"github.com/portal-net/portal/internal/proxy/dataplane/dataplanetest"
	"github.com/portal-net/portal/internal/proxy/iptables"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
func ip(s string) netip.Addr     { return netip.MustParseAddr(s) }

func eps(ss ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, s := range ss {
		out = append(out, ap(s))
	}
	return out
}

func sortedLines(s string) []string {
	var lines []string
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	slices.Sort(lines)
	return lines
}

// lineDiff lists lines only in want (-) or only in got (+).
func lineDiff(want, got []string) string {
	var b strings.Builder
	for _, l := range want {
		if !slices.Contains(got, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range got {
		if !slices.Contains(want, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// sampleState has one service port of every shape the datapath knows.
func sampleState() dataplane.State {
	two := eps("10.244.1.2:8080", "10.244.2.3:8080")
	return dataplane.State{
		ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16")},
		PodCIDR:      netip.MustParsePrefix("10.244.0.0/16"),
		NodeIPs:      []netip.Addr{ip("192.168.1.10"), ip("127.0.0.1")},
		Services: []dataplane.ServicePort{
			{Name: "default/web:http/tcp", VIPs: []netip.Addr{ip("10.96.0.10")}, Protocol: "tcp", Port: 80,
				Endpoints: two, ExternalEndpoints: two},
			{Name: "kube-system/dns:dns/udp", VIPs: []netip.Addr{ip("10.96.0.53")}, Protocol: "udp", Port: 53,
				Endpoints: eps("10.244.1.5:53", "10.244.2.5:53", "10.244.3.5:53"), ExternalEndpoints: eps("10.244.1.5:53", "10.244.2.5:53", "10.244.3.5:53")},
			{Name: "default/empty:p/tcp", VIPs: []netip.Addr{ip("10.96.0.20")}, Protocol: "tcp", Port: 8080},
			{Name: "default/empty:q/udp", VIPs: []netip.Addr{ip("10.96.0.20")}, Protocol: "UDP", Port: 9090},
			{Name: "default/np:http/tcp", VIPs: []netip.Addr{ip("10.96.0.30")}, External: []netip.Addr{ip("203.0.113.7")},
				Protocol: "tcp", Port: 80, NodePort: 30080, Endpoints: two, ExternalEndpoints: two},
			{Name: "default/local:http/tcp", VIPs: []netip.Addr{ip("10.96.0.40")}, External: []netip.Addr{ip("203.0.113.8")},
				Protocol: "tcp", Port: 80, NodePort: 30081, Endpoints: two, ExternalEndpoints: eps("10.244.1.2:8080"), ExternalLocal: true},
			{Name: "default/local-none:http/sctp", VIPs: []netip.Addr{ip("10.96.0.50")}, External: []netip.Addr{ip("203.0.113.9")},
				Protocol: "sctp", Port: 80, NodePort: 30082, Endpoints: eps("10.244.2.9:80"), ExternalLocal: true, ExternalDrop: true},
			{Name: "default/lb:https/tcp", VIPs: []netip.Addr{ip("10.96.0.60")}, LoadBalancerIPs: []netip.Addr{ip("203.0.113.60")},
				SourceRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("192.0.2.7/32")},
				Protocol:     "tcp", Port: 443, NodePort: 30443, Endpoints: two, ExternalEndpoints: two},
			{Name: "default/itp-local:http/tcp", VIPs: []netip.Addr{ip("10.96.0.70")}, Protocol: "tcp", Port: 80, ClusterDrop: true},
			{Name: "default/sticky:http/tcp", VIPs: []netip.Addr{ip("10.96.0.80")}, Protocol: "tcp", Port: 80, NodePort: 30088,
				Endpoints: two, ExternalEndpoints: two, Affinity: true, AffinityTimeout: 30 * time.Second},
		},
	}
}

func checkGolden(t *testing.T, name string, got []string) {
	t.Helper()
	golden := filepath.Join("testdata", name)
	text := strings.Join(got, "\n") + "\n"
	if *update {
		if err := os.WriteFile(golden, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if w := sortedLines(string(want)); !slices.Equal(w, got) {
		t.Errorf("differs from %s (run with -update to accept):\n%s", golden, lineDiff(w, got))
	}
}

func TestFullSyncGolden(t *testing.T) {
	fake := iptables.NewFake()
	if err := iptables.New(iptables.Options{Runner: fake}).Sync(context.Background(), sampleState()); err != nil {
		t.Fatal(err)
	}
	if len(fake.Inputs) != 1 {
		t.Fatalf("full sync ran %d restores, want 1", len(fake.Inputs))
	}
	checkGolden(t, "full.golden", sortedLines(fake.Inputs[0]))
}

// ruleLines is every rule of ours in the fake's tables, sorted.
func ruleLines(t *testing.T, fake *iptables.Fake) []string {
	t.Helper()
	var all []string
	for _, table := range []string{"filter", "nat"} {
		out, err := fake.Save(context.Background(), table)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range sortedLines(string(out)) {
			if strings.Contains(l, iptables.ChainPrefix) {
				all = append(all, table+" "+l)
			}
		}
	}
	slices.Sort(all)
	return all
}

func TestDeltaSync(t *testing.T) {
	ctx := context.Background()
	base := sampleState()
	added := sampleState()
	added.Services = append(added.Services, dataplane.ServicePort{Name: "default/new:http/tcp", VIPs: []netip.Addr{ip("10.96.7.10")},
		Protocol: "tcp", Port: 80, Endpoints: eps("10.244.9.2:8080"), ExternalEndpoints: eps("10.244.9.2:8080")})
	lessEps := sampleState()
	lessEps.Services[1].Endpoints = eps("10.244.1.5:53", "10.244.3.5:53")
	lessEps.Services[1].ExternalEndpoints = lessEps.Services[1].Endpoints
	removed := sampleState()
	removed.Services = slices.Delete(removed.Services, 0, 1)
	emptied := sampleState()
	emptied.Services[0].Endpoints, emptied.Services[0].ExternalEndpoints = nil, nil
	stickyGone := sampleState()
	stickyGone.Services[9].Endpoints = eps("10.244.2.3:8080")
	stickyGone.Services[9].ExternalEndpoints = stickyGone.Services[9].Endpoints

	for _, tc := range []struct {
		name   string
		to     dataplane.State
		golden string // exact restore input; "" means no restore at all
	}{
		{"no change", base, ""},
		{"add a service: its chain and its buckets", added, "delta-add.golden"},
		{"remove an endpoint: one service chain and the hairpin bucket", lessEps, "delta-endpoint.golden"},
		{"remove a service", removed, "delta-remove.golden"},
		{"last endpoint gone: reject instead of DNAT", emptied, "delta-empty.golden"},
		{"affinity endpoint gone: its chain goes", stickyGone, "delta-affinity.golden"},
	} {
		// Each change twice: as a plain State, and with State.Changed
		// naming the service ports that differ (what the runner sends).
		for _, hinted := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/hinted=%v", tc.name, hinted), func(t *testing.T) {
				fake := iptables.NewFake()
				b := iptables.New(iptables.Options{Runner: fake})
				from, to := base, tc.to
				if hinted {
					from, to = sortedState(base), sortedState(tc.to)
					to.Changed = dataplane.ChangedNames(from.Services, to.Services)
				}
				if err := b.Sync(ctx, from); err != nil {
					t.Fatal(err)
				}
				if err := b.Sync(ctx, to); err != nil {
					t.Fatal(err)
				}
				got := ""
				if len(fake.Inputs) > 1 {
					got = fake.Inputs[len(fake.Inputs)-1]
				}
				want := ""
				if tc.golden != "" {
					path := filepath.Join("testdata", tc.golden)
					if *update {
						if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
							t.Fatal(err)
						}
					}
					b, err := os.ReadFile(path)
					if err != nil {
						t.Fatalf("%v (run with -update to create it)", err)
					}
					want = string(b)
				}
				if got != want {
					t.Errorf("delta restore input (run with -update to accept):\n%s\nwant:\n%s", got, want)
				}
				// The delta leaves the tables as a full sync of the new state would.
				full := iptables.NewFake()
				if err := iptables.New(iptables.Options{Runner: full}).Sync(ctx, tc.to); err != nil {
					t.Fatal(err)
				}
				if w, g := ruleLines(t, full), ruleLines(t, fake); !slices.Equal(w, g) {
					t.Errorf("tables after the delta differ from a full sync:\n%s", lineDiff(w, g))
				}
			})
		}
	}
}

// sortedState is s with its own Services sorted by name, as the runner
// sends them.
func sortedState(s dataplane.State) dataplane.State {
	s.Services = slices.Clone(s.Services)
	dataplane.SortByName(s.Services)
	return s
}

// countJumps counts the jump rules of ours in builtin chains.
func countJumps(t *testing.T, fake *iptables.Fake) int {
	t.Helper()
	n := 0
	for _, l := range ruleLines(t, fake) {
		if strings.Contains(l, `--comment "`+iptables.JumpComment+`"`) {
			n++
		}
	}
	return n
}

func TestFailedSyncIsFollowedByAFullOne(t *testing.T) {
	ctx := context.Background()
	fake := iptables.NewFake()
	b := iptables.New(iptables.Options{Runner: fake})
	if err := b.Sync(ctx, sampleState()); err != nil {
		t.Fatal(err)
	}
	s := sampleState()
	s.Services = s.Services[:3]
	fake.FailNext = errors.New("boom")
	if err := b.Sync(ctx, s); err == nil {
		t.Fatal("Sync succeeded although iptables-restore failed")
	}
	if err := b.Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	last := fake.Inputs[len(fake.Inputs)-1]
	if !strings.Contains(last, ":"+iptables.ChainPrefix+"SERVICES - [0:0]") || !strings.Contains(last, ":"+iptables.ChainPrefix+"FILTER - [0:0]") {
		t.Errorf("sync after a failure is not a full one:\n%s", last)
	}
	full := iptables.NewFake()
	if err := iptables.New(iptables.Options{Runner: full}).Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if w, g := ruleLines(t, full), ruleLines(t, fake); !slices.Equal(w, g) {
		t.Errorf("tables after recovery differ from a fresh full sync:\n%s", lineDiff(w, g))
	}
}

func TestRestartDeletesStaleChainsAndKeepsOneJump(t *testing.T) {
	ctx := context.Background()
	fake := iptables.NewFake()
	// The host's own rules, and a stray second jump of ours.
	if err := fake.Restore(ctx, []byte("*filter\n-A FORWARD -s 192.0.2.1/32 -j ACCEPT\nCOMMIT\n")); err != nil {
		t.Fatal(err)
	}
	if err := iptables.New(iptables.Options{Runner: fake}).Sync(ctx, sampleState()); err != nil {
		t.Fatal(err)
	}
	if err := fake.Restore(ctx, []byte("*nat\n-A PREROUTING -j "+iptables.ChainPrefix+"SERVICES\nCOMMIT\n")); err != nil {
		t.Fatal(err)
	}
	s := sampleState()
	s.Services = s.Services[:2]
	b := iptables.New(iptables.Options{Runner: fake}) // a restarted proxy
	if err := b.Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if fake.Saves != 0 {
		t.Errorf("the first and the restart's full syncs ran iptables-save %d times; chain names and builtin chains are enough", fake.Saves)
	}
	full := iptables.NewFake()
	if err := iptables.New(iptables.Options{Runner: full}).Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if w, g := ruleLines(t, full), ruleLines(t, fake); !slices.Equal(w, g) {
		t.Errorf("tables after a restart differ from a fresh full sync:\n%s", lineDiff(w, g))
	}
	out, _ := fake.Save(ctx, "filter")
	if !strings.Contains(string(out), "-A FORWARD -s 192.0.2.1/32 -j ACCEPT") {
		t.Errorf("the host's rule is gone:\n%s", out)
	}

	// A periodic full sync does not read whole tables back, yet deletes
	// what a delta left behind and repairs a deleted jump.
	saves := fake.Saves
	s.Services = s.Services[:1]
	if err := b.Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := fake.Restore(ctx, []byte("*nat\n-D OUTPUT -m comment --comment \""+iptables.JumpComment+"\" -j "+iptables.ChainPrefix+"SERVICES\nCOMMIT\n")); err != nil {
		t.Fatal(err)
	}
	if err := b.FullSync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if fake.Saves != saves {
		t.Errorf("periodic full sync ran iptables-save %d times", fake.Saves-saves)
	}
	full = iptables.NewFake()
	if err := iptables.New(iptables.Options{Runner: full}).Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if w, g := ruleLines(t, full), ruleLines(t, fake); !slices.Equal(w, g) {
		t.Errorf("tables after a periodic full sync differ from a fresh one:\n%s", lineDiff(w, g))
	}
	if n := countJumps(t, fake); n != 6 {
		t.Errorf("%d jump rules, want one in each of 6 builtin chains", n)
	}
}

func TestCleanup(t *testing.T) {
	ctx := context.Background()
	fake := iptables.NewFake()
	if err := fake.Restore(ctx, []byte("*nat\n-A POSTROUTING -s 192.0.2.0/24 -j MASQUERADE\nCOMMIT\n")); err != nil {
		t.Fatal(err)
	}
	b := iptables.New(iptables.Options{Runner: fake})
	if err := b.Sync(ctx, sampleState()); err != nil {
		t.Fatal(err)
	}
	// Another Backend (the other proxy mode starting) cleans up.
	if err := iptables.New(iptables.Options{Runner: fake}).Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if left := ruleLines(t, fake); len(left) > 0 {
		t.Errorf("left after Cleanup:\n%s", strings.Join(left, "\n"))
	}
	out, _ := fake.Save(ctx, "nat")
	if !strings.Contains(string(out), "-A POSTROUTING -s 192.0.2.0/24 -j MASQUERADE") {
		t.Errorf("the host's rule is gone:\n%s", out)
	}
	n := len(fake.Inputs)
	if err := iptables.New(iptables.Options{Runner: fake}).Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if len(fake.Inputs) != n {
		t.Error("Cleanup with nothing to clean ran iptables-restore")
	}
}

func TestFirstClaimWins(t *testing.T) {
	ctx := context.Background()
	s := sampleState()
	dup := s.Services[0]
	dup.Name = "other/web:http/tcp"
	dup.Endpoints = eps("10.244.5.5:80")
	s.Services = append(s.Services, dup)
	fake := iptables.NewFake()
	if err := iptables.New(iptables.Options{Runner: fake}).Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range ruleLines(t, fake) {
		if strings.Contains(l, "-d 10.96.0.10/32 -p tcp -m tcp --dport 80") {
			n++
			if !strings.Contains(l, "default/web") {
				t.Errorf("dispatch from the later service port: %s", l)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d dispatch rules for 10.96.0.10:80, want 1", n)
	}
}

func TestUnknownProtocolIsSkipped(t *testing.T) {
	s := sampleState()
	s.Services = append(s.Services, dataplane.ServicePort{Name: "default/odd:x/icmp", VIPs: []netip.Addr{ip("10.96.0.99")},
		Protocol: "icmp", Port: 1, Endpoints: eps("10.244.1.9:1")})
	fake := iptables.NewFake()
	if err := iptables.New(iptables.Options{Runner: fake}).Sync(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	for _, l := range ruleLines(t, fake) {
		if strings.Contains(l, "10.96.0.99") || strings.Contains(l, "10.244.1.9") {
			t.Errorf("rule for a service port of unknown protocol: %s", l)
		}
	}
}

func TestHairpinOnlyForEndpointsThatMayBeLocal(t *testing.T) {
	// 10.244.2.3 runs on another node: its packets to the service are
	// translated there, so this node needs no hairpin rule for it.
	s := sampleState()
	for i := range s.Services {
		s.Services[i].RemoteEndpoints = []netip.Addr{ip("10.244.2.3")}
	}
	fake := iptables.NewFake()
	if err := iptables.New(iptables.Options{Runner: fake}).Sync(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	rules := strings.Join(ruleLines(t, fake), "\n")
	if !strings.Contains(rules, "-s 10.244.1.2/32 -d 10.244.1.2/32 -j MASQUERADE") {
		t.Errorf("no hairpin rule for the endpoint that may be local:\n%s", rules)
	}
	if strings.Contains(rules, "-s 10.244.2.3/32 -d 10.244.2.3/32") {
		t.Errorf("hairpin rule for the remote endpoint:\n%s", rules)
	}
	if strings.Contains(rules, iptables.ChainPrefix+"HP-3") {
		t.Errorf("hairpin bucket left for the remote endpoint's octet:\n%s", rules)
	}
	if !strings.Contains(rules, "--to-destination 10.244.2.3:8080") {
		t.Errorf("the remote endpoint is no longer a backend:\n%s", rules)
	}
}

// TestRandomDeltasMatchFullSync walks through random changes of a small
// cluster whose service ports share endpoints (dataplanetest.RandomWalk:
// hairpin buckets are shared and counted) and after each delta sync
// compares the tables with a full sync of the same State into empty ones.
// Chains rendered when written must come out the same either way.
func TestRandomDeltasMatchFullSync(t *testing.T) {
	ctx := context.Background()
	walk := dataplanetest.NewRandomWalk(sampleState())
	fake := iptables.NewFake()
	b := iptables.New(iptables.Options{Runner: fake})
	var prev dataplane.State
	for step := range 300 {
		s := walk.Step(step, prev)
		if err := b.Sync(ctx, s); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		full := iptables.NewFake()
		if err := iptables.New(iptables.Options{Runner: full}).Sync(ctx, s); err != nil {
			t.Fatal(err)
		}
		if w, g := ruleLines(t, full), ruleLines(t, fake); !slices.Equal(w, g) {
			t.Fatalf("step %d: tables after the delta differ from a full sync:\n%s", step, lineDiff(w, g))
		}
		prev = s
	}
}
