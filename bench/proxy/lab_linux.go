package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Addresses of the lab. 198.18.0.0/15 is the benchmarking range (RFC
// 2544): nothing outside this namespace uses it.
var (
	// dummyIP, on a dummy interface of the bench namespace, is the
	// endpoint of the services added one at a time.
	dummyIP = netip.MustParseAddr("198.18.0.1")
	// hostIP and backendIP are the two ends of the veth to the backend
	// namespace, whose HTTP server is the endpoint of the traffic runs.
	hostIP    = netip.MustParseAddr("198.18.1.1")
	backendIP = netip.MustParseAddr("198.18.1.2")
)

const (
	dummyName = "bprx-dummy0"
	vethName  = "bprx-veth0"
	peerName  = "eth0"
)

// lab is the bench namespace's dummy interface and the backend namespace.
type lab struct {
	orig, backend netns.NsHandle
	// dummyLink holds dummyIP: dummyName, or lo.
	dummyLink string
}

// newLab builds the lab. A ClusterIP nobody programmed yet must fail a
// connect at once rather than time out: the service CIDR is routed to the
// backend namespace, which takes every address of it as local and so
// answers a SYN to any port it does not listen on with a reset.
func newLab(serviceCIDR netip.Prefix) (_ *lab, err error) {
	l := &lab{orig: -1, backend: -1}
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	if l.orig, err = netns.Get(); err != nil {
		return nil, fmt.Errorf("current netns: %w", err)
	}
	if l.backend, err = l.newNetns(); err != nil {
		return nil, err
	}
	// Kernels without the dummy driver get the address on lo instead:
	// either way it is a local address of this namespace only.
	l.dummyLink = dummyName
	dummy := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: dummyName}}
	if err := netlink.LinkAdd(dummy); errors.Is(err, unix.EOPNOTSUPP) {
		l.dummyLink = "lo"
	} else if err != nil {
		return nil, fmt.Errorf("dummy interface: %w", err)
	}
	if err := addrUp(nil, l.dummyLink, netip.PrefixFrom(dummyIP, 32)); err != nil {
		return nil, err
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: vethName}, PeerName: peerName, PeerNamespace: netlink.NsFd(int(l.backend))}
	if err := netlink.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("veth: %w", err)
	}
	if err := addrUp(nil, vethName, netip.PrefixFrom(hostIP, 30)); err != nil {
		return nil, err
	}
	bh, err := netlink.NewHandleAt(l.backend)
	if err != nil {
		return nil, fmt.Errorf("netlink in backend netns: %w", err)
	}
	defer bh.Close()
	if err := addrUp(bh, peerName, netip.PrefixFrom(backendIP, 30)); err != nil {
		return nil, err
	}
	lo, err := bh.LinkByName("lo")
	if err != nil {
		return nil, err
	}
	if err := bh.LinkSetUp(lo); err != nil {
		return nil, err
	}
	cidr := prefixNet(serviceCIDR)
	if err := bh.RouteAdd(&netlink.Route{LinkIndex: lo.Attrs().Index, Dst: cidr, Type: unix.RTN_LOCAL,
		Table: unix.RT_TABLE_LOCAL, Scope: netlink.SCOPE_HOST}); err != nil {
		return nil, fmt.Errorf("local route for the service CIDR in the backend: %w", err)
	}
	vl, err := netlink.LinkByName(vethName)
	if err != nil {
		return nil, err
	}
	if err := netlink.RouteAdd(&netlink.Route{LinkIndex: vl.Attrs().Index, Dst: cidr,
		Gw: backendIP.AsSlice()}); err != nil {
		return nil, fmt.Errorf("route for the service CIDR: %w", err)
	}
	return l, nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	p = p.Masked()
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func addrUp(h *netlink.Handle, name string, p netip.Prefix) error {
	if h == nil {
		h = &netlink.Handle{}
	}
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}}
	if err := h.AddrAdd(l, a); err != nil {
		return fmt.Errorf("address %s on %s: %w", p, name, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("link %s up: %w", name, err)
	}
	return nil
}

// newNetns makes a network namespace held only by the returned handle (no
// bind mount), so it vanishes with this process at the latest.
func (l *lab) newNetns() (netns.NsHandle, error) {
	type res struct {
		h   netns.NsHandle
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.New()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- res{-1, fmt.Errorf("new netns: %w", err)}
			return
		}
		if err := netns.Set(l.orig); err != nil {
			// This thread is in the wrong namespace: leave it locked so
			// that it ends with the goroutine.
			h.Close()
			ch <- res{-1, fmt.Errorf("back to the bench netns: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- res{h, nil}
	}()
	r := <-ch
	return r.h, r.err
}

// listenBackend opens a TCP listener inside the backend namespace; the
// socket stays in that namespace whichever thread serves it.
func (l *lab) listenBackend(addr string) (net.Listener, error) {
	type res struct {
		ln  net.Listener
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(l.backend); err != nil {
			runtime.UnlockOSThread()
			ch <- res{nil, fmt.Errorf("enter backend netns: %w", err)}
			return
		}
		ln, err := net.Listen("tcp4", addr)
		if serr := netns.Set(l.orig); serr != nil {
			if ln != nil {
				ln.Close()
			}
			ch <- res{nil, errors.Join(err, fmt.Errorf("back to the bench netns: %w", serr))}
			return
		}
		runtime.UnlockOSThread()
		ch <- res{ln, err}
	}()
	r := <-ch
	return r.ln, r.err
}

// close deletes the interfaces (the veth's peer goes with it) and drops
// the backend namespace.
func (l *lab) close() {
	for _, name := range []string{vethName, dummyName} {
		if link, err := netlink.LinkByName(name); err == nil {
			_ = netlink.LinkDel(link)
		}
	}
	if l.dummyLink == "lo" {
		if lo, err := netlink.LinkByName("lo"); err == nil {
			_ = netlink.AddrDel(lo, &netlink.Addr{IPNet: &net.IPNet{IP: dummyIP.AsSlice(), Mask: net.CIDRMask(32, 32)}})
		}
	}
	if l.backend >= 0 {
		l.backend.Close()
	}
	if l.orig >= 0 {
		l.orig.Close()
	}
}
