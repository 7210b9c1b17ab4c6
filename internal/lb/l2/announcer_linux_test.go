package l2

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/portal-net/portal/internal/sys/netns"
	"github.com/portal-net/portal/internal/testutil/netnstest"
)

func TestMain(m *testing.M) { netnstest.Main(m) }

// lab is one L2 segment: a bridge in the test's own (isolated) namespace
// and a namespace per host, each with eth0 on the bridge.
type lab struct {
	hosts map[string]*host
}

type host struct {
	ns  string
	mac net.HardwareAddr
}

// Addresses on the lab segment (documentation ranges, only ever inside
// the namespaces the test creates).
var labAddrs = map[string][]string{
	"client": {"192.0.2.1/24", "2001:db8::1/64"},
	"nodea":  {"192.0.2.11/24", "2001:db8::11/64"},
	"nodeb":  {"192.0.2.12/24", "2001:db8::12/64"},
}

func newLab(t *testing.T) *lab {
	t.Helper()
	netnstest.Require(t)
	off := false
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "l2lab"}, MulticastSnooping: &off}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatalf("add bridge: %v", err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(br) })
	if err := netlink.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
	l := &lab{hosts: map[string]*host{}}
	for _, name := range []string{"client", "nodea", "nodeb"} {
		path := netnstest.NewNetns(t, name)
		nsf, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: "h-" + name, MasterIndex: br.Index},
			PeerName:      "eth0",
			PeerNamespace: netlink.NsFd(int(nsf.Fd())),
		}
		err = netlink.LinkAdd(veth)
		nsf.Close()
		if err != nil {
			t.Fatalf("add veth for %s: %v", name, err)
		}
		// Deleting our end removes the pair now; a deleted namespace
		// takes its interfaces down only later, asynchronously.
		t.Cleanup(func() { _ = netlink.LinkDel(veth) })
		if err := netlink.LinkSetUp(veth); err != nil {
			t.Fatal(err)
		}
		h := &host{ns: path}
		err = netns.Do(path, func() error {
			link, err := netlink.LinkByName("eth0")
			if err != nil {
				return err
			}
			for _, a := range labAddrs[name] {
				addr, err := netlink.ParseAddr(a)
				if err != nil {
					return err
				}
				addr.Flags = unix.IFA_F_NODAD
				if err := netlink.AddrAdd(link, addr); err != nil {
					return fmt.Errorf("add %s: %w", a, err)
				}
			}
			h.mac = link.Attrs().HardwareAddr
			return netlink.LinkSetUp(link)
		})
		if err != nil {
			t.Fatalf("set up %s: %v", name, err)
		}
		l.hosts[name] = h
	}
	// Let the client give up on an unanswered address quickly (3 probes
	// 100 ms apart) so "no answer" is observable in well under a second.
	l.sysctl(t, "client", "net/ipv4/neigh/eth0/retrans_time_ms", "100")
	l.sysctl(t, "client", "net/ipv6/neigh/eth0/retrans_time_ms", "100")
	return l
}

func (l *lab) sysctl(t testing.TB, hostName, key, value string) {
	t.Helper()
	err := netns.Do(l.hosts[hostName].ns, func() error {
		return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644)
	})
	if err != nil {
		t.Fatalf("sysctl %s=%s in %s: %v", key, value, hostName, err)
	}
}

// announcer starts an Announcer on eth0 of a node; it is closed at
// cleanup.
func (l *lab) announcer(t testing.TB, node string, cfg Config) *Announcer {
	t.Helper()
	cfg.Interface = "eth0"
	var a *Announcer
	err := netns.Do(l.hosts[node].ns, func() (err error) {
		a, err = New(cfg)
		return err
	})
	if err != nil {
		t.Fatalf("New on %s: %v", node, err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// send makes the client's kernel resolve ip by sending it a datagram.
func (l *lab) send(t testing.TB, ip netip.Addr) {
	t.Helper()
	err := netns.Do(l.hosts["client"].ns, func() error {
		c, err := net.Dial("udp", netip.AddrPortFrom(ip, 9).String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hello"))
		return err
	})
	if err != nil {
		t.Fatalf("send to %v: %v", ip, err)
	}
}

// neigh returns the client's neighbour entry for ip: its link address
// when it has a usable one, and its NUD state (0 if there is none).
func (l *lab) neigh(t testing.TB, ip netip.Addr) (mac net.HardwareAddr, state int) {
	t.Helper()
	family := netlink.FAMILY_V4
	if ip.Is6() {
		family = netlink.FAMILY_V6
	}
	err := netns.Do(l.hosts["client"].ns, func() error {
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		ns, err := netlink.NeighList(link.Attrs().Index, family)
		if err != nil {
			return err
		}
		for _, n := range ns {
			if n.IP.Equal(ip.AsSlice()) {
				state = n.State
				if n.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) == 0 {
					mac = n.HardwareAddr
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("neighbour table: %v", err)
	}
	return mac, state
}

func (l *lab) forget(t testing.TB, ip netip.Addr) {
	t.Helper()
	err := netns.Do(l.hosts["client"].ns, func() error {
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		err = netlink.NeighDel(&netlink.Neigh{LinkIndex: link.Attrs().Index, IP: ip.AsSlice()})
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	})
	if err != nil {
		t.Fatalf("delete neighbour %v: %v", ip, err)
	}
}

// resolve sends to ip and waits for the client's kernel to settle: it
// returns the MAC it learned, or nil once resolution failed.
func (l *lab) resolve(t testing.TB, ip netip.Addr) net.HardwareAddr {
	t.Helper()
	l.send(t, ip)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		mac, state := l.neigh(t, ip)
		if mac != nil {
			return mac
		}
		if state&netlink.NUD_FAILED != 0 || state == 0 {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("resolving %v neither succeeded nor failed in 3s", ip)
	return nil
}

func TestAnnounceAnswersNeighbours(t *testing.T) {
	l := newLab(t)
	// No gratuitous frames here: an entry the client is still resolving
	// would take them, and this test is about answering requests.
	a := l.announcer(t, "nodea", Config{GratuitousCount: -1})
	for _, tc := range []struct {
		family           string
		announced, never netip.Addr
	}{
		{"ipv4", netip.MustParseAddr("192.0.2.100"), netip.MustParseAddr("192.0.2.101")},
		{"ipv6", netip.MustParseAddr("2001:db8::100"), netip.MustParseAddr("2001:db8::101")},
	} {
		t.Run(tc.family, func(t *testing.T) {
			ignoredBefore := a.Stats().RequestsIgnored
			if err := a.Announce(tc.announced); err != nil {
				t.Fatal(err)
			}
			if got, want := l.resolve(t, tc.announced), l.hosts["nodea"].mac; got.String() != want.String() {
				t.Errorf("client resolved %v to %v, want node A's %v", tc.announced, got, want)
			}
			if got := l.resolve(t, tc.never); got != nil {
				t.Errorf("client resolved never-announced %v to %v, want no answer", tc.never, got)
			}
			// The reply may reach the client before the counter moves.
			st := a.Stats()
			for deadline := time.Now().Add(time.Second); st.Addresses[tc.announced].RequestsAnswered < 1 && time.Now().Before(deadline); st = a.Stats() {
				time.Sleep(time.Millisecond)
			}
			if got := st.Addresses[tc.announced].RequestsAnswered; got < 1 {
				t.Errorf("RequestsAnswered for %v = %d, want >= 1 (stats %+v)", tc.announced, got, st)
			}
			if st.RequestsIgnored <= ignoredBefore {
				t.Errorf("RequestsIgnored = %d, want more than %d (the never-announced address)", st.RequestsIgnored, ignoredBefore)
			}
			if _, ok := st.Addresses[tc.never]; ok {
				t.Errorf("Stats has an entry for never-announced %v", tc.never)
			}

			a.Withdraw(tc.announced)
			l.forget(t, tc.announced)
			if got := l.resolve(t, tc.announced); got != nil {
				t.Errorf("client resolved withdrawn %v to %v, want no answer", tc.announced, got)
			}
			for _, ip := range a.Announced() {
				if ip == tc.announced {
					t.Errorf("Announced() still lists %v after Withdraw", ip)
				}
			}
		})
	}
}

func TestTakeover(t *testing.T) {
	tests := []struct {
		name    string
		ip      netip.Addr
		sysctls map[string]string // in the client
		// wantSwitch: the client's entry moves to B's MAC without any
		// traffic of its own; otherwise it must keep A's for a second.
		wantSwitch bool
	}{{
		name:       "ipv4 default sysctls",
		ip:         netip.MustParseAddr("192.0.2.100"),
		sysctls:    map[string]string{"net/ipv4/conf/eth0/arp_accept": "0", "net/ipv4/conf/eth0/drop_gratuitous_arp": "0"},
		wantSwitch: true,
	}, {
		name:    "ipv4 client drops gratuitous arp",
		ip:      netip.MustParseAddr("192.0.2.100"),
		sysctls: map[string]string{"net/ipv4/conf/eth0/drop_gratuitous_arp": "1"},
	}, {
		name:       "ipv6 unsolicited NA with override",
		ip:         netip.MustParseAddr("2001:db8::100"),
		wantSwitch: true,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLab(t)
			for k, v := range tt.sysctls {
				l.sysctl(t, "client", k, v)
			}
			cfg := Config{GratuitousCount: 3, GratuitousInterval: 200 * time.Millisecond}
			a := l.announcer(t, "nodea", cfg)
			macA, macB := l.hosts["nodea"].mac, l.hosts["nodeb"].mac

			if err := a.Announce(tt.ip); err != nil {
				t.Fatal(err)
			}
			if got := l.resolve(t, tt.ip); got.String() != macA.String() {
				t.Fatalf("client resolved %v to %v, want node A's %v", tt.ip, got, macA)
			}
			// B starts only now, so that it cannot answer the client's
			// request late and switch the client by that answer rather
			// than by its announcement (see TestReannounceAfterPartition).
			b := l.announcer(t, "nodeb", cfg)

			a.Withdraw(tt.ip)
			start := time.Now()
			if err := b.Announce(tt.ip); err != nil {
				t.Fatal(err)
			}
			wait := time.Second
			var mac net.HardwareAddr
			for time.Since(start) < wait {
				if mac, _ = l.neigh(t, tt.ip); mac.String() == macB.String() {
					break
				}
				time.Sleep(time.Millisecond)
			}
			took := time.Since(start)
			switched := mac.String() == macB.String()
			if switched != tt.wantSwitch {
				t.Fatalf("client's entry for %v is %v %v after B announced; want switched to B (%v) = %v", tt.ip, mac, took, macB, tt.wantSwitch)
			}
			if switched {
				t.Logf("takeover of %v: client's neighbour entry showed node B's MAC %v after B's Announce", tt.ip, took)
			}
			// The whole burst goes out: 3 rounds of 2 ARP frames or 1 NA.
			perRound := uint64(2)
			if tt.ip.Is6() {
				perRound = 1
			}
			deadline := time.Now().Add(2 * time.Second)
			for b.Stats().Addresses[tt.ip].GratuitousSent < 3*perRound && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := b.Stats().Addresses[tt.ip].GratuitousSent; got != 3*perRound {
				t.Errorf("B GratuitousSent = %d, want %d", got, 3*perRound)
			}
		})
	}
}

// After a partition both nodes hold the address; the client follows the
// last announcement, and Reannounce from the rightful holder pulls it back.
func TestReannounceAfterPartition(t *testing.T) {
	l := newLab(t)
	// No lock time: the client takes any later ARP at once.
	l.sysctl(t, "client", "net/ipv4/neigh/eth0/locktime", "0")
	// B took the address over with its burst; A holds it silently (it
	// was announced before the split).
	b := l.announcer(t, "nodeb", Config{GratuitousCount: 1})
	ip := netip.MustParseAddr("192.0.2.101")
	if err := b.Announce(ip); err != nil {
		t.Fatal(err)
	}
	if got := l.resolve(t, ip); got.String() != l.hosts["nodeb"].mac.String() {
		t.Fatalf("client resolved %v to %v, want B", ip, got)
	}
	// A's socket opens only now: had it been open while the client
	// resolved, A could answer the client's request late, after its
	// Announce below, and (lock time 0) take the entry from B. That
	// happened in CI.
	a := l.announcer(t, "nodea", Config{GratuitousCount: -1})
	if a.Reannounce(ip) {
		t.Error("Reannounce of an address not announced reported true")
	}
	if err := a.Announce(ip); err != nil {
		t.Fatal(err)
	}
	waitMAC := func(want net.HardwareAddr) {
		t.Helper()
		deadline := time.Now().Add(time.Second)
		for {
			mac, _ := l.neigh(t, ip)
			if mac.String() == want.String() {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("client's entry for %v is %v, want %v", ip, mac, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitMAC(l.hosts["nodeb"].mac)
	if !a.Reannounce(ip) {
		t.Fatal("Reannounce reported the announced address as not announced")
	}
	waitMAC(l.hosts["nodea"].mac)
}

func TestCloseStopsEverything(t *testing.T) {
	l := newLab(t)
	a := l.announcer(t, "nodea", Config{GratuitousCount: 100, GratuitousInterval: 50 * time.Millisecond})
	ip4, ip6 := netip.MustParseAddr("192.0.2.100"), netip.MustParseAddr("2001:db8::100")
	for _, ip := range []netip.Addr{ip4, ip6} {
		if err := a.Announce(ip); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	if strings.Contains(stacks, "l2.(*Announcer)") {
		t.Errorf("Announcer goroutines left after Close:\n%s", stacks)
	}
	if err := a.Announce(ip4); !errors.Is(err, ErrClosed) {
		t.Errorf("Announce after Close = %v, want ErrClosed", err)
	}
	if got := a.Announced(); len(got) != 0 {
		t.Errorf("Announced() after Close = %v, want none", got)
	}
	sent := a.Stats().Addresses[ip4].GratuitousSent
	time.Sleep(150 * time.Millisecond)
	if got := a.Stats().Addresses[ip4].GratuitousSent; got != sent {
		t.Errorf("gratuitous frames still sent after Close: %d -> %d", sent, got)
	}
	l.forget(t, ip4)
	if got := l.resolve(t, ip4); got != nil {
		t.Errorf("client resolved %v to %v after Close, want no answer", ip4, got)
	}
}
