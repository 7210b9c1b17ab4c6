package members

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portal-net/portal/internal/testutil/netnstest"
)

// The network tests run only inside the namespace netnstest.Main makes,
// with three "nodes" on loopback addresses; nothing leaves lo.
var loAddrs = map[string]netip.Addr{
	"a": netip.MustParseAddr("127.0.0.1"),
	"b": netip.MustParseAddr("127.0.0.2"),
	"c": netip.MustParseAddr("127.0.0.3"),
}

// Fast timing for most tests; the crash test uses the defaults.
const (
	fastInterval  = 50 * time.Millisecond
	fastDeadAfter = 300 * time.Millisecond
)

// Each test gets its own port so late packets of one cannot reach the next.
var lastPort atomic.Int32

func init() { lastPort.Store(17400) }

type testNode struct {
	*Members
	cancel context.CancelFunc
	done   chan error
}

// stop ends Run, gracefully or (crash) without the leaving heartbeat, and
// waits for it.
func (n *testNode) stop(t *testing.T, crash bool) {
	t.Helper()
	n.skipLeave.Store(crash)
	n.cancel()
	if err := <-n.done; err != nil {
		t.Errorf("Run: %v", err)
	}
	n.done <- nil // for the cleanup's wait
}

type cluster struct {
	port  int
	nodes map[string]*testNode
}

func newCluster(t *testing.T, interval, deadAfter time.Duration, keys map[string][]byte) *cluster {
	t.Helper()
	netnstest.Require(t)
	c := &cluster{port: int(lastPort.Add(1)), nodes: map[string]*testNode{}}
	for name, addr := range loAddrs {
		m, err := New(Config{
			Self: name, Bind: addr, Port: c.port,
			Interval: interval, DeadAfter: deadAfter, Key: keys[name],
		})
		if err != nil {
			t.Fatal(err)
		}
		m.SetPeers(loAddrs)
		c.nodes[name] = &testNode{Members: m}
	}
	return c
}

// allLive starts a cluster of three ready members and waits until each
// sees all three, with no change signal pending.
func allLive(t *testing.T, interval, deadAfter time.Duration) *cluster {
	t.Helper()
	c := newCluster(t, interval, deadAfter, nil)
	for _, n := range c.nodes {
		n.SetReady(true)
	}
	c.start(t, "a", "b", "c")
	for name, n := range c.nodes {
		waitFor(t, 2*deadAfter, name+" to see all three", liveIs(n.Members, "a", "b", "c"))
	}
	for _, n := range c.nodes {
		for len(n.Changes()) > 0 {
			<-n.Changes()
		}
	}
	return c
}

func (c *cluster) start(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		n := c.nodes[name]
		ctx, cancel := context.WithCancel(context.Background())
		n.cancel, n.done = cancel, make(chan error, 1)
		go func() { n.done <- n.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-n.done })
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func liveIs(m *Members, want ...string) func() bool {
	return func() bool { return slices.Equal(m.Live(), want) }
}

// waitDead waits, on Changes only, until m no longer counts name; the
// signal must come from m's own expiry timer or a received packet.
func waitDead(t *testing.T, m *Members, name string, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case <-m.Changes():
			if !m.Alive(name) {
				return time.Now()
			}
		case <-deadline:
			t.Fatalf("%s still sees %s live after %v", m.self, name, timeout)
		}
	}
}

func TestNetThreeMembersLive(t *testing.T) {
	c := allLive(t, fastInterval, fastDeadAfter)
	for name, n := range c.nodes {
		s := n.Stats()
		if s.Sent == 0 || s.Received == 0 || s.Dropped() != 0 || s.SendErrors != 0 {
			t.Errorf("%s: stats %+v", name, s)
		}
	}
}

func TestNetNotReadyPeer(t *testing.T) {
	c := newCluster(t, fastInterval, fastDeadAfter, nil)
	c.nodes["a"].SetReady(true)
	c.nodes["b"].SetReady(true)
	c.start(t, "a", "b", "c")
	for name, n := range c.nodes {
		waitFor(t, 2*fastDeadAfter, name+" to see a and b", liveIs(n.Members, "a", "b"))
	}
	// c is heard but not counted, and keeps not being counted.
	time.Sleep(2 * fastInterval)
	if got := c.nodes["a"].Live(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("a sees %v with c not ready", got)
	}
	start := time.Now()
	c.nodes["c"].SetReady(true)
	waitFor(t, fastInterval, "a to see c once ready", liveIs(c.nodes["a"].Members, "a", "b", "c"))
	t.Logf("c counted by a %v after SetReady(true)", time.Since(start))
}

func TestNetSelfWarmUp(t *testing.T) {
	c := newCluster(t, fastInterval, fastDeadAfter, nil)
	for _, n := range c.nodes {
		n.SetReady(true)
	}
	c.start(t, "a", "b")
	waitFor(t, 2*fastDeadAfter, "a and b live", liveIs(c.nodes["a"].Members, "a", "b"))

	cn := c.nodes["c"]
	start := time.Now()
	c.start(t, "c")
	waitFor(t, fastDeadAfter, "c to hear a and b", func() bool { return cn.Alive("a") && cn.Alive("b") })
	if cn.Alive("c") {
		t.Fatal("c counts itself before its warm-up ended")
	}
	if c.nodes["a"].Alive("c") {
		t.Fatal("a counts c, which is warming up")
	}
	waitFor(t, 2*fastDeadAfter, "c to count itself", func() bool { return cn.Alive("c") })
	if d := time.Since(start); d < fastDeadAfter {
		t.Fatalf("c counted itself %v after start, before the %v warm-up", d, fastDeadAfter)
	}
	waitFor(t, 2*fastInterval, "a to count c", liveIs(c.nodes["a"].Members, "a", "b", "c"))
	t.Logf("c live %v after start (warm-up %v)", time.Since(start), fastDeadAfter)

	// Not ready: never counted, warm-up or not.
	cn.SetReady(false)
	if cn.Alive("c") {
		t.Fatal("c counts itself after SetReady(false)")
	}
}

func TestNetCrashDetection(t *testing.T) {
	// Default timing: this is the failover time a cluster gets.
	c := allLive(t, DefaultInterval, DefaultDeadAfter)
	c.nodes["c"].stop(t, true)
	crashed := time.Now()
	for _, name := range []string{"a", "b"} {
		detected := waitDead(t, c.nodes[name].Members, "c", DefaultDeadAfter+2*DefaultInterval)
		d := detected.Sub(crashed)
		t.Logf("%s noticed the crash of c after %v (DeadAfter %v, Interval %v)", name, d, DefaultDeadAfter, DefaultInterval)
		// c's last heartbeat left about one Interval or less before the
		// crash (more if c stalled); a leaving packet would take ~1ms.
		if d < DefaultDeadAfter-2*DefaultInterval {
			t.Errorf("%s: c dead after %v, too early for an expiry", name, d)
		}
		if got := c.nodes[name].Live(); !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("%s: live %v after c's crash", name, got)
		}
	}
}

func TestNetGracefulLeave(t *testing.T) {
	c := allLive(t, DefaultInterval, DefaultDeadAfter)
	start := time.Now()
	c.nodes["c"].stop(t, false)
	for _, name := range []string{"a", "b"} {
		d := waitDead(t, c.nodes[name].Members, "c", 100*time.Millisecond).Sub(start)
		t.Logf("%s dropped c %v after it began to stop", name, d)
	}
	if got := c.nodes["c"].Live(); len(got) != 0 {
		t.Errorf("stopped c still reports live members %v", got)
	}
}

func TestNetSpoofedDropped(t *testing.T) {
	c := newCluster(t, fastInterval, fastDeadAfter, nil)
	a := c.nodes["a"]
	a.SetReady(true)
	c.start(t, "a")
	// b and c never run; free their addresses for the impostor.
	c.nodes["b"].conn.Close()
	c.nodes["c"].conn.Close()

	// A stranger on b's address (another port) and on c's address.
	send := func(from netip.AddrPort, hb heartbeat) {
		t.Helper()
		conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(from))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		b, err := encode(hb, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.WriteToUDPAddrPort(b, netip.AddrPortFrom(loAddrs["a"], uint16(c.port))); err != nil {
			t.Fatal(err)
		}
	}
	hbC := heartbeat{Name: "c", Incarnation: 1, Seq: 1, Ready: true}
	send(netip.AddrPortFrom(loAddrs["b"], uint16(c.port)), hbC)   // c's name from b's address
	send(netip.AddrPortFrom(loAddrs["c"], uint16(c.port+1)), hbC) // c's address, wrong port
	send(netip.AddrPortFrom(loAddrs["c"], uint16(c.port)), heartbeat{Name: "mallory", Incarnation: 1, Seq: 1, Ready: true})
	waitFor(t, time.Second, "drops to be counted", func() bool { return a.Stats().Dropped() == 3 })
	s := a.Stats()
	if s.AddrMismatch != 2 || s.UnknownSender != 1 || s.Received != 0 {
		t.Errorf("stats %+v", s)
	}
	if a.Alive("c") || a.Alive("mallory") {
		t.Error("spoofed heartbeats counted")
	}
	// The real c, from its own address and port, is accepted.
	send(netip.AddrPortFrom(loAddrs["c"], uint16(c.port)), hbC)
	waitFor(t, time.Second, "a to accept c", func() bool { return a.Alive("c") })
}

func TestNetHMACMismatch(t *testing.T) {
	key := []byte("cluster-key-0123456789")
	c := newCluster(t, fastInterval, fastDeadAfter, map[string][]byte{
		"a": key, "b": key, "c": []byte("some-other-key-012345"),
	})
	for _, n := range c.nodes {
		n.SetReady(true)
	}
	c.start(t, "a", "b", "c")
	waitFor(t, 2*fastDeadAfter, "a to see b", liveIs(c.nodes["a"].Members, "a", "b"))
	waitFor(t, 2*fastDeadAfter, "c alone", liveIs(c.nodes["c"].Members, "c"))
	time.Sleep(2 * fastInterval)
	for name, n := range c.nodes {
		s := n.Stats()
		if s.BadMAC == 0 || s.Dropped() != s.BadMAC {
			t.Errorf("%s: stats %+v, want only bad-MAC drops", name, s)
		}
	}
	if c.nodes["a"].Alive("c") || c.nodes["b"].Alive("c") {
		t.Error("c counted with the wrong key")
	}
}

func TestNetChanges(t *testing.T) {
	c := newCluster(t, fastInterval, fastDeadAfter, nil)
	a, b := c.nodes["a"], c.nodes["b"]
	a.SetReady(true)
	b.SetReady(true)
	c.start(t, "a", "b")
	// Only signals drive this loop: Live is read after each one.
	var seen [][]string
	timeout := time.After(3 * fastDeadAfter)
	for !slices.Equal(a.Live(), []string{"a", "b"}) {
		select {
		case <-a.Changes():
			seen = append(seen, a.Live())
		case <-timeout:
			t.Fatalf("no signal for a, b live; saw %v", seen)
		}
	}
	t.Logf("a saw %v", seen)
	for len(a.Changes()) > 0 {
		<-a.Changes()
	}
	start := time.Now()
	b.SetReady(false) // sent at once, not at the next Interval
	select {
	case <-a.Changes():
		if got := a.Live(); !slices.Equal(got, []string{"a"}) {
			t.Fatalf("after b unready, a sees %v", got)
		}
		t.Logf("b's SetReady(false) reached a in %v", time.Since(start))
	case <-time.After(fastInterval / 2):
		t.Fatal("no change signalled within half an Interval of b going unready")
	}
}

func TestNetSetPeersRemoves(t *testing.T) {
	c := allLive(t, fastInterval, fastDeadAfter)
	a := c.nodes["a"]
	for len(a.Changes()) > 0 {
		<-a.Changes()
	}
	a.SetPeers(map[string]netip.Addr{"a": loAddrs["a"], "b": loAddrs["b"]})
	select {
	case <-a.Changes():
	default:
		t.Fatal("removing a live peer signalled no change")
	}
	if got := a.Live(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("a sees %v after forgetting c", got)
	}
	before := a.Stats().UnknownSender
	waitFor(t, 2*fastInterval, "c's heartbeats to be dropped", func() bool { return a.Stats().UnknownSender > before })
	// a no longer sends to c, so c expires a.
	waitFor(t, 2*fastDeadAfter, "c to expire a", liveIs(c.nodes["c"].Members, "b", "c"))
}
