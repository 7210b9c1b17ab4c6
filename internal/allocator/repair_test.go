package allocator

import (
	"context"
	"net"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/portal-net/portal/internal/allocator/etcdtest"
)

func ipItem(s string) item    { return item{kind: kindIP, name: s} }
func portItem(s string) item  { return item{kind: kindPort, name: s} }
func owner(name string) Owner { return Owner{Namespace: "ns", Name: name} }

func TestPlanRepair(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const minAge = time.Minute
	oldT, youngT := now.Add(-2*time.Minute), now.Add(-10*time.Second)
	inRange := func(it item) bool { return it.name != "192.168.0.1" && it.name != "40000" }
	alloc := func(it item, o string, created time.Time, rev int64) allocation {
		return allocation{item: it, record: record{owner: owner(o), created: created}, revision: rev}
	}
	tests := []struct {
		name       string
		claims     []Claim
		allocs     []allocation
		actions    []action
		kept       int
		pending    int
		conflicts  []string
		outOfRange []string
	}{
		{
			name:   "consistent state: nothing to do",
			claims: []Claim{{Owner: owner("a"), IPs: []net.IP{net.ParseIP("10.0.0.5")}, Ports: []int{30001}}},
			allocs: []allocation{alloc(ipItem("10.0.0.5"), "a", oldT, 3), alloc(portItem("30001"), "a", oldT, 4)},
			kept:   2,
		},
		{
			name:   "missing allocations are re-reserved (crash after allocate, before store)",
			claims: []Claim{{Owner: owner("a"), IPs: []net.IP{net.ParseIP("10.0.0.5")}, Ports: []int{30001, 30001}}},
			actions: []action{
				{kind: actReserve, item: ipItem("10.0.0.5"), owner: owner("a")},
				{kind: actReserve, item: portItem("30001"), owner: owner("a")},
			},
		},
		{
			name:    "leak is released only once older than minAge",
			allocs:  []allocation{alloc(ipItem("10.0.0.7"), "gone", oldT, 7), alloc(portItem("30002"), "inflight", youngT, 8)},
			actions: []action{{kind: actRelease, item: ipItem("10.0.0.7"), revision: 7}},
			pending: 1,
		},
		{
			name: "two services claiming one value: first keeps it, conflict reported",
			claims: []Claim{
				{Owner: owner("a"), Ports: []int{30003}},
				{Owner: owner("b"), Ports: []int{30003}},
			},
			actions:   []action{{kind: actReserve, item: portItem("30003"), owner: owner("a")}},
			conflicts: []string{"port 30003 is claimed by 2 services: ns/a, ns/b"},
		},
		{
			name: "held by the second claimant: kept, conflict reported",
			claims: []Claim{
				{Owner: owner("a"), Ports: []int{30003}},
				{Owner: owner("b"), Ports: []int{30003}},
			},
			allocs:    []allocation{alloc(portItem("30003"), "b", oldT, 9)},
			kept:      1,
			conflicts: []string{"port 30003 is claimed by 2 services: ns/a, ns/b"},
		},
		{
			name:   "stale allocation of a non-claimant is moved to the claimant",
			claims: []Claim{{Owner: owner("a"), IPs: []net.IP{net.ParseIP("10.0.0.9")}}},
			allocs: []allocation{alloc(ipItem("10.0.0.9"), "old", oldT, 11)},
			actions: []action{
				{kind: actRelease, item: ipItem("10.0.0.9"), revision: 11, reassign: true},
				{kind: actReserve, item: ipItem("10.0.0.9"), owner: owner("a"), reassign: true},
			},
		},
		{
			name:      "young allocation of a non-claimant is left alone and reported",
			claims:    []Claim{{Owner: owner("a"), IPs: []net.IP{net.ParseIP("10.0.0.9")}}},
			allocs:    []allocation{alloc(ipItem("10.0.0.9"), "new", youngT, 12)},
			conflicts: []string{"IP 10.0.0.9 is claimed by service ns/a but was just allocated to service ns/new"},
		},
		{
			name:   "foreign keys are never touched",
			claims: []Claim{{Owner: owner("a"), IPs: []net.IP{net.ParseIP("10.0.0.3")}}},
			allocs: []allocation{
				{item: ipItem("10.0.0.3"), record: record{foreign: true}, revision: 2},
				{item: ipItem("10.0.0.4"), record: record{foreign: true}, revision: 3},
			},
			conflicts: []string{"IP 10.0.0.3 is claimed by service ns/a but held by an allocation not made for a service"},
		},
		{
			name:       "claims outside the ranges are reported, not reserved",
			claims:     []Claim{{Owner: owner("a"), IPs: []net.IP{net.ParseIP("192.168.0.1")}, Ports: []int{40000}}},
			outOfRange: []string{"IP 192.168.0.1 of service ns/a is not in the configured range", "port 40000 of service ns/a is not in the configured range"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := planRepair(tt.claims, tt.allocs, inRange, now, minAge)
			if !reflect.DeepEqual(p.actions, tt.actions) {
				t.Errorf("actions = %+v\nwant %+v", p.actions, tt.actions)
			}
			if p.kept != tt.kept || p.pending != tt.pending {
				t.Errorf("kept, pending = %d, %d; want %d, %d", p.kept, p.pending, tt.kept, tt.pending)
			}
			if !reflect.DeepEqual(p.conflicts, tt.conflicts) {
				t.Errorf("conflicts = %q, want %q", p.conflicts, tt.conflicts)
			}
			if !reflect.DeepEqual(p.outOfRange, tt.outOfRange) {
				t.Errorf("outOfRange = %q, want %q", p.outOfRange, tt.outOfRange)
			}
		})
	}
}

func TestRepairAgainstEtcd(t *testing.T) {
	cli, _ := etcdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store := NewEtcdStore(cli)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := now.Add(-time.Hour)
	opts := Options{Now: func() time.Time { return clock }}
	ipRange := mustIPRange(t, "10.0.0.0/24")
	portRange, _ := ParsePortRange("30000-32767")
	allocs := &Allocators{
		ClusterIPs: []*ClusterIPAllocator{NewClusterIPAllocator(store, DefaultPrefix, ipRange, opts)},
		NodePorts:  NewPortAllocator(store, DefaultPrefix, portRange, opts),
	}
	ips, ports := allocs.ClusterIPs[0], allocs.NodePorts
	mustOK := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// An hour ago: a and a deleted service "gone" were created.
	mustOK(ips.Allocate(ctx, owner("a"), net.ParseIP("10.0.0.20")))
	mustOK(ports.Allocate(ctx, owner("a"), 30020))
	mustOK(ips.Allocate(ctx, owner("gone"), net.ParseIP("10.0.0.30")))
	mustOK(ports.Allocate(ctx, owner("gone"), 30030))
	// Just now: a create in flight on another server.
	clock = now
	mustOK(ips.Allocate(ctx, owner("inflight"), net.ParseIP("10.0.0.40")))

	claims := []Claim{
		{Owner: owner("a"), IPs: []net.IP{net.ParseIP("10.0.0.20")}, Ports: []int{30020}},
		// b is stored but its allocations are missing: the state a crash
		// leaves behind, or a lost etcd key.
		{Owner: owner("b"), IPs: []net.IP{net.ParseIP("10.0.0.21")}, Ports: []int{30021, 30022}},
		// c claims a's port: a conflict repair can only report.
		{Owner: owner("c"), Ports: []int{30020}},
	}
	sum, err := allocs.Repair(ctx, claims, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := RepairSummary{
		Checked: 5, Kept: 2, Restored: 3, Released: 2, Pending: 1,
		Conflicts: []string{"port 30020 is claimed by 2 services: ns/a, ns/c"},
	}
	if !reflect.DeepEqual(sum, want) {
		t.Fatalf("summary = %+v\nwant %+v", sum, want)
	}
	entries, _, err := store.List(ctx, "/registry/")
	mustOK(err)
	var got []string
	for k, e := range entries {
		var o Owner
		if strings.Contains(k, "/ipaddresses/") {
			o = decodeIPAddress(e.Value).owner
		} else {
			o = decodeNodePort(e.Value).owner
		}
		got = append(got, k+"="+o.Name)
	}
	sort.Strings(got)
	wantKeys := []string{
		"/registry/networking.k8s.io/ipaddresses/10.0.0.20=a",
		"/registry/networking.k8s.io/ipaddresses/10.0.0.21=b",
		"/registry/networking.k8s.io/ipaddresses/10.0.0.40=inflight",
		"/registry/portal.dev/nodeports/30020=a",
		"/registry/portal.dev/nodeports/30021=b",
		"/registry/portal.dev/nodeports/30022=b",
	}
	if strings.Join(got, "\n") != strings.Join(wantKeys, "\n") {
		t.Fatalf("etcd after repair:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantKeys, "\n"))
	}
	// A second pass finds nothing to do but the in-flight allocation.
	sum, err = allocs.Repair(ctx, claims, time.Minute)
	mustOK(err)
	if sum.Restored != 0 || sum.Released != 0 || sum.Pending != 1 || sum.Kept != 5 {
		t.Fatalf("second pass = %s", sum)
	}
	if ips.Used() != 3 || ports.Used() != 3 {
		t.Fatalf("local views hold %d IPs, %d ports; want 3, 3", ips.Used(), ports.Used())
	}
}
