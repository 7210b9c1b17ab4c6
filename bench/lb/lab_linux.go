package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/portal-net/portal/internal/sys/netns"
)

// Addresses of the lab, in 198.18.0.0/15, the benchmarking range (RFC
// 2544): they exist only inside the benchmark's own network namespace.
var (
	serverIP = netip.MustParseAddr("198.18.0.1")   // the bridge: portal server
	clientIP = netip.MustParseAddr("198.18.0.200") // the outside client
	poolFrom = netip.MustParseAddr("198.18.0.240") // first candidate LB address
)

const (
	bridgeName = "lab0"
	clientLink = "labout"
	nodeCount  = 3
)

// nodeIP is node i's (1-based) address on the bridge.
func nodeIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + i)}) }

// nodeName is node i's Kubernetes and memberlist name.
func nodeName(i int) string { return fmt.Sprintf("node-%d", i) }

// hostLink is the bench namespace's end of node i's veth: taking it down
// cuts node i off the segment, as a pulled cable or a dead switch port.
func hostLink(i int) string { return fmt.Sprintf("lab%d", i) }

// lab is a bridge in the bench namespace with three node namespaces and an
// outside client namespace on it, each with eth0 on the bridge.
type lab struct {
	dir    string
	nodes  []string // namespace paths of node-1..3
	client string   // namespace path of the client
	links  []string // host-side links made, deleted on close
}

func newLab(dir string) (_ *lab, err error) {
	l := &lab{dir: dir}
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgeName}}
	if err := netlink.LinkAdd(br); err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	l.links = append(l.links, bridgeName)
	if err := netlink.AddrAdd(br, addr(serverIP)); err != nil {
		return nil, fmt.Errorf("bridge address: %w", err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return nil, err
	}
	for i := 1; i <= nodeCount; i++ {
		p, err := l.attach(br, fmt.Sprintf("node%d", i), hostLink(i), nodeIP(i))
		if err != nil {
			return nil, err
		}
		l.nodes = append(l.nodes, p)
	}
	if l.client, err = l.attach(br, "client", clientLink, clientIP); err != nil {
		return nil, err
	}
	return l, nil
}

func addr(a netip.Addr) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(24, 32)}}
}

// attach makes a namespace pinned at dir/name whose eth0 (address ip/24)
// is a veth to host on the bridge.
func (l *lab) attach(br *netlink.Bridge, name, host string, ip netip.Addr) (string, error) {
	path := filepath.Join(l.dir, name)
	if err := netns.New(path); err != nil {
		return "", err
	}
	f, err := os.Open(path)
	if err != nil {
		_ = netns.Delete(path)
		return "", err
	}
	defer f.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host, MasterIndex: br.Index}, PeerName: "eth0",
		PeerNamespace: netlink.NsFd(int(f.Fd()))}
	if err := netlink.LinkAdd(veth); err != nil {
		_ = netns.Delete(path)
		return "", fmt.Errorf("veth %s: %w", host, err)
	}
	l.links = append(l.links, host)
	if err := netlink.LinkSetUp(veth); err != nil {
		return path, err
	}
	err = netns.Do(path, func() error {
		for _, n := range []string{"lo", "eth0"} {
			lk, err := netlink.LinkByName(n)
			if err != nil {
				return err
			}
			if n == "eth0" {
				if err := netlink.AddrAdd(lk, addr(ip)); err != nil {
					return err
				}
			}
			if err := netlink.LinkSetUp(lk); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = netns.Delete(path)
		return "", fmt.Errorf("namespace %s: %w", name, err)
	}
	return path, nil
}

// setLink takes node i's host-side link down or up.
func (l *lab) setLink(i int, up bool) error {
	lk, err := netlink.LinkByName(hostLink(i))
	if err != nil {
		return err
	}
	if up {
		return netlink.LinkSetUp(lk)
	}
	return netlink.LinkSetDown(lk)
}

// run runs a command in the namespace at ns.
func run(ns string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + ns, "--"}, args...)...).CombinedOutput()
	return string(out), err
}

// mac is node i's eth0 MAC. Netlink, not sysfs: sysfs shows the links of
// the namespace it was mounted from.
func (l *lab) mac(i int) (string, error) {
	out, err := run(l.nodes[i-1], "ip", "-o", "link", "show", "eth0")
	if err != nil {
		return "", fmt.Errorf("node-%d MAC: %v %s", i, err, out)
	}
	_, after, ok := strings.Cut(out, "link/ether ")
	if !ok {
		return "", fmt.Errorf("node-%d MAC: no link/ether in %q", i, out)
	}
	return strings.Fields(after)[0], nil
}

// neigh is the client's neighbour entry for ip ("" if none).
func (l *lab) neigh(ip netip.Addr) string {
	out, _ := run(l.client, "ip", "neigh", "show", ip.String())
	return strings.TrimSpace(out)
}

// close deletes the links (a veth's peer goes with it) and the namespaces.
func (l *lab) close() {
	for i := len(l.links) - 1; i >= 0; i-- {
		if lk, err := netlink.LinkByName(l.links[i]); err == nil {
			_ = netlink.LinkDel(lk)
		}
	}
	var errs []error
	for _, p := range append(l.nodes, l.client) {
		if p != "" {
			errs = append(errs, netns.Delete(p))
		}
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(os.Stderr, "lab cleanup: %v\n", err)
	}
}
