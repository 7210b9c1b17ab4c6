//go:build linux

package nftables_test

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

	"sigs.k8s.io/knftables"

	"github.com/portal-net/portal/internal/proxy/dataplane"
	"github.com/portal-net/portal/internal/proxy/dataplane/dataplanetest"
	"github.com/portal-net/portal/internal/proxy/nftables"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// recorder is a knftables.Interface over a Fake plus a FakeElements for
// the elements. Backends made with backend() record, per Sync, every line
// written (text transactions and element ops) as one entry of runs; a
// sync that writes nothing adds none. failErr makes the next write fail.
type recorder struct {
	*knftables.Fake
	el      *nftables.FakeElements
	runs    []string
	pending []string
	failErr error
}

func newRecorder() *recorder {
	f := knftables.NewFake(knftables.IPv4Family, nftables.TableName)
	return &recorder{Fake: f, el: nftables.NewFakeElements(f)}
}

func (r *recorder) Run(ctx context.Context, tx *knftables.Transaction) error {
	if err := r.failErr; err != nil {
		r.failErr = nil
		return err
	}
	r.pending = append(r.pending, tx.String())
	if err := r.Fake.Run(ctx, tx); err != nil {
		return err
	}
	// The kernel refuses to delete a chain a map element still jumps to;
	// the Fake does not know the elements, so check here.
	tbl := r.Tables[knftables.IPv4Family][nftables.TableName]
	for _, m := range []string{"dispatch", "nodeports", "no-endpoints", "nodeport-no-endpoints"} {
		elems, _ := r.el.List(ctx, m)
		for k, v := range elems {
			if chain, ok := strings.CutPrefix(v, "goto "); ok && (tbl == nil || tbl.Chains[chain] == nil) {
				return fmt.Errorf("chain %s deleted while %s { %s } jumps to it", chain, m, k)
			}
		}
	}
	return nil
}

// Dump is the whole table: structure and every element.
func (r *recorder) Dump() string { return r.Fake.Dump() + r.el.Dump() }

// dispatch returns the value of a dispatch element ("" if none).
func (r *recorder) dispatch(t *testing.T, key string) string {
	t.Helper()
	m, err := r.el.List(context.Background(), "dispatch")
	if err != nil {
		t.Fatal(err)
	}
	return m[key]
}

// recElements logs the element batches of a recorder's backends.
type recElements struct{ r *recorder }

func (e recElements) List(ctx context.Context, c string) (map[string]string, error) {
	return e.r.el.List(ctx, c)
}

func (e recElements) Apply(ctx context.Context, ops []nftables.ElementOp) error {
	if err := e.r.failErr; err != nil {
		e.r.failErr = nil
		return err
	}
	if err := e.r.el.Apply(ctx, ops); err != nil {
		return err
	}
	for _, op := range ops {
		e.r.pending = append(e.r.pending, op.String())
	}
	return nil
}

type recBackend struct {
	r *recorder
	b *nftables.Backend
}

// backend returns a new Backend (a restarted proxy) writing to r.
func (r *recorder) backend() *recBackend {
	return &recBackend{r: r, b: nftables.NewBackend(r, recElements{r})}
}

func (rb *recBackend) Sync(ctx context.Context, s dataplane.State) error {
	return rb.record(rb.b.Sync(ctx, s))
}

func (rb *recBackend) FullSync(ctx context.Context, s dataplane.State) error {
	return rb.record(rb.b.FullSync(ctx, s))
}

func (rb *recBackend) record(err error) error {
	if len(rb.r.pending) > 0 {
		rb.r.runs = append(rb.r.runs, strings.Join(rb.r.pending, "\n"))
		rb.r.pending = nil
	}
	return err
}

// last returns the lines the last sync that wrote anything wrote, sorted.
func (r *recorder) last(t *testing.T) []string {
	t.Helper()
	if len(r.runs) == 0 {
		t.Fatal("no transaction was run")
	}
	return sortedLines(r.runs[len(r.runs)-1])
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

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
func ip(s string) netip.Addr     { return netip.MustParseAddr(s) }

func eps(ss ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, s := range ss {
		out = append(out, ap(s))
	}
	return out
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
		},
	}
}

func TestFullSyncGolden(t *testing.T) {
	nft := newRecorder()
	if err := nft.backend().Sync(context.Background(), sampleState()); err != nil {
		t.Fatal(err)
	}
	if len(nft.runs) != 1 {
		t.Fatalf("full sync ran %d transactions, want 1", len(nft.runs))
	}
	got := strings.Join(sortedLines(nft.Dump()), "\n") + "\n"
	golden := filepath.Join("testdata", "full.golden")
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
}

// lineDiff lists lines only in want (-) or only in got (+).
func lineDiff(want, got string) string {
	w, g := sortedLines(want), sortedLines(got)
	var b strings.Builder
	for _, l := range w {
		if !slices.Contains(g, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

func TestRestartFullSyncNeverEmptiesTheTable(t *testing.T) {
	nft := newRecorder()
	ctx := context.Background()
	if err := nft.backend().Sync(ctx, sampleState()); err != nil {
		t.Fatal(err)
	}
	// A restarted proxy with one service port left: the table is never
	// flushed or deleted; each map is flushed and refilled in the one
	// element batch (atomic in the kernel); the unused pick chains go
	// last, after the elements that jumped to them.
	s := sampleState()
	s.Services = s.Services[:1]
	if err := nft.backend().Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for l := range strings.SplitSeq(nft.runs[len(nft.runs)-1], "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	index := func(want string) int {
		t.Helper()
		i := slices.Index(lines, want)
		if i < 0 {
			t.Errorf("restart lacks %q", want)
		}
		return i
	}
	flushDispatch := index("flush map ip portal-proxy dispatch")
	addDispatch := index("add element ip portal-proxy dispatch { 10.96.0.10 . tcp . 80 : goto pick-tcp-2 }")
	delPick3 := index("delete chain ip portal-proxy pick-udp-3")
	index("flush chain ip portal-proxy pick-tcp-2")
	if !(flushDispatch < addDispatch && addDispatch < delPick3) {
		t.Errorf("order: flush dispatch %d, refill %d, delete pick-udp-3 %d; want them in that order", flushDispatch, addDispatch, delPick3)
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "delete table") || strings.HasPrefix(l, "flush table") {
			t.Errorf("restart writes %q", l)
		}
	}
	// The flush and the refill are one batch.
	batches := nft.el.Batches()
	last := batches[len(batches)-1]
	if !last[0].Flush || !slices.ContainsFunc(last, func(op nftables.ElementOp) bool { return op.Container == "dispatch" && !op.Delete && !op.Flush }) {
		t.Errorf("last element batch %v does not flush and refill", last[:min(3, len(last))])
	}
	chains, _ := nft.List(ctx, "chains")
	var picks []string
	for _, c := range chains {
		if strings.Contains(c, "pick") {
			picks = append(picks, c)
		}
	}
	if slices.Sort(picks); !slices.Equal(picks, []string{"pick-tcp-2"}) {
		t.Errorf("pick chains after restart = %v, want [pick-tcp-2]", picks)
	}
	fresh := newRecorder()
	if err := fresh.backend().Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if d := lineDiff(fresh.Dump(), nft.Dump()); d != "" {
		t.Errorf("table after restart differs from a fresh full sync:\n%s", d)
	}
}

func TestFullSyncRepairsElements(t *testing.T) {
	// Elements changed behind the Backend's back are put right by the
	// next full sync.
	ctx := context.Background()
	nft := newRecorder()
	b := nft.backend()
	if err := b.Sync(ctx, sampleState()); err != nil {
		t.Fatal(err)
	}
	if err := nft.el.Apply(ctx, []nftables.ElementOp{
		{Delete: true, Container: "backends-tcp", Key: "10.96.0.10 . tcp . 80 . 1"},
		{Container: "backends-tcp", Key: "10.96.0.10 . tcp . 80 . 1", Value: "10.244.66.66 . 1"},
		{Container: "service-ports", Key: "10.96.9.9 . tcp . 1"},
		{Delete: true, Container: "hairpin", Key: "10.244.1.2 . 10.244.1.2"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.FullSync(ctx, sampleState()); err != nil {
		t.Fatal(err)
	}
	fresh := newRecorder()
	if err := fresh.backend().Sync(ctx, sampleState()); err != nil {
		t.Fatal(err)
	}
	if d := lineDiff(fresh.Dump(), nft.Dump()); d != "" {
		t.Errorf("table after the repairing full sync differs from a fresh one:\n%s", d)
	}
}

func TestPickChainsOnlyForCountsInUse(t *testing.T) {
	nft := newRecorder()
	if err := nft.backend().Sync(context.Background(), sampleState()); err != nil {
		t.Fatal(err)
	}
	chains, _ := nft.List(context.Background(), "chains")
	var picks []string
	for _, c := range chains {
		if strings.Contains(c, "pick") {
			picks = append(picks, c)
		}
	}
	slices.Sort(picks)
	want := []string{"ext-local-pick-tcp-1", "ext-pick-tcp-2", "np-local-pick-tcp-1", "np-pick-tcp-2", "pick-sctp-1", "pick-tcp-2", "pick-udp-3"}
	if !slices.Equal(picks, want) {
		t.Errorf("pick chains = %v, want %v", picks, want)
	}
}

func TestDeltaSync(t *testing.T) {
	const tbl = "ip portal-proxy "
	tests := []struct {
		name   string
		change func(s *dataplane.State)
		want   []string
	}{{
		name:   "no change runs nothing",
		change: func(*dataplane.State) {},
	}, {
		name: "endpoint added to a 2-endpoint service",
		change: func(s *dataplane.State) {
			s.Services[0].Endpoints = append(s.Services[0].Endpoints, ap("10.244.3.4:8080"))
		},
		want: []string{
			// The 3-endpoint chain so far was UDP's only.
			"add chain " + tbl + "pick-tcp-3",
			"add rule " + tbl + "pick-tcp-3 ip saddr != 10.244.0.0/16 meta mark set meta mark | 0x4000",
			"add rule " + tbl + "pick-tcp-3 dnat to ip daddr . meta l4proto . th dport . numgen random mod 3 map @backends-tcp",
			"add element " + tbl + "backends-tcp { 10.96.0.10 . tcp . 80 . 2 : 10.244.3.4 . 8080 }",
			"add element " + tbl + "dispatch { 10.96.0.10 . tcp . 80 : goto pick-tcp-3 }",
			"add element " + tbl + "hairpin { 10.244.3.4 . 10.244.3.4 }",
			"delete element " + tbl + "dispatch { 10.96.0.10 . tcp . 80 }",
		},
	}, {
		name: "new endpoint count adds its pick chain",
		change: func(s *dataplane.State) {
			s.Services[2].Endpoints = eps("10.244.1.1:1", "10.244.1.1:2", "10.244.1.1:3", "10.244.1.1:4")
		},
		want: []string{
			"add chain " + tbl + "pick-tcp-4",
			"add rule " + tbl + "pick-tcp-4 ip saddr != 10.244.0.0/16 meta mark set meta mark | 0x4000",
			"add rule " + tbl + "pick-tcp-4 dnat to ip daddr . meta l4proto . th dport . numgen random mod 4 map @backends-tcp",
			"add element " + tbl + "dispatch { 10.96.0.20 . tcp . 8080 : goto pick-tcp-4 }",
			"add element " + tbl + "backends-tcp { 10.96.0.20 . tcp . 8080 . 0 : 10.244.1.1 . 1 }",
			"add element " + tbl + "backends-tcp { 10.96.0.20 . tcp . 8080 . 1 : 10.244.1.1 . 2 }",
			"add element " + tbl + "backends-tcp { 10.96.0.20 . tcp . 8080 . 2 : 10.244.1.1 . 3 }",
			"add element " + tbl + "backends-tcp { 10.96.0.20 . tcp . 8080 . 3 : 10.244.1.1 . 4 }",
			"add element " + tbl + "hairpin { 10.244.1.1 . 10.244.1.1 }",
			"delete element " + tbl + "no-endpoints { 10.96.0.20 . tcp . 8080 }",
		},
	}, {
		name:   "service removed",
		change: func(s *dataplane.State) { s.Services = slices.Delete(s.Services, 1, 2) },
		want: []string{
			"delete element " + tbl + "dispatch { 10.96.0.53 . udp . 53 }",
			"delete element " + tbl + "backends-udp { 10.96.0.53 . udp . 53 . 0 }",
			"delete element " + tbl + "backends-udp { 10.96.0.53 . udp . 53 . 1 }",
			"delete element " + tbl + "backends-udp { 10.96.0.53 . udp . 53 . 2 }",
			"delete element " + tbl + "service-ports { 10.96.0.53 . udp . 53 }",
			"delete element " + tbl + "hairpin { 10.244.1.5 . 10.244.1.5 }",
			"delete element " + tbl + "hairpin { 10.244.2.5 . 10.244.2.5 }",
			"delete element " + tbl + "hairpin { 10.244.3.5 . 10.244.3.5 }",
		},
	}, {
		name: "eTP Local loses its local endpoint: external traffic dropped, cluster kept",
		change: func(s *dataplane.State) {
			s.Services[5].ExternalEndpoints = nil
			s.Services[5].ExternalDrop = true
		},
		want: []string{
			"delete element " + tbl + "dispatch { 203.0.113.8 . tcp . 80 }",
			"delete element " + tbl + "backends-tcp { 203.0.113.8 . tcp . 80 . 0 }",
			"delete element " + tbl + "nodeports { tcp . 30081 }",
			"delete element " + tbl + "nodeport-backends-tcp { tcp . 30081 . 0 }",
			"add element " + tbl + "no-endpoints { 203.0.113.8 . tcp . 80 : drop }",
			"add element " + tbl + "nodeport-no-endpoints { tcp . 30081 : drop }",
		},
	}, {
		name:   "node address added",
		change: func(s *dataplane.State) { s.NodeIPs = append(s.NodeIPs, ip("192.168.2.10")) },
		want:   []string{"add element " + tbl + "node-ips { 192.168.2.10 }"},
	}}
	for _, tt := range tests {
		// Each change twice: as a plain State, and with State.Changed
		// naming the service ports that differ (what the runner sends).
		for _, hinted := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/hinted=%v", tt.name, hinted), func(t *testing.T) {
				ctx := context.Background()
				nft := newRecorder()
				b := nft.backend()
				before := sampleState()
				if hinted {
					dataplane.SortByName(before.Services)
				}
				if err := b.Sync(ctx, before); err != nil {
					t.Fatal(err)
				}
				s := sampleState()
				tt.change(&s)
				if hinted {
					dataplane.SortByName(s.Services)
					s.Changed = dataplane.ChangedNames(before.Services, s.Services)
				}
				if err := b.Sync(ctx, s); err != nil {
					t.Fatal(err)
				}
				if tt.want == nil {
					if len(nft.runs) != 1 {
						t.Errorf("ran %d transactions, want only the full sync", len(nft.runs))
					}
					return
				}
				if len(nft.runs) != 2 {
					t.Fatalf("ran %d transactions, want 2", len(nft.runs))
				}
				want := slices.Clone(tt.want)
				slices.Sort(want)
				if got := nft.last(t); !slices.Equal(got, want) {
					t.Errorf("delta transaction:\n%s", lineDiff(strings.Join(want, "\n"), strings.Join(got, "\n")))
				}
				// The delta leaves the same table a full sync of s would build.
				fresh := newRecorder()
				if err := fresh.backend().Sync(ctx, s); err != nil {
					t.Fatal(err)
				}
				// Unused pick chains stay until the next full sync.
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
	}
}

// stalePick reports whether a lineDiff line adds an (unreferenced) pick
// chain or its rules.
func stalePick(l string) bool {
	f := strings.Fields(l)
	return len(f) >= 6 && f[0] == "+" && f[1] == "add" && (f[2] == "chain" || f[2] == "rule") && strings.Contains(f[5], "pick")
}

func TestSyncAfterFailureIsFull(t *testing.T) {
	for _, tt := range []struct {
		name string
		fail func(nft *recorder, err error)
	}{
		{"text transaction fails", func(nft *recorder, err error) { nft.failErr = err }},
		{"element batch fails", func(nft *recorder, err error) { nft.el.FailNext(err) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			nft := newRecorder()
			b := nft.backend()
			if err := b.Sync(ctx, sampleState()); err != nil {
				t.Fatal(err)
			}
			s := sampleState()
			s.Services = s.Services[:2]
			boom := errors.New("boom")
			tt.fail(nft, boom)
			if err := b.Sync(ctx, s); !errors.Is(err, boom) {
				t.Fatalf("Sync = %v, want %v", err, boom)
			}
			if err := b.Sync(ctx, s); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(nft.last(t), "add table ip portal-proxy") {
				t.Errorf("sync after a failure was not a full sync:\n%s", strings.Join(nft.last(t), "\n"))
			}
			fresh := newRecorder()
			if err := fresh.backend().Sync(ctx, s); err != nil {
				t.Fatal(err)
			}
			if d := lineDiff(fresh.Dump(), nft.Dump()); d != "" {
				t.Errorf("table after recovering differs from a fresh full sync:\n%s", d)
			}
		})
	}
}

func TestPodCIDRChangeIsFull(t *testing.T) {
	ctx := context.Background()
	nft := newRecorder()
	b := nft.backend()
	if err := b.Sync(ctx, sampleState()); err != nil {
		t.Fatal(err)
	}
	s := sampleState()
	s.PodCIDR = netip.MustParsePrefix("10.100.0.0/16")
	if err := b.Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(nft.last(t), "add rule ip portal-proxy pick-tcp-2 ip saddr != 10.100.0.0/16 meta mark set meta mark | 0x4000") {
		t.Errorf("pick rules not rewritten for the new pod CIDR")
	}
}

func TestDeltaSeesReplacedEndpoints(t *testing.T) {
	// The caller may reuse its dataplane.State's list of service ports,
	// and hands a new endpoint slice for a change (the Backend keeps the
	// slices it applied; see dataplane.State.Services).
	ctx := context.Background()
	nft := newRecorder()
	b := nft.backend()
	s := sampleState()
	if err := b.Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	kept := s.Services[0]
	s.Services[0].Endpoints = slices.Clone(s.Services[0].Endpoints)
	s.Services[0].Endpoints[1] = ap("10.244.9.9:8080")
	s.Services[0].ExternalEndpoints = s.Services[0].Endpoints
	if kept.Equal(&s.Services[0]) {
		t.Fatal("test error: the change is not a change")
	}
	if err := b.Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(nft.last(t), "add element ip portal-proxy backends-tcp { 10.96.0.10 . tcp . 80 . 1 : 10.244.9.9 . 8080 }") {
		t.Errorf("in-place endpoint change not programmed:\n%s", strings.Join(nft.last(t), "\n"))
	}
}

func TestConflictingServicePortsFirstWins(t *testing.T) {
	ctx := context.Background()
	s := sampleState()
	dup := s.Services[0]
	dup.Name = "default/web-copy:http/tcp"
	dup.Endpoints = eps("10.244.7.7:80")
	s.Services = append(s.Services, dup)
	nft := newRecorder()
	b := nft.backend()
	if err := b.Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	if v := nft.dispatch(t, "10.96.0.10 . tcp . 80"); v != "goto pick-tcp-2" {
		t.Fatalf("dispatch for the contested address = %q, want the first service port's goto pick-tcp-2", v)
	}
	// Removing the loser changes nothing in the datapath for the address.
	s.Services = s.Services[:len(s.Services)-1]
	if err := b.Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	for _, l := range nft.last(t) {
		if strings.Contains(l, "10.96.0.10 ") {
			t.Errorf("removing the losing service port touched the winner: %q", l)
		}
	}
}

func TestHairpinOnlyForEndpointsThatMayBeLocal(t *testing.T) {
	// 10.244.2.3 runs on another node: its packets to the service are
	// translated there, so this node needs no hairpin element for it.
	// 10.244.1.2 may be here (its node is this one or unknown).
	s := sampleState()
	for i := range s.Services {
		s.Services[i].RemoteEndpoints = []netip.Addr{ip("10.244.2.3")}
	}
	nft := newRecorder()
	if err := nft.backend().Sync(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	dump := nft.Dump()
	if !strings.Contains(dump, "10.244.1.2 . 10.244.1.2") {
		t.Errorf("no hairpin element for the endpoint that may be local:\n%s", dump)
	}
	if strings.Contains(dump, "10.244.2.3 . 10.244.2.3") {
		t.Errorf("hairpin element for the remote endpoint:\n%s", dump)
	}
	if !strings.Contains(dump, ": 10.244.2.3 . 8080 }") {
		t.Errorf("the remote endpoint is no longer a backend:\n%s", dump)
	}
}

// TestRandomDeltasMatchFullSync: after each of 300 random changes
// (dataplanetest.RandomWalk: shared @hairpin elements, affinity, NodePorts,
// Local policy, source ranges, endpoints on other nodes) the table a
// delta sync left is the table a full sync of the same state writes into
// an empty one.
func TestRandomDeltasMatchFullSync(t *testing.T) {
	ctx := context.Background()
	walk := dataplanetest.NewRandomWalk(sampleState())
	delta := newRecorder()
	b := nftables.NewBackend(delta, delta.el)
	var prev dataplane.State
	for step := range 300 {
		s := walk.Step(step, prev)
		if err := b.Sync(ctx, s); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		full := newRecorder()
		if err := nftables.NewBackend(full, full.el).Sync(ctx, s); err != nil {
			t.Fatal(err)
		}
		// Sorted: the Fake lists an interval set's elements in the order
		// they were added.
		sorted := func(dump string) string {
			lines := strings.Split(dump, "\n")
			slices.Sort(lines)
			return strings.Join(lines, "\n")
		}
		// A delta sync leaves pick chains of endpoint counts no longer
		// in use to the next full sync (they are few); with the elements
		// equal, nothing refers to them.
		want := full.Dump()
		var kept []string
		for _, line := range strings.Split(delta.Dump(), "\n") {
			if c := pickChainOf(line); c == "" || strings.Contains(want, "chain ip portal-proxy "+c+"\n") {
				kept = append(kept, line)
			}
		}
		if w, g := sorted(want), sorted(strings.Join(kept, "\n")); w != g {
			t.Fatalf("step %d: after a delta sync the table is\n%s\nwant (a full sync of the same state)\n%s", step, g, w)
		}
		prev = s
	}
}

// pickChainOf returns the pick chain a chain or rule line of a dump
// declares or fills ("" for other lines).
func pickChainOf(line string) string {
	for _, p := range []string{"add chain ip portal-proxy ", "add rule ip portal-proxy "} {
		if rest, ok := strings.CutPrefix(line, p); ok {
			name, _, _ := strings.Cut(rest, " ")
			if strings.Contains(name, "pick-") {
				return name
			}
		}
	}
	return ""
}
