package allocator

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
)

var (
	svcA = Owner{Namespace: "default", Name: "a"}
	svcB = Owner{Namespace: "default", Name: "b"}
)

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testOptions() Options { return Options{Now: func() time.Time { return fixedNow }} }

func newIPAlloc(t *testing.T, s Store, cidr string) *ClusterIPAllocator {
	t.Helper()
	return NewClusterIPAllocator(s, DefaultPrefix, mustIPRange(t, cidr), testOptions())
}

func newPortAlloc(t *testing.T, s Store, rng string) *PortAllocator {
	t.Helper()
	r, err := ParsePortRange(rng)
	if err != nil {
		t.Fatal(err)
	}
	return NewPortAllocator(s, DefaultPrefix, r, testOptions())
}

func TestClusterIPExplicit(t *testing.T) {
	ctx := context.Background()
	a := newIPAlloc(t, NewMemStore(), "10.0.0.0/24")
	ip := net.ParseIP("10.0.0.5")
	if err := a.Allocate(ctx, svcA, ip); err != nil {
		t.Fatal(err)
	}
	err := a.Allocate(ctx, svcB, ip)
	if !errors.Is(err, ErrAllocated) || err.Error() != "provided IP is already allocated" {
		t.Fatalf("second Allocate = %v, want ErrAllocated", err)
	}
	// Allocating again for the same owner is also a conflict: a
	// Reservation must only revert what it created.
	if err := a.Allocate(ctx, svcA, ip); !errors.Is(err, ErrAllocated) {
		t.Fatalf("same-owner Allocate = %v, want ErrAllocated", err)
	}
	if o, ok, err := a.Owner(ctx, ip); err != nil || !ok || o != svcA {
		t.Fatalf("Owner = %v,%v,%v, want %v", o, ok, err, svcA)
	}
	if err := a.Release(ctx, ip); err != nil {
		t.Fatal(err)
	}
	if has, _ := a.Has(ctx, ip); has {
		t.Fatal("Has after Release = true")
	}
	if err := a.Allocate(ctx, svcB, ip); err != nil {
		t.Fatalf("re-Allocate after Release: %v", err)
	}
	err = a.Allocate(ctx, svcA, net.ParseIP("10.0.171.239"))
	want := "the provided IP (10.0.171.239) is not in the valid range. The range of valid IPs is 10.0.0.0/24"
	if !errors.Is(err, ErrNotInRange) || err.Error() != want {
		t.Fatalf("out-of-range Allocate = %v, want %q", err, want)
	}
	// The reserved offsets are allocatable explicitly.
	for _, n := range []int{KubernetesServiceOffset, DNSServiceOffset} {
		if err := a.Allocate(ctx, svcA, a.Range().ReservedIP(n)); err != nil {
			t.Fatalf("Allocate(ReservedIP(%d)): %v", n, err)
		}
	}
}

func TestClusterIPExhaustSlash29(t *testing.T) {
	ctx := context.Background()
	a := newIPAlloc(t, NewMemStore(), "10.0.0.0/29")
	seen := map[string]bool{}
	for i := 0; i < 5; i++ { // .2-.6: .1 is reserved for the kubernetes service
		ip, err := a.AllocateNext(ctx, svcA)
		if err != nil {
			t.Fatalf("AllocateNext #%d: %v", i, err)
		}
		if seen[ip.String()] || ip.String() == "10.0.0.1" {
			t.Fatalf("AllocateNext returned %s twice or reserved", ip)
		}
		seen[ip.String()] = true
	}
	if _, err := a.AllocateNext(ctx, svcA); !errors.Is(err, ErrFull) || err.Error() != "range is full" {
		t.Fatalf("AllocateNext on full range = %v, want ErrFull", err)
	}
	if err := a.Allocate(ctx, svcB, net.ParseIP("10.0.0.1")); err != nil {
		t.Fatalf("explicit .1 on full range: %v", err)
	}
	if err := a.Release(ctx, net.ParseIP("10.0.0.4")); err != nil {
		t.Fatal(err)
	}
	ip, err := a.AllocateNext(ctx, svcB)
	if err != nil || ip.String() != "10.0.0.4" {
		t.Fatalf("AllocateNext after release = %v,%v, want 10.0.0.4", ip, err)
	}
}

func TestStaleLocalViewNeverDuplicates(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	a := newIPAlloc(t, s, "10.0.0.0/29")
	b := newIPAlloc(t, s, "10.0.0.0/29")
	// b loads its view while the range is empty...
	first, err := b.AllocateNext(ctx, svcB)
	if err != nil {
		t.Fatal(err)
	}
	// ...then a takes the rest behind its back.
	for i := 0; i < 4; i++ {
		if _, err := a.AllocateNext(ctx, svcA); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.AllocateNext(ctx, svcB); !errors.Is(err, ErrFull) {
		t.Fatalf("b.AllocateNext = %v, want ErrFull", err)
	}
	// A value freed elsewhere is found by the re-list on "full".
	if err := a.Release(ctx, first); err != nil {
		t.Fatal(err)
	}
	if ip, err := b.AllocateNext(ctx, svcB); err != nil || !ip.Equal(first) {
		t.Fatalf("b.AllocateNext = %v,%v, want %s", ip, err, first)
	}
	if got := len(s.Keys()); got != 5 {
		t.Fatalf("store holds %d keys, want 5", got)
	}
}

func TestRunFollowsStore(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := NewMemStore()
	a := newIPAlloc(t, s, "10.0.0.0/24")
	b := newIPAlloc(t, s, "10.0.0.0/24")
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	for i := 0; i < 3; i++ {
		if _, err := a.AllocateNext(ctx, svcA); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return b.Used() == 3 })
	if err := a.Release(ctx, a.Range().ReservedIP(1)); err != nil { // not allocated: no-op
		t.Fatal(err)
	}
	ip, _ := a.AllocateNext(ctx, svcA)
	_ = a.Release(ctx, ip)
	waitFor(t, func() bool { return b.Used() == 3 })
	cancel()
	<-done
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestIPAddressStoredAsAPIServerWouldWriteIt(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	a := newIPAlloc(t, s, "10.0.0.0/24")
	if err := a.Allocate(ctx, Owner{Namespace: "default", Name: "svc"}, net.ParseIP("10.0.0.5")); err != nil {
		t.Fatal(err)
	}
	e, ok, _ := s.Get(ctx, "/registry/networking.k8s.io/ipaddresses/10.0.0.5")
	if !ok {
		t.Fatalf("no key /registry/networking.k8s.io/ipaddresses/10.0.0.5; keys: %v", s.Keys())
	}
	scheme := runtime.NewScheme()
	_ = networkingv1.AddToScheme(scheme)
	obj, gvk, err := serializer.NewCodecFactory(scheme).UniversalDeserializer().Decode(e.Value, nil, nil)
	if err != nil {
		t.Fatalf("API server codec cannot decode %s: %v", e.Value, err)
	}
	if gvk.String() != "networking.k8s.io/v1, Kind=IPAddress" {
		t.Fatalf("gvk = %v", gvk)
	}
	ipa := obj.(*networkingv1.IPAddress)
	if ipa.UID == "" {
		t.Fatal("no uid")
	}
	want := `{"kind":"IPAddress","apiVersion":"networking.k8s.io/v1","metadata":{"name":"10.0.0.5","uid":"` + string(ipa.UID) +
		`","creationTimestamp":"2026-03-01T12:00:00Z","labels":{"ipaddress.kubernetes.io/ip-family":"IPv4","ipaddress.kubernetes.io/managed-by":"ipallocator.k8s.io"}},` +
		`"spec":{"parentRef":{"resource":"services","namespace":"default","name":"svc"}}}` + "\n"
	if string(e.Value) != want {
		t.Fatalf("stored value\n got %s\nwant %s", e.Value, want)
	}

	a6 := newIPAlloc(t, s, "fd00::/112")
	ip, err := a6.AllocateNext(ctx, svcA)
	if err != nil {
		t.Fatal(err)
	}
	e, ok, _ = s.Get(ctx, "/registry/networking.k8s.io/ipaddresses/"+ip.String())
	if !ok || !strings.Contains(string(e.Value), `"ipaddress.kubernetes.io/ip-family":"IPv6"`) {
		t.Fatalf("IPv6 value %s (found %v)", e.Value, ok)
	}
	// Each allocator sees only its own family in the shared key space.
	if a.Used() != 1 {
		t.Fatalf("IPv4 allocator tracks %d IPs, want 1", a.Used())
	}
}

func TestPortAllocator(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	a := newPortAlloc(t, s, "30000-30004")
	if err := a.Allocate(ctx, svcA, 30002); err != nil {
		t.Fatal(err)
	}
	err := a.Allocate(ctx, svcB, 30002)
	if !errors.Is(err, ErrAllocated) || err.Error() != "provided port is already allocated" {
		t.Fatalf("conflicting Allocate = %v", err)
	}
	err = a.Allocate(ctx, svcB, 32768)
	if !errors.Is(err, ErrNotInRange) || err.Error() != "provided port is not in the valid range. The range of valid ports is 30000-30004" {
		t.Fatalf("out-of-range Allocate = %v", err)
	}
	for i := 0; i < 4; i++ {
		if _, err := a.AllocateNext(ctx, svcB); err != nil {
			t.Fatalf("AllocateNext #%d: %v", i, err)
		}
	}
	if _, err := a.AllocateNext(ctx, svcB); !errors.Is(err, ErrFull) {
		t.Fatalf("AllocateNext on full = %v", err)
	}
	e, _, _ := s.Get(ctx, "/registry/portal.dev/nodeports/30002")
	if got, want := string(e.Value), `{"namespace":"default","name":"a","created":"2026-03-01T12:00:00Z"}`; got != want {
		t.Fatalf("stored %s, want %s", got, want)
	}
	// ReleaseIfOwner leaves other owners' ports alone.
	if err := a.ReleaseIfOwner(ctx, svcB, 30002); err != nil {
		t.Fatal(err)
	}
	if has, _ := a.Has(ctx, 30002); !has {
		t.Fatal("ReleaseIfOwner released another owner's port")
	}
	if err := a.ReleaseIfOwner(ctx, svcA, 30002); err != nil {
		t.Fatal(err)
	}
	if has, _ := a.Has(ctx, 30002); has {
		t.Fatal("ReleaseIfOwner kept the owner's port")
	}
}

func TestReservation(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	allocs := &Allocators{
		ClusterIPs: []*ClusterIPAllocator{newIPAlloc(t, s, "10.0.0.0/24"), newIPAlloc(t, s, "fd00::/112")},
		NodePorts:  newPortAlloc(t, s, "30000-32767"),
	}
	if err := allocs.NodePorts.Allocate(ctx, svcB, 30080); err != nil {
		t.Fatal(err)
	}

	// A failed create gives everything back.
	r := allocs.Begin(svcA)
	if _, err := r.AllocateNextIP(ctx, "IPv4"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.AllocateNextIP(ctx, "IPv6"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.AllocateNextPort(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.AllocatePort(ctx, 30080); !errors.Is(err, ErrAllocated) {
		t.Fatalf("AllocatePort(30080) = %v, want ErrAllocated", err)
	}
	if err := r.Revert(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.Keys(); len(got) != 1 || got[0] != "/registry/portal.dev/nodeports/30080" {
		t.Fatalf("after Revert keys = %v, want only svcB's port", got)
	}
	if _, err := r.AllocateNextPort(ctx); err == nil {
		t.Fatal("AllocateNextPort after Revert succeeded")
	}

	// A successful update keeps new values and frees given-up ones only
	// on Commit, and only if the owner still holds them.
	r = allocs.Begin(svcA)
	if err := r.AllocateIP(ctx, net.ParseIP("10.0.0.20")); err != nil {
		t.Fatal(err)
	}
	if err := r.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r = allocs.Begin(svcA)
	r.ReleaseIPOnCommit(net.ParseIP("10.0.0.20"))
	r.ReleasePortOnCommit(30080) // held by svcB: must survive
	if err := r.AllocatePort(ctx, 30081); err != nil {
		t.Fatal(err)
	}
	if has, _ := allocs.ClusterIPs[0].Has(ctx, net.ParseIP("10.0.0.20")); !has {
		t.Fatal("deferred release happened before Commit")
	}
	if err := r.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Revert(ctx); err != nil { // no-op after Commit
		t.Fatal(err)
	}
	want := []string{"/registry/portal.dev/nodeports/30080", "/registry/portal.dev/nodeports/30081"}
	if got := s.Keys(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("after Commit keys = %v, want %v", got, want)
	}
	err := allocs.Begin(svcA).AllocateIP(ctx, net.ParseIP("192.168.0.1"))
	if !errors.Is(err, ErrNotInRange) {
		t.Fatalf("AllocateIP out of every range = %v", err)
	}
}

func TestOlderListingDoesNotOverwriteNewerView(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	a := newIPAlloc(t, s, "10.0.0.0/24")
	if _, err := a.c.sync(ctx); err != nil {
		t.Fatal(err)
	}
	// The view has (say) followed a watch past the store's listing.
	a.c.mu.Lock()
	a.c.rev = 1000
	a.c.taken[42] = struct{}{}
	a.c.mu.Unlock()
	if _, err := a.c.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Used() != 1 {
		t.Fatalf("an older listing replaced a newer view (Used = %d)", a.Used())
	}
}

func TestLostRacesTriggerRelist(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	a := newIPAlloc(t, s, "10.0.0.0/24")
	b := newIPAlloc(t, s, "10.0.0.0/24")
	if _, err := b.AllocateNext(ctx, svcB); err != nil { // b's view loads here
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if _, err := a.AllocateNext(ctx, svcA); err != nil {
			t.Fatal(err)
		}
	}
	// b's view misses 200 of 252 values; with at most 8 blind probes per
	// listing it must still find one of the free ones well within its
	// attempt budget.
	b.c.opts.MaxAttempts = 20
	if _, err := b.AllocateNext(ctx, svcB); err != nil {
		t.Fatalf("b.AllocateNext with a stale view: %v", err)
	}
}
