//go:build linux

// Package proxylab is the network lab the service proxy's datapath tests
// share: a node (the test's own isolated namespace) with a pod bridge, pod
// namespaces serving HTTP and UDP, and a client namespace outside the
// cluster. Nothing in it has a route out.
package proxylab

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/portal-net/portal/internal/sys/netns"
	"github.com/portal-net/portal/internal/testutil/netnstest"
)

// Lab is a node (the test's own isolated namespace) with a bridge
// 10.244.1.1/24 holding pods, and a client namespace outside the cluster
// reaching the node at 192.168.77.1 over a veth.
type Lab struct {
	Pods   map[string]string // pod name → netns path
	PodIP  map[string]netip.Addr
	Client string // netns path
}

// Addresses of the lab: the node's side of the client link, the client,
// and the service CIDR, which is routed to the bridge so nothing in it
// leaks out.
const (
	NodeIP      = "192.168.77.1"
	ClientIP    = "192.168.77.2"
	ServiceCIDR = "10.96.0.0/16"
	bridgeName  = "ptbr0"
)

// New builds the lab for the test (which must run in an isolated
// namespace, see netnstest) and removes it when the test ends.
func New(t *testing.T, pods ...string) *Lab {
	t.Helper()
	netnstest.Require(t)
	l := &Lab{Pods: map[string]string{}, PodIP: map[string]netip.Addr{}}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// A fixed MAC, so adding a port never changes it under the pods' ARP
	// caches (a bridge otherwise takes its lowest port's MAC).
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgeName, HardwareAddr: net.HardwareAddr{0x02, 0, 0x5e, 0x1a, 0xb0, 0x02}}}
	must("add bridge", netlink.LinkAdd(br))
	t.Cleanup(func() { _ = netlink.LinkDel(br) })
	must("bridge address", netlink.AddrAdd(br, mustAddr("10.244.1.1/24")))
	must("bridge up", netlink.LinkSetUp(br))
	must("ip_forward", os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644))
	// The service CIDR is routed locally, so nothing in it leaks out.
	must("service route", netlink.RouteAdd(&netlink.Route{LinkIndex: br.Attrs().Index, Dst: mustPrefix(ServiceCIDR)}))

	for i, name := range pods {
		ns := netnstest.NewNetns(t, name)
		ip := netip.AddrFrom4([4]byte{10, 244, 1, byte(2 + i)})
		l.Pods[name], l.PodIP[name] = ns, ip
		host := "pt" + name
		must("veth "+name, plug(ns, host, ip.String()+"/24", "10.244.1.1"))
		t.Cleanup(func() {
			if lk, err := netlink.LinkByName(host); err == nil {
				_ = netlink.LinkDel(lk)
			}
		})
		lk, err := netlink.LinkByName(host)
		must("find "+host, err)
		must("enslave "+host, netlink.LinkSetMaster(lk, br))
		// As the pod network does: with br_netfilter, a hairpin DNAT
		// is bridged back out of the port it came in on.
		must("hairpin "+host, netlink.LinkSetHairpin(lk, true))
	}

	l.Client = netnstest.NewNetns(t, "client")
	must("veth client", plug(l.Client, "ptclient", ClientIP+"/24", NodeIP))
	t.Cleanup(func() {
		if lk, err := netlink.LinkByName("ptclient"); err == nil {
			_ = netlink.LinkDel(lk)
		}
	})
	lk, err := netlink.LinkByName("ptclient")
	must("find ptclient", err)
	must("node address", netlink.AddrAdd(lk, mustAddr(NodeIP+"/24")))
	return l
}

// plug makes a veth pair: host stays here (up), eth0 goes into ns with
// addr and a default route via gw.
func plug(ns, host, addr, gw string) error {
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host}, PeerName: host + "p"}
	if err := netlink.LinkAdd(veth); err != nil {
		return err
	}
	peer, err := netlink.LinkByName(host + "p")
	if err != nil {
		return err
	}
	fd, err := unix.Open(ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := netlink.LinkSetNsFd(peer, fd); err != nil {
		return err
	}
	if err := netlink.LinkSetUp(veth); err != nil {
		return err
	}
	return netns.Do(ns, func() error {
		lk, err := netlink.LinkByName(host + "p")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetName(lk, "eth0"); err != nil {
			return err
		}
		if err := netlink.AddrAdd(lk, mustAddr(addr)); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(lk); err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: lk.Attrs().Index, Gw: net.ParseIP(gw)})
	})
}

func mustAddr(s string) *netlink.Addr {
	a, err := netlink.ParseAddr(s)
	if err != nil {
		panic(err)
	}
	return a
}

func mustPrefix(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

// Serve runs in every pod an HTTP server and a UDP echo on :8080, both
// answering "<pod> <client ip>".
func (l *Lab) Serve(t *testing.T) {
	t.Helper()
	for name, ns := range l.Pods {
		var ln net.Listener
		var pc net.PacketConn
		err := netns.Do(ns, func() (err error) {
			if ln, err = net.Listen("tcp4", ":8080"); err != nil {
				return err
			}
			pc, err = net.ListenPacket("udp4", ":8080")
			return err
		})
		if err != nil {
			t.Fatalf("listen in %s: %v", name, err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			fmt.Fprintf(w, "%s %s", name, host)
		})}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 64)
			for {
				_, from, err := pc.ReadFrom(buf)
				if err != nil {
					return // closed
				}
				host, _, _ := net.SplitHostPort(from.String())
				_, _ = pc.WriteTo([]byte(name+" "+host), from)
			}
		}()
		t.Cleanup(func() { _ = pc.Close(); <-done })
	}
}

// Ask sends one UDP datagram from a new socket in ns ("" = the node) to
// addr and returns the answer. A new socket is a new source port, so a
// new conntrack entry and a new pick.
func Ask(ns, addr string) (string, error) {
	var c net.Conn
	d := func() (err error) { c, err = net.Dial("udp4", addr); return err }
	var err error
	if ns == "" {
		err = d()
	} else {
		err = netns.Do(ns, d)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("q")); err != nil {
		return "", err
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	return string(buf[:n]), err
}

// Dial connects from ns ("" = the node) to addr, from the address src
// when set.
func Dial(ns, src, addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	if ns == "" {
		return d.Dial("tcp4", addr)
	}
	var c net.Conn
	err := netns.Do(ns, func() (err error) { c, err = d.Dial("tcp4", addr); return err })
	return c, err
}

// Get does one HTTP request on a new connection from ns (and src) and
// returns the body.
func Get(ns, src, addr string) (string, error) {
	c, err := Dial(ns, src, addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	return RoundTrip(c, bufio.NewReader(c), true)
}

// RoundTrip sends one GET on c and returns the body.
func RoundTrip(c net.Conn, br *bufio.Reader, closeAfter bool) (string, error) {
	hdr := ""
	if closeAfter {
		hdr = "Connection: close\r\n"
	}
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n%s\r\n", hdr); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// Clients gives the client namespace n addresses in all (ClientIP first,
// then 192.168.77.3, ...) and returns them, for tests that need several
// distinct clients.
func (l *Lab) Clients(t *testing.T, n int) []string {
	t.Helper()
	clients := []string{ClientIP}
	err := netns.Do(l.Client, func() error {
		lk, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		for i := range n - 1 {
			a := fmt.Sprintf("192.168.77.%d", 3+i)
			if err := netlink.AddrAdd(lk, mustAddr(a+"/24")); err != nil {
				return err
			}
			clients = append(clients, a)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return clients
}
