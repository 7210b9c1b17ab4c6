package members

import (
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portal-net/portal/internal/testutil/netnstest"
)

func TestMain(m *testing.M) { netnstest.Main(m) }

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// These unit tests never open a socket; the addresses are only compared.
var (
	addrB = netip.MustParseAddr("192.0.2.2")
	addrC = netip.MustParseAddr("192.0.2.3")
	fromB = netip.AddrPortFrom(addrB, DefaultPort)
	fromC = netip.AddrPortFrom(addrC, DefaultPort)
)

// newUnit returns member "a" (Interval 200ms, DeadAfter 1s) knowing b
// and c, without a socket.
func newUnit(t *testing.T, clk *fakeClock, key []byte) *Members {
	t.Helper()
	m, err := newMembers(Config{
		Self: "a", Bind: netip.MustParseAddr("192.0.2.1"), Key: key, Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	m.SetPeers(map[string]netip.Addr{"a": netip.MustParseAddr("192.0.2.1"), "b": addrB, "c": addrC})
	return m
}

func feed(t *testing.T, m *Members, from netip.AddrPort, hb heartbeat, key []byte) {
	t.Helper()
	b, err := encode(hb, key)
	if err != nil {
		t.Fatal(err)
	}
	m.receive(b, from)
}

func drain(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestConfigValidation(t *testing.T) {
	ok := Config{Self: "a", Bind: netip.MustParseAddr("192.0.2.1")}
	m, err := newMembers(ok)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if m.port != DefaultPort || m.interval != DefaultInterval || m.deadAfter != DefaultDeadAfter {
		t.Errorf("defaults: port %d interval %v deadAfter %v", m.port, m.interval, m.deadAfter)
	}
	for name, mutate := range map[string]func(c *Config){
		"no self":           func(c *Config) { c.Self = "" },
		"no bind":           func(c *Config) { c.Bind = netip.Addr{} },
		"wildcard v4":       func(c *Config) { c.Bind = netip.IPv4Unspecified() },
		"wildcard v6":       func(c *Config) { c.Bind = netip.IPv6Unspecified() },
		"multicast":         func(c *Config) { c.Bind = netip.MustParseAddr("224.0.0.1") },
		"port":              func(c *Config) { c.Port = 70000 },
		"negative interval": func(c *Config) { c.Interval = -time.Second },
		"DeadAfter = 2*Interval": func(c *Config) {
			c.Interval, c.DeadAfter = 500*time.Millisecond, time.Second
		},
		"short key": func(c *Config) { c.Key = []byte("short") },
	} {
		c := ok
		mutate(&c)
		if _, err := newMembers(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSelfLiveness(t *testing.T) {
	clk := newFakeClock()
	m := newUnit(t, clk, nil)
	m.SetReady(true)
	if m.Alive("a") || slices.Contains(m.Live(), "a") {
		t.Fatal("self live before Run")
	}
	m.begin(clk.Now())
	clk.Advance(999 * time.Millisecond)
	if m.Alive("a") {
		t.Fatal("self live during warm-up")
	}
	clk.Advance(time.Millisecond)
	if !m.Alive("a") || !slices.Equal(m.Live(), []string{"a"}) {
		t.Fatalf("self not live after warm-up: %v", m.Live())
	}
	m.SetReady(false)
	if m.Alive("a") {
		t.Fatal("self live after SetReady(false)")
	}
	m.SetReady(true)
	if !m.Alive("a") {
		t.Fatal("self not live again after SetReady(true)")
	}
	m.end()
	if m.Alive("a") {
		t.Fatal("self live after Run ended")
	}
}

func TestPeerLiveness(t *testing.T) {
	clk := newFakeClock()
	m := newUnit(t, clk, nil)
	m.begin(clk.Now())
	if m.Alive("b") || m.Alive("nobody") {
		t.Fatal("never heard peer is live")
	}
	feed(t, m, fromB, heartbeat{Name: "b", Incarnation: 1, Seq: 1, Ready: false}, nil)
	if m.Alive("b") {
		t.Fatal("peer live though its heartbeat said not ready")
	}
	feed(t, m, fromB, heartbeat{Name: "b", Incarnation: 1, Seq: 2, Ready: true}, nil)
	if !m.Alive("b") {
		t.Fatal("ready peer not live")
	}
	clk.Advance(999 * time.Millisecond)
	if !m.Alive("b") {
		t.Fatal("peer dead before DeadAfter")
	}
	clk.Advance(time.Millisecond)
	if m.Alive("b") {
		t.Fatal("peer live DeadAfter after its last heartbeat")
	}
	feed(t, m, fromB, heartbeat{Name: "b", Incarnation: 1, Seq: 3, Ready: true}, nil)
	if !m.Alive("b") {
		t.Fatal("peer not live again after a new heartbeat")
	}
	feed(t, m, fromB, heartbeat{Name: "b", Incarnation: 1, Seq: 4, Leaving: true}, nil)
	if m.Alive("b") {
		t.Fatal("peer live after its leaving heartbeat")
	}
	if got := m.Stats().Received; got != 4 {
		t.Errorf("Received %d, want 4", got)
	}
}

func TestStaleAndIncarnation(t *testing.T) {
	clk := newFakeClock()
	m := newUnit(t, clk, nil)
	feed(t, m, fromB, heartbeat{Name: "b", Incarnation: 10, Seq: 5, Ready: true}, nil)
	// A reordered older packet must not undo a later "not ready".
	feed(t, m, fromB, heartbeat{Name: "b", Incarnation: 10, Seq: 6, Ready: false}, nil)
	feed(t, m, fromB, heartbeat{Name: "b", Incarnation: 10, Seq: 4, Ready: true}, nil)
	feed(t, m, fromB, heartbeat{Name: "b", Incarnation: 10, Seq: 6, Ready: true}, nil)
	if m.Alive("b") {
		t.Fatal("stale packet made the peer live")
	}
	if got := m.Stats().Stale; got != 2 {
		t.Errorf("Stale %d, want 2", got)
	}
	// A restarted process starts its sequence afresh.
	feed(t, m, fromB, heartbeat{Name: "b", Incarnation: 11, Seq: 1, Ready: true}, nil)
	if !m.Alive("b") {
		t.Fatal("higher incarnation not accepted")
	}
	// Leftovers of the old process are ignored while the new one lives...
	feed(t, m, fromB, heartbeat{Name: "b", Incarnation: 10, Seq: 7, Leaving: true}, nil)
	if !m.Alive("b") || m.Stats().Stale != 3 {
		t.Fatalf("old incarnation accepted: alive %v, stats %+v", m.Alive("b"), m.Stats())
	}
	// ...but once it expired, a lower incarnation (clock stepped back
	// across a restart) is taken.
	clk.Advance(time.Second)
	feed(t, m, fromB, heartbeat{Name: "b", Incarnation: 3, Seq: 1, Ready: true}, nil)
	if !m.Alive("b") {
		t.Fatal("lower incarnation not accepted after expiry")
	}
}

func TestReceiveDropsSpoofed(t *testing.T) {
	clk := newFakeClock()
	m := newUnit(t, clk, testKey)
	hb := heartbeat{Name: "b", Incarnation: 1, Seq: 1, Ready: true}
	feed(t, m, fromC, hb, testKey)                                    // b's name from c's address
	feed(t, m, netip.AddrPortFrom(addrB, DefaultPort+1), hb, testKey) // right address, other port
	feed(t, m, fromB, heartbeat{Name: "z", Incarnation: 1, Seq: 1, Ready: true}, testKey)
	feed(t, m, fromB, hb, nil)                                 // no MAC
	feed(t, m, fromB, hb, []byte("some-other-key-0123456789")) // wrong key
	m.receive([]byte("garbage"), fromB)
	want := Stats{AddrMismatch: 2, UnknownSender: 1, BadMAC: 2, Malformed: 1}
	if got := m.Stats(); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
	if got := m.Stats().Dropped(); got != 6 {
		t.Errorf("Dropped %d, want 6", got)
	}
	if m.Alive("b") {
		t.Fatal("spoofed heartbeats made b live")
	}
	feed(t, m, fromB, hb, testKey)
	if !m.Alive("b") {
		t.Fatal("genuine heartbeat rejected")
	}
}

func TestSetPeersForgets(t *testing.T) {
	clk := newFakeClock()
	m := newUnit(t, clk, nil)
	feed(t, m, fromB, heartbeat{Name: "b", Incarnation: 1, Seq: 5, Ready: true}, nil)
	feed(t, m, fromC, heartbeat{Name: "c", Incarnation: 1, Seq: 5, Ready: true}, nil)
	if got := m.Live(); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("live %v", got)
	}
	m.SetPeers(map[string]netip.Addr{"c": addrC})
	if got := m.Live(); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("live %v after removing b", got)
	}
	feed(t, m, fromB, heartbeat{Name: "b", Incarnation: 1, Seq: 6, Ready: true}, nil)
	if m.Alive("b") || m.Stats().UnknownSender != 1 {
		t.Fatal("removed peer still accepted")
	}
	// Re-added, it starts from nothing: an old sequence is fine again.
	m.SetPeers(map[string]netip.Addr{"b": addrB, "c": addrC})
	if m.Alive("b") {
		t.Fatal("re-added peer live before it was heard")
	}
	feed(t, m, fromB, heartbeat{Name: "b", Incarnation: 1, Seq: 1, Ready: true}, nil)
	if !m.Alive("b") {
		t.Fatal("re-added peer not accepted")
	}
	// A new address is a new peer, heard from nowhere yet.
	m.SetPeers(map[string]netip.Addr{"b": netip.MustParseAddr("192.0.2.22"), "c": addrC})
	if m.Alive("b") {
		t.Fatal("peer with a changed address kept its state")
	}
}

func TestChangesCoalesced(t *testing.T) {
	clk := newFakeClock()
	m := newUnit(t, clk, nil)
	ch := m.Changes()
	drain(ch)
	feed(t, m, fromB, heartbeat{Name: "b", Incarnation: 1, Seq: 1, Ready: true}, nil)
	feed(t, m, fromC, heartbeat{Name: "c", Incarnation: 1, Seq: 1, Ready: true}, nil)
	if !drain(ch) {
		t.Fatal("no change signalled")
	}
	if drain(ch) {
		t.Fatal("two changes not coalesced into one signal")
	}
	feed(t, m, fromB, heartbeat{Name: "b", Incarnation: 1, Seq: 2, Ready: true}, nil)
	if drain(ch) {
		t.Fatal("signal without a change of the live set")
	}
	clk.Advance(time.Second)
	m.Live()
	if !drain(ch) {
		t.Fatal("expiry not signalled")
	}
}

func TestNextDeadline(t *testing.T) {
	clk := newFakeClock()
	m := newUnit(t, clk, nil)
	m.SetReady(true)
	start := clk.Now()
	m.begin(start)
	clk.Advance(300 * time.Millisecond)
	feed(t, m, fromB, heartbeat{Name: "b", Incarnation: 1, Seq: 1, Ready: true}, nil)
	m.mu.Lock()
	got := m.nextDeadlineLocked(clk.Now())
	m.mu.Unlock()
	if want := start.Add(time.Second); !got.Equal(want) {
		t.Errorf("next deadline %v, want the end of warm-up %v", got, want)
	}
	clk.Advance(time.Second)
	feed(t, m, fromB, heartbeat{Name: "b", Incarnation: 1, Seq: 2, Ready: true}, nil)
	m.mu.Lock()
	got = m.nextDeadlineLocked(clk.Now())
	m.mu.Unlock()
	if want := clk.Now().Add(time.Second); !got.Equal(want) {
		t.Errorf("next deadline %v, want b's expiry %v", got, want)
	}
}
