//go:build linux

package nftables_test

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/portal-net/portal/internal/proxy/dataplane"
	"github.com/portal-net/portal/internal/proxy/nftables"
	"github.com/portal-net/portal/internal/testutil/netnstest"
)

// The netlink-managed sets and maps, with their nft object type.
var netlinkContainers = map[string]string{
	"dispatch": "map", "nodeports": "map", "backends-tcp": "map", "backends-udp": "map", "backends-sctp": "map",
	"nodeport-backends-tcp": "map", "nodeport-backends-udp": "map", "nodeport-backends-sctp": "map",
	"no-endpoints": "map", "nodeport-no-endpoints": "map",
	"service-ports": "set", "node-ips": "set", "hairpin": "set", "lb-source-filtered": "set",
}

// TestNetlinkElementsMatchNft checks the element encoding against nft
// itself: what we write over netlink, nft reads back as the same keys and
// values (the numgen slot included), and what we read back is what nft
// shows.
func TestNetlinkElementsMatchNft(t *testing.T) {
	netnstest.Require(t)
	ctx := context.Background()
	nft := realNFT(t)
	if err := nftables.New(nft).Sync(ctx, sampleState()); err != nil {
		t.Fatal(err)
	}
	fake := newRecorder()
	if err := fake.backend().Sync(ctx, sampleState()); err != nil {
		t.Fatal(err)
	}
	el := nftables.NewNetlinkElements()
	for name, kind := range netlinkContainers {
		fromNft, err := nft.ListElements(ctx, kind, name)
		if err != nil {
			t.Fatalf("nft list %s %s: %v", kind, name, err)
		}
		seen := map[string]string{}
		for _, e := range fromNft {
			seen[strings.Join(e.Key, " . ")] = strings.Join(e.Value, " . ")
		}
		ours, err := el.List(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := fake.el.List(ctx, name)
		if !maps.Equal(seen, want) {
			t.Errorf("nft shows %s as %v, want %v", name, seen, want)
		}
		if !maps.Equal(ours, want) {
			t.Errorf("netlink reads %s back as %v, want %v", name, ours, want)
		}
	}
	// The slot reads as a plain number in nft's own listing too.
	out, err := exec.Command("nft", "list", "map", "ip", nftables.TableName, "backends-udp").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list map: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "10.96.0.53 . udp . 53 . 2 : 10.244.3.5 . 53") {
		t.Errorf("nft list map backends-udp lacks slot 2 of the DNS service:\n%s", out)
	}
}

// TestLayoutChangeRecreatesTable: a table left by a version whose maps
// had other types is replaced, not left failing every sync.
func TestLayoutChangeRecreatesTable(t *testing.T) {
	netnstest.Require(t)
	ctx := context.Background()
	nft := realNFT(t)
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Add(&knftables.Map{Name: "dispatch", Type: "ipv4_addr : verdict"})
	tx.Add(&knftables.Chain{Name: "old"})
	tx.Add(&knftables.Element{Map: "dispatch", Key: []string{"10.96.0.10"}, Value: []string{"goto old"}})
	if err := nft.Run(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if err := nftables.New(nft).Sync(ctx, sampleState()); err != nil {
		t.Fatalf("sync over an old layout: %v", err)
	}
	elems, err := nft.ListElements(ctx, "map", "dispatch")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range elems {
		if strings.Join(e.Key, " . ") == "10.96.0.10 . tcp . 80" && strings.Join(e.Value, " ") == "goto pick-tcp-2" {
			found = true
		}
	}
	if !found {
		t.Errorf("dispatch after the layout change lacks 10.96.0.10 . tcp . 80: %v", elems)
	}
	chains, _ := nft.List(ctx, "chains")
	for _, c := range chains {
		if c == "old" {
			t.Errorf("chain of the old layout left behind")
		}
	}
}

// TestRestartUnderLoad: a restarted proxy's full syncs over a loaded
// table (2,000 service ports) never fail a new connection through a
// ClusterIP.
func TestRestartUnderLoad(t *testing.T) {
	netnstest.Require(t)
	l := newLab(t, "a", "b")
	l.Serve(t)
	ctx := context.Background()
	eps := []netip.AddrPort{netip.AddrPortFrom(l.PodIP["a"], 8080), netip.AddrPortFrom(l.PodIP["b"], 8080)}
	s := dataplane.State{
		ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16")},
		PodCIDR:      netip.MustParsePrefix("10.244.0.0/16"),
		NodeIPs:      []netip.Addr{ip(nodeIP)},
		Services:     []dataplane.ServicePort{tcpSvc("default/web:http", "10.96.0.10", 80, 30080, eps)},
	}
	for i := range 2000 {
		s.Services = append(s.Services, tcpSvc(fmt.Sprintf("ns/svc%d:http", i),
			netip.AddrFrom4([4]byte{10, 96, byte(1 + i>>8), byte(i)}).String(), 80, 0, eps))
	}
	nft := realNFT(t, knftables.UseNetlink)
	if err := nftables.New(nft).Sync(ctx, s); err != nil {
		t.Fatal(err)
	}

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, addr := range []string{"10.96.0.10:80", "10.96.1.7:80", nodeIP + ":30080"} {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if body, err := get("", addr); err != nil || !strings.HasPrefix(body, "a ") && !strings.HasPrefix(body, "b ") {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: %q, %v", addr, body, err))
				} else {
					ok.Add(1)
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	const restarts = 5
	for i := range restarts {
		// A restart, then the periodic resync of the same Backend.
		b := nftables.New(nft)
		if err := b.Sync(ctx, s); err != nil {
			t.Error(err)
		}
		if err := b.FullSync(ctx, s); err != nil {
			t.Error(err)
		}
		if i == 0 {
			t.Logf("restart full sync + resync at %d service ports: %v", len(s.Services), time.Since(start))
		}
	}
	took := time.Since(start)
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d restarts and resyncs in %v; %d requests succeeded, %d failed", restarts, took, ok.Load(), failed.Load())
	if failed.Load() > 0 {
		t.Errorf("%d requests failed during restarts, first: %v", failed.Load(), firstErr.Load())
	}
	if ok.Load() < 50 {
		t.Errorf("only %d requests went through; the load did not overlap the restarts", ok.Load())
	}
}

// TestNetlinkBatchIsAtomic: a batch the kernel refuses part of changes
// nothing, and its error names the refused element; a batch larger than
// one message's element list (maxListBytes) goes through whole.
func TestNetlinkBatchIsAtomic(t *testing.T) {
	netnstest.Require(t)
	ctx := context.Background()
	nft := realNFT(t)
	if err := nftables.New(nft).Sync(ctx, sampleState()); err != nil {
		t.Fatal(err)
	}
	el := nftables.NewNetlinkElements()
	before, err := el.List(ctx, "service-ports")
	if err != nil {
		t.Fatal(err)
	}
	err = el.Apply(ctx, []nftables.ElementOp{
		{Container: "service-ports", Key: "10.96.9.9 . tcp . 9"},
		{Delete: true, Container: "node-ips", Key: "192.0.2.77"}, // not there
	})
	if err == nil || !strings.Contains(err.Error(), "192.0.2.77") {
		t.Fatalf("deleting a missing element: %v, want an error naming it", err)
	}
	after, err := el.List(ctx, "service-ports")
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(before, after) {
		t.Errorf("a refused batch changed service-ports: %d elements, was %d", len(after), len(before))
	}
	// 5,000 elements: several messages in one batch.
	var ops []nftables.ElementOp
	for i := range 5000 {
		ops = append(ops, nftables.ElementOp{Container: "hairpin", Key: fmt.Sprintf("10.250.%d.%d . 10.250.%d.%d", i/250, i%250, i/250, i%250)})
	}
	ops = append(ops, nftables.ElementOp{Flush: true, Container: "lb-source-filtered"},
		nftables.ElementOp{Container: "lb-source-filtered", Key: "192.0.2.1 . tcp . 80"})
	if err := el.Apply(ctx, ops); err != nil {
		t.Fatal(err)
	}
	hp, err := el.List(ctx, "hairpin")
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops[:5000] {
		if _, ok := hp[op.Key]; !ok {
			t.Fatalf("hairpin lacks %s after the batch (%d elements)", op.Key, len(hp))
		}
	}
}
