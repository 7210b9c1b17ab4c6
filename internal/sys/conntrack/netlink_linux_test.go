package conntrack

import (
	"bytes"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/portal-net/portal/internal/testutil/netnstest"
)

const testTable = "portal_conntrack_test"

// ctLab is a network namespace with service, node and pod addresses on
// loopback, nft rules that DNAT service traffic the way the proxy would,
// UDP listeners standing in for pods and clients on fixed source ports.
type ctLab struct {
	t       *testing.T
	pods    map[string]*net.UDPConn // by "ip:port"
	clients map[uint16]*net.UDPConn // by source port
}

func newCTLab(t *testing.T) *ctLab {
	t.Helper()
	netnstest.Require(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed")
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.96.0.10/32", "10.96.0.11/32", "10.0.0.1/32", "10.244.0.2/32", "10.244.0.3/32", "10.244.0.4/32"} {
		addr, _ := netlink.ParseAddr(a)
		if err := netlink.AddrAdd(lo, addr); err != nil {
			t.Fatalf("add %s: %v", a, err)
		}
		t.Cleanup(func() {
			if err := netlink.AddrDel(lo, addr); err != nil {
				t.Errorf("remove %s: %v", a, err)
			}
		})
	}
	// The namespace belongs to this test binary, so its table can be
	// emptied: flows left by an earlier run (-count) would pin clients.
	flush := func() {
		if err := netlink.ConntrackTableFlush(netlink.ConntrackTable); err != nil {
			t.Errorf("flush conntrack: %v", err)
		}
	}
	flush()
	t.Cleanup(flush)
	l := &ctLab{t: t, pods: map[string]*net.UDPConn{}, clients: map[uint16]*net.UDPConn{}}
	// The filter chain makes conntrack track every flow, NATed or not.
	l.nft(`table ip ` + testTable + ` {
		chain out { type filter hook output priority 0; policy accept; ct state new counter; }
		chain nat { type nat hook output priority -100; policy accept; }
	}`)
	t.Cleanup(func() {
		if out, err := exec.Command("nft", "delete", "table", "ip", testTable).CombinedOutput(); err != nil {
			t.Errorf("nft delete table: %v: %s", err, out)
		}
	})
	for _, p := range []string{"10.244.0.2:5353", "10.244.0.3:5353", "10.244.0.4:5353"} {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(p)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		l.pods[p] = c
	}
	return l
}

// nat replaces the DNAT rules.
func (l *ctLab) nat(rules ...string) {
	l.t.Helper()
	script := "flush chain ip " + testTable + " nat\n"
	for _, r := range rules {
		script += "add rule ip " + testTable + " nat " + r + "\n"
	}
	l.nft(script)
}

func (l *ctLab) nft(script string) {
	l.t.Helper()
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("nft: %v: %s\n%s", err, out, script)
	}
}

// send sends msg from 127.0.0.1:sport to dst.
func (l *ctLab) send(sport uint16, dst, msg string) {
	l.t.Helper()
	c := l.clients[sport]
	if c == nil {
		var err error
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), sport)))
		if err != nil {
			l.t.Fatal(err)
		}
		l.t.Cleanup(func() { c.Close() })
		l.clients[sport] = c
	}
	if _, err := c.WriteToUDPAddrPort([]byte(msg), netip.MustParseAddrPort(dst)); err != nil {
		l.t.Fatalf("send %s -> %s: %v", msg, dst, err)
	}
}

// received reports whether pod got msg (skipping anything else queued).
func (l *ctLab) received(pod, msg string) bool {
	l.t.Helper()
	c := l.pods[pod]
	buf := make([]byte, 64)
	for {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := c.Read(buf)
		if err != nil {
			return false
		}
		if bytes.Equal(buf[:n], []byte(msg)) {
			return true
		}
	}
}

func sortFlows(fs []Flow) []Flow {
	slices.SortFunc(fs, func(a, b Flow) int { return int(a.OrigSrc.Port()) - int(b.OrigSrc.Port()) })
	return fs
}

func listFlows(t *testing.T) []Flow {
	t.Helper()
	fs, err := New().List()
	if err != nil {
		t.Fatal(err)
	}
	return sortFlows(fs)
}

// TestKernelClearStale drives the kernel table through the two stale
// cases and checks, by where packets land, that clearing fixes them and
// deletes nothing else.
func TestKernelClearStale(t *testing.T) {
	l := newCTLab(t)
	lh := func(p uint16) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), p) }
	svcA, svcB, nodePort := ap("10.96.0.10:53"), ap("10.96.0.11:53"), ap("10.0.0.1:30053")
	pod2, pod3, pod4 := ap("10.244.0.2:5353"), ap("10.244.0.3:5353"), ap("10.244.0.4:5353")

	// Service A has pods 2 and 3 (pinned by client port so the test is
	// deterministic), service B none yet, the node port goes to pod 3.
	l.nat(
		"ip daddr 10.96.0.10 udp dport 53 udp sport 40001 dnat to 10.244.0.2:5353",
		"ip daddr 10.96.0.10 udp dport 53 udp sport 40002 dnat to 10.244.0.3:5353",
		"ip daddr 10.0.0.1 udp dport 30053 dnat to 10.244.0.3:5353",
	)
	l.send(40001, "10.96.0.10:53", "a1")
	l.send(40002, "10.96.0.10:53", "a2")
	l.send(40003, "10.96.0.11:53", "b3") // no endpoint: black hole
	l.send(40004, "10.244.0.2:5353", "direct4")
	l.send(40005, "10.0.0.1:30053", "np5")
	for pod, msg := range map[string]string{"10.244.0.2:5353": "a1", "10.244.0.3:5353": "a2"} {
		if !l.received(pod, msg) {
			t.Fatalf("setup: %s did not receive %s", pod, msg)
		}
	}
	before := []Flow{
		NATFlow(UDP, lh(40001), svcA, pod2),
		NATFlow(UDP, lh(40002), svcA, pod3),
		NATFlow(UDP, lh(40003), svcB, svcB),
		NATFlow(UDP, lh(40004), pod2, pod2),
		NATFlow(UDP, lh(40005), nodePort, pod3),
	}
	if got := listFlows(t); !slices.Equal(got, before) {
		t.Fatalf("kernel flows before:\n%v\nwant\n%v", got, before)
	}

	// Pod 3 goes away; service B gets its first endpoint, pod 4.
	l.nat(
		"ip daddr 10.96.0.10 udp dport 53 dnat to 10.244.0.2:5353",
		"ip daddr 10.96.0.11 udp dport 53 dnat to 10.244.0.4:5353",
		"ip daddr 10.0.0.1 udp dport 30053 dnat to 10.244.0.2:5353",
	)
	// Without clearing, conntrack keeps the old decisions.
	l.send(40002, "10.96.0.10:53", "a2-stale")
	l.send(40003, "10.96.0.11:53", "b3-stale")
	if !l.received("10.244.0.3:5353", "a2-stale") {
		t.Fatal("precondition: the flow to removed pod 3 was not pinned to it")
	}
	if l.received("10.244.0.4:5353", "b3-stale") {
		t.Fatal("precondition: the black-holed flow reached pod 4 without clearing")
	}

	svcs := []Service{
		{Frontend: fe(UDP, "10.96.0.10:53"), Endpoints: []netip.AddrPort{pod2}},
		{Frontend: fe(UDP, "10.96.0.11:53"), Endpoints: []netip.AddrPort{pod4}},
		{Frontend: fe(UDP, "0.0.0.0:30053"), Endpoints: []netip.AddrPort{pod2}},
	}
	n, err := New().ClearStale(svcs)
	if err != nil {
		t.Fatalf("ClearStale: %v", err)
	}
	kept := []Flow{before[0], before[3]}
	if got := listFlows(t); n != 3 || !slices.Equal(got, kept) {
		t.Fatalf("ClearStale deleted %d, left\n%v\nwant 3 deleted, left\n%v", n, got, kept)
	}

	// The same clients now reach the current endpoints.
	l.send(40002, "10.96.0.10:53", "a2-new")
	l.send(40003, "10.96.0.11:53", "b3-new")
	l.send(40005, "10.0.0.1:30053", "np5-new")
	for pod, msg := range map[string]string{"10.244.0.2:5353": "a2-new", "10.244.0.4:5353": "b3-new"} {
		if !l.received(pod, msg) {
			t.Errorf("after clearing, %s did not receive %s", pod, msg)
		}
	}
	if !l.received("10.244.0.2:5353", "np5-new") {
		t.Error("after clearing, the node port flow did not reach pod 2")
	}

	// A second pass, as after a proxy restart with the same state, keeps
	// every live flow.
	live := listFlows(t)
	if n, err := New().ClearStale(svcs); err != nil || n != 0 {
		t.Fatalf("second ClearStale = %d, %v; want 0, nil", n, err)
	}
	if got := listFlows(t); !slices.Equal(got, live) {
		t.Fatalf("second ClearStale changed flows:\n%v\nwant\n%v", got, live)
	}
}
