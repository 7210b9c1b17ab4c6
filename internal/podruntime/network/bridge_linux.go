package network

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sort"
	"sync"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/portal-net/portal/internal/podruntime/network/ipam"
	"github.com/portal-net/portal/internal/sys/netns"
	"github.com/portal-net/portal/internal/sys/sysctl"
)

// NewBridge returns the netlink Manager: a Linux bridge, a veth per pod
// and host-local IPAM. Nothing happens until Setup.
func NewBridge(cfg Config) Manager { return &bridge{cfg: cfg.withDefaults()} }

type bridge struct {
	cfg Config

	// mu orders every operation: netlink state is read, then changed, and
	// two Adds for one id must not both create a veth.
	mu     sync.Mutex
	subnet *net.IPNet
	gw     net.IP
	ipam   *ipam.Store
}

func (b *bridge) Setup(ctx context.Context, podCIDR *net.IPNet) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if podCIDR == nil || podCIDR.IP.To4() == nil {
		return fmt.Errorf("network: setup: pod cidr %v is not IPv4", podCIDR)
	}
	ones, bits := podCIDR.Mask.Size()
	if bits != 32 || ones > 30 {
		return fmt.Errorf("network: setup: pod cidr %v must be an IPv4 prefix of /30 or larger", podCIDR)
	}
	subnet := &net.IPNet{IP: podCIDR.IP.To4().Mask(podCIDR.Mask), Mask: net.CIDRMask(ones, 32)}
	gw := nextIP(subnet.IP)

	b.mu.Lock()
	defer b.mu.Unlock()
	// IPAM first: it refuses a pod CIDR that differs from the one its
	// allocations belong to, and then the bridge must keep its address.
	store, err := ipam.Open(b.cfg.ipamDir(), subnet)
	if err != nil {
		return fmt.Errorf("network: setup: %w", err)
	}
	if err := b.setupHost(gw, subnet.Mask); err != nil {
		store.Close()
		return err
	}
	if b.ipam != nil {
		b.ipam.Close()
	}
	b.subnet, b.gw, b.ipam = subnet, gw, store
	return nil
}

func (b *bridge) setupHost(gw net.IP, mask net.IPMask) error {
	h, err := b.hostHandle()
	if err != nil {
		return fmt.Errorf("network: setup: %w", err)
	}
	defer h.Close()
	if err := b.ensureBridge(h, &net.IPNet{IP: gw, Mask: mask}); err != nil {
		return fmt.Errorf("network: setup bridge %s: %w", b.cfg.BridgeName, err)
	}
	if err := b.enableForwarding(); err != nil {
		return fmt.Errorf("network: setup: enable ip forwarding: %w", err)
	}
	return nil
}

// ensureBridge makes the bridge exist, up, with exactly addr as its IPv4
// address. Its MAC is set explicitly at creation: a bridge with a kernel
// chosen MAC takes over the lowest port MAC, which would change under the
// pods' ARP caches whenever a veth comes or goes.
func (b *bridge) ensureBridge(h *netlink.Handle, addr *net.IPNet) error {
	link, err := h.LinkByName(b.cfg.BridgeName)
	if err != nil && !isNotFound(err) {
		return err
	}
	if link == nil {
		mac, err := randomMAC()
		if err != nil {
			return err
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: b.cfg.BridgeName, MTU: b.cfg.MTU, HardwareAddr: mac, TxQLen: -1}}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("create: %w", err)
		}
		if link, err = h.LinkByName(b.cfg.BridgeName); err != nil {
			return err
		}
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		return fmt.Errorf("%s exists and is a %s, not a bridge", b.cfg.BridgeName, link.Type())
	}
	if link.Attrs().MTU != b.cfg.MTU {
		if err := h.LinkSetMTU(link, b.cfg.MTU); err != nil {
			return fmt.Errorf("set mtu: %w", err)
		}
	}
	if err := setOnlyAddr(h, link, addr); err != nil {
		return err
	}
	return h.LinkSetUp(link)
}

// setOnlyAddr leaves addr as the only IPv4 address of link; addresses of
// an earlier pod CIDR would keep routing that range to the link.
func setOnlyAddr(h *netlink.Handle, link netlink.Link, addr *net.IPNet) error {
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return h.AddrList(link, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", link.Attrs().Name, err)
	}
	found := false
	for _, a := range addrs {
		if a.IPNet.String() == addr.String() {
			found = true
			continue
		}
		if err := h.AddrDel(link, &a); err != nil {
			return fmt.Errorf("remove stale address %s from %s: %w", a.IPNet, link.Attrs().Name, err)
		}
	}
	if !found {
		if err := h.AddrAdd(link, &netlink.Addr{IPNet: addr}); err != nil {
			return fmt.Errorf("add address %s to %s: %w", addr, link.Attrs().Name, err)
		}
	}
	return nil
}

func (b *bridge) enableForwarding() error {
	write := func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644)
	}
	if b.cfg.HostNetns == "" {
		return write()
	}
	// /proc/sys/net shows the namespace of the thread that opens it.
	return netns.Do(b.cfg.HostNetns, write)
}

func (b *bridge) Add(ctx context.Context, id string) (_ *Attachment, err error) {
	if err := validID(id); err != nil {
		return nil, fmt.Errorf("network: add: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ipam == nil {
		return nil, fmt.Errorf("network: add %s: %w", id, ErrNotSetUp)
	}

	// undo holds what this call created, so a failure leaves the node as
	// it found it (and a retried Add starts clean).
	var undo []func() error
	defer func() {
		if err == nil {
			return
		}
		for i := len(undo) - 1; i >= 0; i-- {
			if uerr := undo[i](); uerr != nil {
				err = errors.Join(err, fmt.Errorf("undo: %w", uerr))
			}
		}
	}()

	path := b.cfg.netnsPath(id)
	live, err := netns.IsNetns(path)
	if err != nil {
		return nil, fmt.Errorf("network: add %s: %w", id, err)
	}
	if !live {
		// A plain file is what an interrupted New leaves behind.
		if err := netns.Delete(path); err != nil {
			return nil, fmt.Errorf("network: add %s: %w", id, err)
		}
		if err := netns.New(path); err != nil {
			return nil, fmt.Errorf("network: add %s: %w", id, err)
		}
		undo = append(undo, func() error { return netns.Delete(path) })
	}

	_, had := b.ipam.Get(id)
	ip, err := b.ipam.Allocate(id)
	if err != nil {
		return nil, fmt.Errorf("network: add %s: %w", id, err)
	}
	if !had {
		undo = append(undo, func() error { return b.ipam.Release(id) })
	}

	hostName := HostVethName(id)
	h, err := b.hostHandle()
	if err != nil {
		return nil, fmt.Errorf("network: add %s: %w", id, err)
	}
	defer h.Close()
	ph, err := handleAt(path)
	if err != nil {
		return nil, fmt.Errorf("network: add %s: %w", id, err)
	}
	defer ph.Close()

	created, err := b.ensureVeth(h, ph, path, hostName)
	if created {
		undo = append(undo, func() error { return delLink(h, hostName) })
	}
	if err != nil {
		return nil, fmt.Errorf("network: add %s: veth %s: %w", id, hostName, err)
	}
	addr := &net.IPNet{IP: ip.To4(), Mask: b.subnet.Mask}
	if err := configurePod(ph, addr, b.gw); err != nil {
		return nil, fmt.Errorf("network: add %s: in pod namespace: %w", id, err)
	}
	// Pods reach the same backends through several service addresses:
	// no per-connection timestamp offsets (see sysctl.TCPTimestamps).
	if err := netns.Do(path, func() error { return sysctl.New().Set(sysctl.TCPTimestamps, "2") }); err != nil {
		return nil, fmt.Errorf("network: add %s: %s: %w", id, sysctl.TCPTimestamps, err)
	}
	prefix, _ := b.subnet.Mask.Size()
	return &Attachment{
		ID:        id,
		NetnsPath: path,
		HostVeth:  hostName,
		IP:        addr.IP,
		Gateway:   b.gw,
		PrefixLen: prefix,
	}, nil
}

// ensureVeth makes the pair hostName (on the bridge, up, hairpin) and
// eth0 in the pod namespace exist. A half left behind is replaced. It
// reports whether it created the pair.
func (b *bridge) ensureVeth(h, ph *netlink.Handle, nsPath, hostName string) (created bool, err error) {
	br, err := h.LinkByName(b.cfg.BridgeName)
	if err != nil {
		return false, fmt.Errorf("bridge %s (Setup not done?): %w", b.cfg.BridgeName, err)
	}
	host, err := h.LinkByName(hostName)
	if err != nil && !isNotFound(err) {
		return false, err
	}
	pod, err := ph.LinkByName(PodInterface)
	if err != nil && !isNotFound(err) {
		return false, err
	}
	_, hostIsVeth := host.(*netlink.Veth)
	_, podIsVeth := pod.(*netlink.Veth)
	if host != nil && (!hostIsVeth || !podIsVeth) {
		if err := h.LinkDel(host); err != nil {
			return false, fmt.Errorf("remove stale %s: %w", hostName, err)
		}
		host = nil
		if pod, err = ph.LinkByName(PodInterface); err != nil && !isNotFound(err) {
			return false, err
		}
	}
	if host == nil && pod != nil {
		if err := ph.LinkDel(pod); err != nil {
			return false, fmt.Errorf("remove stale %s in pod: %w", PodInterface, err)
		}
	}
	if host == nil {
		ns, err := vnetns.GetFromPath(nsPath)
		if err != nil {
			return false, err
		}
		veth := netlink.NewVeth(netlink.LinkAttrs{Name: hostName, MTU: b.cfg.MTU, MasterIndex: br.Attrs().Index})
		veth.PeerName = PodInterface
		veth.PeerNamespace = netlink.NsFd(ns)
		veth.PeerMTU = uint32(b.cfg.MTU)
		err = h.LinkAdd(veth)
		ns.Close()
		if err != nil {
			return false, fmt.Errorf("create: %w", err)
		}
		created = true
		if host, err = h.LinkByName(hostName); err != nil {
			return created, err
		}
	} else if host.Attrs().MasterIndex != br.Attrs().Index {
		if err := h.LinkSetMasterByIndex(host, br.Attrs().Index); err != nil {
			return created, fmt.Errorf("attach to %s: %w", b.cfg.BridgeName, err)
		}
	}
	// Hairpin lets a pod reach itself through a service address that is
	// translated back to its own IP on the node.
	if err := h.LinkSetHairpin(host, true); err != nil {
		return created, fmt.Errorf("hairpin: %w", err)
	}
	if err := h.LinkSetUp(host); err != nil {
		return created, fmt.Errorf("up: %w", err)
	}
	return created, nil
}

// configurePod sets eth0's address, brings lo and eth0 up and points the
// default route at the bridge.
func configurePod(ph *netlink.Handle, addr *net.IPNet, gw net.IP) error {
	lo, err := ph.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := ph.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	eth, err := ph.LinkByName(PodInterface)
	if err != nil {
		return err
	}
	if err := setOnlyAddr(ph, eth, addr); err != nil {
		return err
	}
	if err := ph.LinkSetUp(eth); err != nil {
		return fmt.Errorf("%s up: %w", PodInterface, err)
	}
	def := &netlink.Route{
		LinkIndex: eth.Attrs().Index,
		Dst:       &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
		Gw:        gw,
	}
	if err := ph.RouteReplace(def); err != nil {
		return fmt.Errorf("default route via %s: %w", gw, err)
	}
	return nil
}

func (b *bridge) Del(ctx context.Context, id string) error {
	if err := validID(id); err != nil {
		return fmt.Errorf("network: del: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ipam == nil {
		return fmt.Errorf("network: del %s: %w", id, ErrNotSetUp)
	}
	var errs []error
	// The veth goes first: deleting the namespace would also destroy it,
	// but only later, asynchronously, in the kernel.
	h, err := b.hostHandle()
	if err != nil {
		errs = append(errs, err)
	} else {
		errs = append(errs, delLink(h, HostVethName(id)))
		h.Close()
	}
	errs = append(errs, netns.Delete(b.cfg.netnsPath(id)), b.ipam.Release(id))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("network: del %s: %w", id, err)
	}
	return nil
}

func (b *bridge) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ipam == nil {
		return nil, fmt.Errorf("network: list: %w", ErrNotSetUp)
	}
	ids := map[string]bool{}
	entries, err := os.ReadDir(b.cfg.NetnsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("network: list: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() && validID(e.Name()) == nil {
			ids[e.Name()] = true
		}
	}
	alloc, err := b.ipam.List()
	if err != nil {
		return nil, fmt.Errorf("network: list: %w", err)
	}
	for id := range alloc {
		ids[id] = true
	}
	out := make([]string, 0, len(ids))
	for id := range ids {
		out = append(out, id)
	}
	sort.Strings(out)
	return out, nil
}

func (b *bridge) SyncRoutes(ctx context.Context, routes []Route) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	want := map[string]*netlink.Route{}
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.To4() == nil || r.Via.To4() == nil {
			return fmt.Errorf("network: sync routes: route %v via %v is not IPv4", r.Dst, r.Via)
		}
		ones, bits := r.Dst.Mask.Size()
		if bits != 32 {
			return fmt.Errorf("network: sync routes: bad mask in %v", r.Dst)
		}
		dst := &net.IPNet{IP: r.Dst.IP.To4().Mask(r.Dst.Mask), Mask: net.CIDRMask(ones, 32)}
		if prev, dup := want[dst.String()]; dup && !prev.Gw.Equal(r.Via.To4()) {
			return fmt.Errorf("network: sync routes: %s wanted via both %s and %s", dst, prev.Gw, r.Via)
		}
		want[dst.String()] = &netlink.Route{
			Dst:      dst,
			Gw:       r.Via.To4(),
			Protocol: RouteProtocol,
			Table:    unix.RT_TABLE_MAIN,
		}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	h, err := b.hostHandle()
	if err != nil {
		return fmt.Errorf("network: sync routes: %w", err)
	}
	defer h.Close()
	filter := &netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}
	have, err := retryDump(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return fmt.Errorf("network: sync routes: list: %w", err)
	}
	var errs []error
	for _, r := range have {
		if r.Dst == nil {
			continue
		}
		if w, ok := want[r.Dst.String()]; ok && w.Gw.Equal(r.Gw) {
			delete(want, r.Dst.String())
			continue
		}
		if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("remove %s via %s: %w", r.Dst, r.Gw, err))
		}
	}
	for _, r := range want {
		if err := h.RouteReplace(r); err != nil {
			errs = append(errs, fmt.Errorf("install %s via %s: %w", r.Dst, r.Gw, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("network: sync routes: %w", err)
	}
	return nil
}

func (b *bridge) hostHandle() (*netlink.Handle, error) {
	if b.cfg.HostNetns == "" {
		return netlink.NewHandle(unix.NETLINK_ROUTE)
	}
	return handleAt(b.cfg.HostNetns)
}

// handleAt opens a netlink handle whose socket lives in the namespace at
// path; the socket keeps it, so the namespace fd is closed right away.
func handleAt(path string) (*netlink.Handle, error) {
	ns, err := vnetns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open namespace %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", path, err)
	}
	return h, nil
}

func delLink(h *netlink.Handle, name string) error {
	link, err := h.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := h.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

// retryDump repeats a netlink dump the kernel reports as interrupted by a
// concurrent change; the partial result would be wrong, not just stale.
func retryDump[T any](f func() ([]T, error)) ([]T, error) {
	for i := 0; ; i++ {
		res, err := f()
		if errors.Is(err, netlink.ErrDumpInterrupted) && i < 5 {
			continue
		}
		return res, err
	}
}

func randomMAC() (net.HardwareAddr, error) {
	mac := make(net.HardwareAddr, 6)
	if _, err := rand.Read(mac); err != nil {
		return nil, err
	}
	mac[0] = (mac[0] &^ 0x01) | 0x02 // unicast, locally administered
	return mac, nil
}

func nextIP(ip net.IP) net.IP {
	out := append(net.IP(nil), ip.To4()...)
	for i := len(out) - 1; i >= 0; i-- {
		out[i]++
		if out[i] != 0 {
			break
		}
	}
	return out
}
