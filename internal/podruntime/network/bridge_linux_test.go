package network_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/portal-net/portal/internal/podruntime/network"
	"github.com/portal-net/portal/internal/sys/netns"
	"github.com/portal-net/portal/internal/testutil/netnstest"
)

func mustCIDR(t testing.TB, s string) *net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// newManager returns a set-up Manager whose pods are deleted when the test
// ends (before the directories and the node namespace go away).
func newManager(t testing.TB, cfg network.Config, podCIDR string) network.Manager {
	t.Helper()
	m := network.NewBridge(cfg)
	if err := m.Setup(context.Background(), mustCIDR(t, podCIDR)); err != nil {
		t.Fatalf("Setup(%s): %v", podCIDR, err)
	}
	t.Cleanup(func() { delAll(t, m) })
	return m
}

func delAll(t testing.TB, m network.Manager) {
	ids, err := m.List(context.Background())
	if err != nil {
		t.Errorf("cleanup: %v", err)
	}
	for _, id := range ids {
		if err := m.Del(context.Background(), id); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}

func nodeConfig(t testing.TB, hostNetns string) network.Config {
	return network.Config{
		StateDir:  t.TempDir(),
		NetnsDir:  t.TempDir(),
		HostNetns: hostNetns,
	}
}

func add(t testing.TB, m network.Manager, id string) *network.Attachment {
	t.Helper()
	a, err := m.Add(context.Background(), id)
	if err != nil {
		t.Fatalf("Add(%s): %v", id, err)
	}
	return a
}

// in runs fn in the namespace at path, or right here for "".
func in(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	return netns.Do(path, fn)
}

// handle opens netlink in the namespace at path ("" = this one).
func handle(t testing.TB, path string) *netlink.Handle {
	t.Helper()
	var h *netlink.Handle
	var err error
	if path == "" {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	} else {
		var ns vnetns.NsHandle
		if ns, err = vnetns.GetFromPath(path); err == nil {
			h, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
			ns.Close()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// tcp connects from the namespace client to a listener on serverIP that
// lives in the namespace server and returns the source address the server
// saw. A socket stays in the namespace it was created in.
func tcp(serverNs string, serverIP net.IP, clientNs string, timeout time.Duration) (net.IP, error) {
	var l net.Listener
	err := in(serverNs, func() (err error) {
		l, err = net.Listen("tcp4", net.JoinHostPort(serverIP.String(), "0"))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	defer l.Close()
	peer := make(chan net.IP, 1)
	go func() {
		defer close(peer)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("ok"))
		peer <- c.RemoteAddr().(*net.TCPAddr).IP
	}()
	var c net.Conn
	err = in(clientNs, func() (err error) {
		d := net.Dialer{Timeout: timeout}
		c, err = d.Dial("tcp4", l.Addr().String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", l.Addr(), err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ok" {
		return nil, fmt.Errorf("read from %s: %q, %v", l.Addr(), buf, err)
	}
	select {
	case ip := <-peer:
		return ip, nil
	case <-time.After(timeout):
		return nil, errors.New("server never accepted")
	}
}

func expectTCP(t *testing.T, what, serverNs string, serverIP net.IP, clientNs string, wantPeer net.IP) {
	t.Helper()
	got, err := tcp(serverNs, serverIP, clientNs, 5*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !got.Equal(wantPeer) {
		t.Errorf("%s: server saw %s, want %s (no NAT on the pod network)", what, got, wantPeer)
	}
}

func TestOneNode(t *testing.T) {
	netnstest.Require(t)
	ctx := context.Background()
	// This node is the test's own isolated namespace (HostNetns ""), so
	// the bridge outlives the Manager and is removed here.
	cfg := nodeConfig(t, "")
	cfg.BridgeName = "portaltest0"
	h := handle(t, "")
	t.Cleanup(func() {
		if br, err := h.LinkByName(cfg.BridgeName); err == nil {
			_ = h.LinkDel(br)
		}
	})
	m := newManager(t, cfg, "10.244.1.0/24")

	br, err := h.LinkByName(cfg.BridgeName)
	if err != nil {
		t.Fatalf("bridge: %v", err)
	}
	if br.Attrs().Flags&net.FlagUp == 0 || br.Attrs().MTU != 1500 {
		t.Errorf("bridge flags %v mtu %d, want up, 1500", br.Attrs().Flags, br.Attrs().MTU)
	}
	addrs, _ := h.AddrList(br, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != "10.244.1.1/24" {
		t.Errorf("bridge addresses %v, want [10.244.1.1/24]", addrs)
	}
	if fwd, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(string(fwd)) != "1" {
		t.Errorf("ip_forward = %q", fwd)
	}

	a := add(t, m, "pod-a")
	b := add(t, m, "pod-b")
	gw := net.ParseIP("10.244.1.1")
	want := &network.Attachment{ID: "pod-a", NetnsPath: filepath.Join(cfg.NetnsDir, "pod-a"),
		HostVeth: network.HostVethName("pod-a"), IP: net.ParseIP("10.244.1.2").To4(), Gateway: gw.To4(), PrefixLen: 24}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("Add(pod-a) = %+v, want %+v", a, want)
	}
	if b.IP.Equal(a.IP) || !b.IP.Equal(net.ParseIP("10.244.1.3")) {
		t.Errorf("pod-b IP %s", b.IP)
	}
	// Pods get TCP timestamps without per-connection offsets.
	var ts []byte
	if err := netns.Do(a.NetnsPath, func() (err error) {
		ts, err = os.ReadFile("/proc/sys/net/ipv4/tcp_timestamps")
		return err
	}); err != nil || strings.TrimSpace(string(ts)) != "2" {
		t.Errorf("pod tcp_timestamps = %q, %v; want 2", ts, err)
	}
	if again := add(t, m, "pod-a"); !reflect.DeepEqual(again, a) {
		t.Errorf("second Add(pod-a) = %+v, want %+v", again, a)
	}

	// Host side: on the bridge, up, hairpin.
	hv, err := h.LinkByName(a.HostVeth)
	if err != nil {
		t.Fatalf("host veth: %v", err)
	}
	if hv.Attrs().MasterIndex != br.Attrs().Index || hv.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("host veth master %d up %v", hv.Attrs().MasterIndex, hv.Attrs().Flags&net.FlagUp != 0)
	}
	if pi, err := h.LinkGetProtinfo(hv); err != nil || !pi.Hairpin {
		t.Errorf("hairpin off: %+v, %v", pi, err)
	}
	// Pod side: eth0 with the address, MTU of the bridge, default route.
	ph := handle(t, a.NetnsPath)
	eth, err := ph.LinkByName("eth0")
	if err != nil {
		t.Fatalf("eth0 in pod: %v", err)
	}
	if eth.Attrs().MTU != 1500 {
		t.Errorf("eth0 mtu %d", eth.Attrs().MTU)
	}
	podAddrs, _ := ph.AddrList(eth, netlink.FAMILY_V4)
	if len(podAddrs) != 1 || podAddrs[0].IPNet.String() != "10.244.1.2/24" {
		t.Errorf("eth0 addresses %v", podAddrs)
	}
	routes, _ := ph.RouteList(nil, netlink.FAMILY_V4)
	hasDefault := false
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.Equal(gw) {
			hasDefault = true
		}
	}
	if !hasDefault {
		t.Errorf("no default route via %s in pod: %v", gw, routes)
	}

	expectTCP(t, "pod-b → pod-a", a.NetnsPath, a.IP, b.NetnsPath, b.IP)
	expectTCP(t, "node → pod-a", a.NetnsPath, a.IP, "", gw)
	expectTCP(t, "pod-b → node", "", gw, b.NetnsPath, b.IP)
	expectTCP(t, "pod-a → itself", a.NetnsPath, a.IP, a.NetnsPath, a.IP)

	// Restart: a new Manager on the same directories finds both pods and
	// hands out neither address again.
	m2 := newManager(t, cfg, "10.244.1.0/24")
	ids, err := m2.List(ctx)
	if err != nil || !slices.Equal(ids, []string{"pod-a", "pod-b"}) {
		t.Fatalf("List after restart = %v, %v", ids, err)
	}
	if again := add(t, m2, "pod-b"); !reflect.DeepEqual(again, b) {
		t.Errorf("Add(pod-b) after restart = %+v, want %+v", again, b)
	}
	c := add(t, m2, "pod-c")
	if c.IP.Equal(a.IP) || c.IP.Equal(b.IP) {
		t.Fatalf("pod-c got %s, in use by pod-a/pod-b", c.IP)
	}
	expectTCP(t, "pod-c → pod-a after restart", a.NetnsPath, a.IP, c.NetnsPath, c.IP)

	// Del removes veth, namespace file and address; it is idempotent.
	if err := m2.Del(ctx, "pod-b"); err != nil {
		t.Fatalf("Del(pod-b): %v", err)
	}
	if _, err := h.LinkByName(b.HostVeth); err == nil {
		t.Errorf("veth %s still there after Del", b.HostVeth)
	}
	if _, err := os.Stat(b.NetnsPath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("netns file after Del: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.StateDir, "ipam", b.IP.String())); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ipam file after Del: %v", err)
	}
	for _, id := range []string{"pod-b", "never-added"} {
		if err := m2.Del(ctx, id); err != nil {
			t.Errorf("Del(%s): %v", id, err)
		}
	}
	if ids, _ := m2.List(ctx); !slices.Equal(ids, []string{"pod-a", "pod-c"}) {
		t.Errorf("List after Del = %v", ids)
	}
	if _, err := m2.Add(ctx, "../x"); !errors.Is(err, network.ErrInvalidID) {
		t.Errorf("Add(../x): %v, want ErrInvalidID", err)
	}
}

// TestAddUndoesOnFailure: an Add that cannot finish leaves no namespace,
// no address and no veth behind.
func TestAddUndoesOnFailure(t *testing.T) {
	node := netnstest.NewNetns(t, "node")
	cfg := nodeConfig(t, node)
	m := newManager(t, cfg, "10.244.7.0/30") // room for one pod
	add(t, m, "first")
	if _, err := m.Add(context.Background(), "second"); err == nil {
		t.Fatal("Add with exhausted IPAM succeeded")
	}
	if _, err := os.Stat(filepath.Join(cfg.NetnsDir, "second")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("namespace file of failed Add: %v", err)
	}
	if _, err := handle(t, node).LinkByName(network.HostVethName("second")); err == nil {
		t.Errorf("veth of failed Add exists")
	}
	if ids, _ := m.List(context.Background()); !slices.Equal(ids, []string{"first"}) {
		t.Errorf("List = %v", ids)
	}
}

func TestNotSetUp(t *testing.T) {
	m := network.NewBridge(network.Config{StateDir: t.TempDir(), NetnsDir: t.TempDir()})
	if _, err := m.Add(context.Background(), "x"); !errors.Is(err, network.ErrNotSetUp) {
		t.Errorf("Add before Setup: %v", err)
	}
}

// twoNodes builds two "nodes" joined by a veth pair, 192.0.2.1/24 and
// 192.0.2.2/24, each with a Manager and pod CIDR 10.244.{1,2}.0/24.
func twoNodes(t *testing.T) (n1, n2 string, m1, m2 network.Manager) {
	n1 = netnstest.NewNetns(t, "node1")
	n2 = netnstest.NewNetns(t, "node2")
	fd1, err := vnetns.GetFromPath(n1)
	if err != nil {
		t.Fatal(err)
	}
	defer fd1.Close()
	fd2, err := vnetns.GetFromPath(n2)
	if err != nil {
		t.Fatal(err)
	}
	defer fd2.Close()
	link := netlink.NewVeth(netlink.LinkAttrs{Name: "wire", Namespace: netlink.NsFd(fd1)})
	link.PeerName = "wire"
	link.PeerNamespace = netlink.NsFd(fd2)
	if err := handle(t, "").LinkAdd(link); err != nil {
		t.Fatalf("wire: %v", err)
	}
	for ns, addr := range map[string]string{n1: "192.0.2.1/24", n2: "192.0.2.2/24"} {
		h := handle(t, ns)
		l, err := h.LinkByName("wire")
		if err != nil {
			t.Fatal(err)
		}
		a, _ := netlink.ParseAddr(addr)
		if err := h.AddrAdd(l, a); err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	m1 = newManager(t, nodeConfig(t, n1), "10.244.1.0/24")
	m2 = newManager(t, nodeConfig(t, n2), "10.244.2.0/24")
	return n1, n2, m1, m2
}

func routesOf(t *testing.T, ns string) (ours, others []string) {
	t.Helper()
	all, err := handle(t, ns).RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		if r.Dst == nil || r.Gw == nil {
			continue
		}
		s := r.Dst.String() + " via " + r.Gw.String()
		if r.Protocol == network.RouteProtocol {
			ours = append(ours, s)
		} else {
			others = append(others, s)
		}
	}
	slices.Sort(ours)
	return ours, others
}

func TestTwoNodes(t *testing.T) {
	ctx := context.Background()
	n1, _, m1, m2 := twoNodes(t)
	via1, via2 := net.ParseIP("192.0.2.1"), net.ParseIP("192.0.2.2")
	cidr1, cidr2 := mustCIDR(t, "10.244.1.0/24"), mustCIDR(t, "10.244.2.0/24")

	p1 := add(t, m1, "p1")
	p2 := add(t, m2, "p2")
	if _, err := tcp(p2.NetnsPath, p2.IP, p1.NetnsPath, time.Second); err == nil {
		t.Fatal("pods on different nodes connect before any route exists")
	}

	// A route somebody else owns on node1 must survive every sync.
	foreign := &netlink.Route{Dst: mustCIDR(t, "198.51.100.0/24"), Gw: via2, Protocol: unix.RTPROT_STATIC}
	if err := handle(t, n1).RouteAdd(foreign); err != nil {
		t.Fatal(err)
	}

	stale := mustCIDR(t, "10.244.3.0/24")
	if err := m1.SyncRoutes(ctx, []network.Route{{Dst: cidr2, Via: via2}, {Dst: stale, Via: via2}}); err != nil {
		t.Fatalf("SyncRoutes node1: %v", err)
	}
	if err := m1.SyncRoutes(ctx, []network.Route{{Dst: cidr2, Via: via2}}); err != nil {
		t.Fatalf("SyncRoutes node1 again: %v", err)
	}
	if err := m2.SyncRoutes(ctx, []network.Route{{Dst: cidr1, Via: via1}}); err != nil {
		t.Fatalf("SyncRoutes node2: %v", err)
	}
	ours, others := routesOf(t, n1)
	if !slices.Equal(ours, []string{"10.244.2.0/24 via 192.0.2.2"}) {
		t.Errorf("node1 portal routes = %v", ours)
	}
	if !slices.Contains(others, "198.51.100.0/24 via 192.0.2.2") {
		t.Errorf("foreign route removed: %v", others)
	}

	expectTCP(t, "node1 pod → node2 pod", p2.NetnsPath, p2.IP, p1.NetnsPath, p1.IP)
	expectTCP(t, "node2 pod → node1 pod", p1.NetnsPath, p1.IP, p2.NetnsPath, p2.IP)

	if err := m1.SyncRoutes(ctx, nil); err != nil {
		t.Fatalf("SyncRoutes(nil): %v", err)
	}
	if ours, others := routesOf(t, n1); len(ours) != 0 || !slices.Contains(others, "198.51.100.0/24 via 192.0.2.2") {
		t.Errorf("after SyncRoutes(nil): ours %v others %v", ours, others)
	}
	if err := m1.SyncRoutes(ctx, []network.Route{{Dst: cidr2}}); err == nil {
		t.Error("SyncRoutes accepted a route without a gateway")
	}
}

func openFDs(t testing.TB) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestAddDelLeavesNothing(t *testing.T) {
	node := netnstest.NewNetns(t, "node")
	cfg := nodeConfig(t, node)
	m := newManager(t, cfg, "10.244.5.0/24")
	ctx := context.Background()
	fds := openFDs(t)
	for i := range 200 {
		id := fmt.Sprintf("leak-%d", i)
		if _, err := m.Add(ctx, id); err != nil {
			t.Fatalf("cycle %d: Add: %v", i, err)
		}
		if err := m.Del(ctx, id); err != nil {
			t.Fatalf("cycle %d: Del: %v", i, err)
		}
	}
	links, err := handle(t, node).LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"lo", "portal0"}) {
		t.Errorf("links left in node: %v", names)
	}
	if entries, _ := os.ReadDir(cfg.NetnsDir); len(entries) != 0 {
		t.Errorf("%d namespace files left", len(entries))
	}
	entries, _ := os.ReadDir(filepath.Join(cfg.StateDir, "ipam"))
	for _, e := range entries {
		if net.ParseIP(e.Name()) != nil || strings.HasPrefix(e.Name(), ".tmp") {
			t.Errorf("ipam file left: %s", e.Name())
		}
	}
	if ids, _ := m.List(ctx); len(ids) != 0 {
		t.Errorf("List = %v", ids)
	}
	if now := openFDs(t); now > fds+2 {
		t.Errorf("open fds grew from %d to %d over 200 cycles", fds, now)
	}
}

func BenchmarkAddDel(b *testing.B) {
	node := netnstest.NewNetns(b, "node")
	m := newManager(b, nodeConfig(b, node), "10.244.0.0/16")
	ctx := context.Background()
	var addT, delT time.Duration
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("bench-%d", i)
		start := time.Now()
		if _, err := m.Add(ctx, id); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if err := m.Del(ctx, id); err != nil {
			b.Fatal(err)
		}
		addT += mid.Sub(start)
		delT += time.Since(mid)
	}
	b.ReportMetric(float64(addT.Microseconds())/float64(b.N), "µs-add/op")
	b.ReportMetric(float64(delT.Microseconds())/float64(b.N), "µs-del/op")
}

// TestSetupCIDRChange: a node whose pods hold addresses of one pod CIDR
// refuses another, and its bridge keeps the old gateway address.
func TestSetupCIDRChange(t *testing.T) {
	node := netnstest.NewNetns(t, "node")
	cfg := nodeConfig(t, node)
	m := newManager(t, cfg, "10.244.1.0/24")
	add(t, m, "pod")
	m2 := network.NewBridge(cfg)
	if err := m2.Setup(context.Background(), mustCIDR(t, "10.244.9.0/24")); err == nil {
		t.Fatal("Setup with another pod CIDR succeeded while pods hold addresses")
	}
	h := handle(t, node)
	br, err := h.LinkByName("portal0")
	if err != nil {
		t.Fatal(err)
	}
	if addrs, _ := h.AddrList(br, netlink.FAMILY_V4); len(addrs) != 1 || addrs[0].IPNet.String() != "10.244.1.1/24" {
		t.Errorf("bridge addresses after refused Setup: %v", addrs)
	}
}

// TestConcurrentAdds: many goroutines adding (some the same id) get one
// attachment per id and distinct addresses.
func TestConcurrentAdds(t *testing.T) {
	node := netnstest.NewNetns(t, "node")
	m := newManager(t, nodeConfig(t, node), "10.244.6.0/24")
	const n = 8
	res := make([]*network.Attachment, 2*n)
	errs := make([]error, 2*n)
	done := make(chan struct{})
	for i := range 2 * n {
		go func() {
			defer func() { done <- struct{}{} }()
			res[i], errs[i] = m.Add(context.Background(), fmt.Sprintf("pod-%d", i%n))
		}()
	}
	for range 2 * n {
		<-done
	}
	seen := map[string]string{}
	for i, a := range res {
		if errs[i] != nil {
			t.Fatalf("Add: %v", errs[i])
		}
		if other := res[(i+n)%(2*n)]; !reflect.DeepEqual(a, other) {
			t.Errorf("two Adds of %s differ: %+v vs %+v", a.ID, a, other)
		}
		if id, dup := seen[a.IP.String()]; dup && id != a.ID {
			t.Errorf("%s given to %s and %s", a.IP, id, a.ID)
		}
		seen[a.IP.String()] = a.ID
	}
	if len(seen) != n {
		t.Errorf("%d addresses for %d pods", len(seen), n)
	}
}
