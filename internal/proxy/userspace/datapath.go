//go:build linux

// Package userspace is the service proxy's userspace mode (seed 000's
// first mode, issue 8): every service port gets listeners of a Go L4 proxy
// (package l4) on this node, which pick a backend per connection with an
// IPVS-like scheduler (package sched) and retry another when one refuses;
// the kernel only redirects service traffic to those listeners.
//
// Table "ip portal-userspace" (see docs/proxy-userspace.md):
//
//	map svc-ports   ip daddr . l4proto . dport : proxy port  (ClusterIPs, externalIPs, load-balancer IPs)
//	map node-ports  l4proto . dport : proxy port             (NodePorts, on addresses of this node)
//	set proxy-ports l4proto . proxy port
//
// prerouting and output redirect matching packets (`redirect to :port`,
// so a pod's connection arrives on the bridge address and a local one on
// 127.0.0.1; conntrack undoes it on the replies); input rejects packets to
// a proxy port that were not redirected, so nobody reaches the listeners
// behind the rules' back; and, as in the kernel modes, a new connection to
// an address of the service CIDRs that is no service port is rejected, so
// nothing leaks to a default route.
//
// A service port has one listener for cluster traffic and, when it is
// reachable from outside (NodePort, externalIPs, load-balancer IPs), one
// for external traffic with its own endpoints (externalTrafficPolicy
// Local). Backends see the proxy's address, not the client's: a
// userspace proxy opens its own connection to them. SCTP service ports are
// not served (Go has no SCTP sockets); they are logged once.
package userspace

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
	"sigs.k8s.io/knftables"

	"github.com/portal-net/portal/internal/proxy/dataplane"
	"github.com/portal-net/portal/internal/proxy/userspace/l4"
	"github.com/portal-net/portal/internal/proxy/userspace/sched"
	"github.com/prometheus/client_golang/prometheus"
)

// TableName is the nftables table of the userspace mode.
const TableName = "portal-userspace"

// Options configure a Datapath.
type Options struct {
	// Scheduler is the default scheduler (sched.Names; default rr).
	Scheduler string
	// Grace is how long connections to a removed service port may run on
	// (default 30s).
	Grace time.Duration
	// ListenAddress is where the proxy listeners bind (default 0.0.0.0:
	// redirected traffic arrives on the address of the interface it came
	// in by, or 127.0.0.1).
	ListenAddress netip.Addr
	// Dial connects to backends (default a net.Dialer); tests inject one.
	Dial l4.DialFunc
}

// Datapath is the userspace mode's dataplane.Interface.
type Datapath struct {
	nft  knftables.Interface
	opts Options

	mu      sync.Mutex
	ctx     context.Context // the proxies' lifetime
	ports   map[string]*servicePort
	sctpLog map[string]bool
	// applied are the elements in the table after the last successful
	// sync; nil: the next sync rewrites the table.
	applied map[string]*knftables.Element
}

// servicePort is one service port's listeners and what they were built
// from.
type servicePort struct {
	sp       dataplane.ServicePort
	cluster  *listener
	external *listener // nil when not reachable from outside
}

// listener is one L4 proxy and its port.
type listener struct {
	port    uint16
	proto   string // tcp|udp
	sched   string
	timeout time.Duration
	proxy   l4Proxy
	tcp     *l4.TCPProxy // proxy, when TCP: only TCP has a graceful Shutdown
	stop    context.CancelFunc
}

// l4Proxy is what the TCP and UDP proxies share.
type l4Proxy interface {
	SetBackends([]sched.Backend)
	Stats() l4.Stats
	Close() error
}

// New returns the userspace datapath; its proxies live until ctx ends.
func New(ctx context.Context, nft knftables.Interface, opts Options) (*Datapath, error) {
	if opts.Scheduler == "" {
		opts.Scheduler = sched.Default
	}
	if _, err := sched.New(opts.Scheduler); err != nil {
		return nil, err
	}
	if opts.Grace <= 0 {
		opts.Grace = 30 * time.Second
	}
	if !opts.ListenAddress.IsValid() {
		opts.ListenAddress = netip.IPv4Unspecified()
	}
	d := &Datapath{nft: nft, opts: opts, ctx: ctx, ports: map[string]*servicePort{}, sctpLog: map[string]bool{}}
	context.AfterFunc(ctx, d.closeAll)
	return d, nil
}

// Sync implements dataplane.Interface: only changed elements are written.
func (d *Datapath) Sync(ctx context.Context, s dataplane.State) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sync(ctx, s)
}

// FullSync implements dataplane.Interface: the table is rewritten.
func (d *Datapath) FullSync(ctx context.Context, s dataplane.State) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.applied = nil
	return d.sync(ctx, s)
}

func (d *Datapath) sync(ctx context.Context, s dataplane.State) error {
	if d.ctx.Err() != nil {
		return d.ctx.Err()
	}
	seen := map[string]bool{}
	var errs []error
	for i := range s.Services {
		sp := &s.Services[i]
		if strings.EqualFold(sp.Protocol, "sctp") {
			if !d.sctpLog[sp.Name] {
				klog.InfoS("The userspace proxy does not serve SCTP service ports", "servicePort", sp.Name)
				d.sctpLog[sp.Name] = true
			}
			continue
		}
		seen[sp.Name] = true
		if err := d.apply(sp); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", sp.Name, err))
		}
	}
	for name, p := range d.ports {
		if !seen[name] {
			d.retire(p)
			delete(d.ports, name)
		}
	}
	if err := d.program(ctx, s); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// apply makes one service port's listeners match sp.
func (d *Datapath) apply(sp *dataplane.ServicePort) error {
	p := d.ports[sp.Name]
	if p != nil && p.cluster != nil && p.sp.Equal(sp) {
		return nil // as applied: no scheduler update, no log again
	}
	if p == nil {
		p = &servicePort{}
		d.ports[sp.Name] = p
	}
	proto := strings.ToLower(sp.Protocol)
	name := sp.Scheduler
	if name == "" {
		name = d.opts.Scheduler
	}
	if _, err := sched.New(name); err != nil {
		klog.InfoS("Unknown scheduler in the service's annotation; using the default", "servicePort", sp.Name, "scheduler", name, "default", d.opts.Scheduler)
		name = d.opts.Scheduler
	}
	var timeout time.Duration
	if sp.Affinity {
		timeout = sp.AffinityTimeout
		if timeout <= 0 {
			timeout = dataplane.DefaultAffinityTimeout
		}
	}
	var err error
	if p.cluster, err = d.ensure(p.cluster, proto, name, timeout, sp.Endpoints, sp.Weights); err != nil {
		return err
	}
	if sp.NodePort != 0 || len(sp.External) > 0 || len(sp.LoadBalancerIPs) > 0 {
		eps := sp.ExternalEndpoints
		if eps == nil {
			eps = sp.Endpoints
		}
		if p.external, err = d.ensure(p.external, proto, name, timeout, eps, sp.Weights); err != nil {
			return err
		}
	} else if p.external != nil {
		d.retireListener(p.external)
		p.external = nil
	}
	p.sp = *sp
	return nil
}

// ensure returns l updated to eps, or a new listener when there is none
// or its protocol, scheduler or affinity changed (the old one retires).
func (d *Datapath) ensure(l *listener, proto, schedName string, affinity time.Duration, eps []netip.AddrPort, weights map[netip.AddrPort]int) (*listener, error) {
	if l != nil && (l.proto != proto || l.sched != schedName || l.timeout != affinity) {
		d.retireListener(l)
		l = nil
	}
	if l == nil {
		var err error
		if l, err = d.listen(proto, schedName, affinity); err != nil {
			return nil, err
		}
	}
	backends := make([]sched.Backend, len(eps))
	for i, ep := range eps {
		w, ok := weights[ep]
		if !ok {
			w = sched.DefaultWeight
		}
		backends[i] = sched.Backend{Addr: ep, Weight: w}
	}
	l.proxy.SetBackends(backends)
	return l, nil
}

func (d *Datapath) listen(proto, schedName string, affinity time.Duration) (*listener, error) {
	s, err := sched.New(schedName)
	if err != nil {
		return nil, err
	}
	cfg := l4.Config{Scheduler: s, AffinityTimeout: affinity, Dial: d.opts.Dial}
	ctx, stop := context.WithCancel(d.ctx)
	addr := netip.AddrPortFrom(d.opts.ListenAddress, 0).String()
	l := &listener{proto: proto, sched: schedName, timeout: affinity, stop: stop}
	switch proto {
	case "tcp":
		ln, err := net.Listen("tcp4", addr)
		if err != nil {
			stop()
			return nil, err
		}
		if l.tcp, err = l4.NewTCPProxy(ln, l4.TCPConfig{Config: cfg, OriginalDst: originalDst}); err != nil {
			ln.Close()
			stop()
			return nil, err
		}
		l.port, l.proxy = uint16(ln.Addr().(*net.TCPAddr).Port), l.tcp
		go func() { _ = l.tcp.Serve(ctx) }()
	case "udp":
		pc, err := net.ListenPacket("udp4", addr)
		if err != nil {
			stop()
			return nil, err
		}
		udp, err := l4.NewUDPProxy(pc, l4.UDPConfig{Config: cfg})
		if err != nil {
			pc.Close()
			stop()
			return nil, err
		}
		l.port, l.proxy = uint16(pc.LocalAddr().(*net.UDPAddr).Port), udp
		go func() { _ = udp.Serve(ctx) }()
	default:
		stop()
		return nil, fmt.Errorf("protocol %q", proto)
	}
	return l, nil
}

// retire stops a removed service port's listeners.
func (d *Datapath) retire(p *servicePort) {
	d.retireListener(p.cluster)
	d.retireListener(p.external)
}

// retireListener stops accepting now and lets open TCP connections run
// for the grace period (UDP sessions end at once).
func (d *Datapath) retireListener(l *listener) {
	if l == nil {
		return
	}
	if l.tcp != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), d.opts.Grace)
			defer cancel()
			_ = l.tcp.Shutdown(ctx)
			l.stop()
		}()
		return
	}
	_ = l.proxy.Close()
	l.stop()
}

func (d *Datapath) closeAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, p := range d.ports {
		for _, l := range []*listener{p.cluster, p.external} {
			if l != nil {
				_ = l.proxy.Close()
			}
		}
		delete(d.ports, name)
	}
}

// Stats are the per-backend counters of one service port's listeners
// (cluster, then external traffic).
func (d *Datapath) Stats(servicePort string) []l4.Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.ports[servicePort]
	if p == nil {
		return nil
	}
	var out []l4.Stats
	for _, l := range []*listener{p.cluster, p.external} {
		if l != nil {
			out = append(out, l.proxy.Stats())
		}
	}
	return out
}

// ListenPort is the port of a service port's cluster listener (0: none).
func (d *Datapath) ListenPort(servicePort string) uint16 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p := d.ports[servicePort]; p != nil && p.cluster != nil {
		return p.cluster.port
	}
	return 0
}

// program brings the table in step with the current ports: the first time
// (and after a failure) the whole table in one transaction, afterwards
// only the elements that changed, so a new service costs a few lines of
// nft, not a rewrite.
func (d *Datapath) program(ctx context.Context, s dataplane.State) error {
	want := d.elements(s)
	tx := d.nft.NewTransaction()
	if d.applied == nil {
		structure(tx)
		for _, name := range []string{"svc-ports", "node-ports"} {
			tx.Flush(&knftables.Map{Name: name})
		}
		for _, name := range []string{"proxy-ports", "svc-keys", "service-cidrs", "node-ips"} {
			tx.Flush(&knftables.Set{Name: name})
		}
		for _, k := range slices.Sorted(maps.Keys(want)) {
			tx.Add(want[k])
		}
	} else {
		for _, k := range slices.Sorted(maps.Keys(d.applied)) {
			if w, ok := want[k]; !ok || !slices.Equal(w.Value, d.applied[k].Value) {
				tx.Delete(&knftables.Element{Set: d.applied[k].Set, Map: d.applied[k].Map, Key: d.applied[k].Key})
			}
		}
		for _, k := range slices.Sorted(maps.Keys(want)) {
			if a, ok := d.applied[k]; !ok || !slices.Equal(a.Value, want[k].Value) {
				tx.Add(want[k])
			}
		}
		if tx.NumOperations() == 0 {
			return nil
		}
	}
	if err := d.nft.Run(ctx, tx); err != nil {
		d.applied = nil // the next sync rewrites everything
		return err
	}
	d.applied = want
	return nil
}

// structure adds the table, its sets and maps, and rewrites its chains.
func structure(tx *knftables.Transaction) {
	tx.Add(&knftables.Table{})
	tx.Add(&knftables.Map{Name: "svc-ports", Type: "ipv4_addr . inet_proto . inet_service : inet_service"})
	tx.Add(&knftables.Map{Name: "node-ports", Type: "inet_proto . inet_service : inet_service"})
	tx.Add(&knftables.Set{Name: "proxy-ports", Type: "inet_proto . inet_service"})
	tx.Add(&knftables.Set{Name: "svc-keys", Type: "ipv4_addr . inet_proto . inet_service"})
	tx.Add(&knftables.Set{Name: "service-cidrs", Type: "ipv4_addr", Flags: []knftables.SetFlag{knftables.IntervalFlag}})
	tx.Add(&knftables.Set{Name: "node-ips", Type: "ipv4_addr"})
	for _, c := range []struct{ name, hook string }{{"nat-prerouting", "prerouting"}, {"nat-output", "output"}} {
		tx.Add(&knftables.Chain{Name: c.name, Type: knftables.PtrTo(knftables.NATType),
			Hook: knftables.PtrTo(knftables.BaseChainHook(c.hook)), Priority: knftables.PtrTo(knftables.DNATPriority)})
		tx.Flush(&knftables.Chain{Name: c.name})
		for _, p := range []string{"tcp", "udp"} {
			tx.Add(&knftables.Rule{Chain: c.name, Rule: "meta l4proto " + p + " redirect to : ip daddr . meta l4proto . " + p + " dport map @svc-ports"})
			tx.Add(&knftables.Rule{Chain: c.name, Rule: "ip daddr @node-ips meta l4proto " + p + " redirect to : meta l4proto . " + p + " dport map @node-ports"})
		}
	}
	for _, c := range []struct{ name, hook string }{{"filter-prerouting", "prerouting"}, {"filter-output", "output"}} {
		tx.Add(&knftables.Chain{Name: c.name, Type: knftables.PtrTo(knftables.FilterType),
			Hook: knftables.PtrTo(knftables.BaseChainHook(c.hook)), Priority: knftables.PtrTo(knftables.DNATPriority + "-10")})
		tx.Flush(&knftables.Chain{Name: c.name})
		// New connections to an address of the service CIDRs that is no
		// service port: rejected at once, never routed on.
		tx.Add(&knftables.Rule{Chain: c.name, Rule: "ct state new ip daddr @service-cidrs meta l4proto tcp ip daddr . meta l4proto . tcp dport != @svc-keys reject with tcp reset"})
		tx.Add(&knftables.Rule{Chain: c.name, Rule: "ct state new ip daddr @service-cidrs meta l4proto udp ip daddr . meta l4proto . udp dport != @svc-keys reject"})
		tx.Add(&knftables.Rule{Chain: c.name, Rule: "ct state new ip daddr @service-cidrs meta l4proto != { tcp, udp } reject"})
	}
	tx.Add(&knftables.Chain{Name: "filter-input", Type: knftables.PtrTo(knftables.FilterType),
		Hook: knftables.PtrTo(knftables.InputHook), Priority: knftables.PtrTo(knftables.FilterPriority)})
	tx.Flush(&knftables.Chain{Name: "filter-input"})
	// The listeners take only what the rules redirected to them.
	tx.Add(&knftables.Rule{Chain: "filter-input", Rule: "ct status dnat accept"})
	tx.Add(&knftables.Rule{Chain: "filter-input", Rule: "meta l4proto tcp meta l4proto . tcp dport @proxy-ports reject with tcp reset"})
	tx.Add(&knftables.Rule{Chain: "filter-input", Rule: "meta l4proto udp meta l4proto . udp dport @proxy-ports reject"})
}

// elements are the set and map elements the current ports need, by a key
// naming the container and the element's key.
func (d *Datapath) elements(s dataplane.State) map[string]*knftables.Element {
	out := map[string]*knftables.Element{}
	add := func(e *knftables.Element) {
		out[e.Set+e.Map+"|"+strings.Join(e.Key, " ")] = e
	}
	for _, c := range s.ServiceCIDRs {
		if c.Addr().Is4() {
			add(&knftables.Element{Set: "service-cidrs", Key: []string{c.Masked().String()}})
		}
	}
	for _, ip := range s.NodeIPs {
		if ip.Is4() && !ip.IsLoopback() {
			add(&knftables.Element{Set: "node-ips", Key: []string{ip.String()}})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(d.ports)) {
		p := d.ports[name]
		proto := p.cluster.proto
		port := strconv.Itoa(int(p.sp.Port))
		add(&knftables.Element{Set: "proxy-ports", Key: []string{proto, strconv.Itoa(int(p.cluster.port))}})
		for _, vip := range p.sp.VIPs {
			add(&knftables.Element{Map: "svc-ports", Key: []string{vip.String(), proto, port}, Value: []string{strconv.Itoa(int(p.cluster.port))}})
			add(&knftables.Element{Set: "svc-keys", Key: []string{vip.String(), proto, port}})
		}
		if p.external == nil {
			continue
		}
		ext := strconv.Itoa(int(p.external.port))
		add(&knftables.Element{Set: "proxy-ports", Key: []string{proto, ext}})
		for _, ip := range slices.Concat(p.sp.External, p.sp.LoadBalancerIPs) {
			if ip.Is4() {
				add(&knftables.Element{Map: "svc-ports", Key: []string{ip.String(), proto, port}, Value: []string{ext}})
				add(&knftables.Element{Set: "svc-keys", Key: []string{ip.String(), proto, port}})
			}
		}
		if np := p.sp.NodePort; np != 0 {
			k := "node-ports|" + proto + " " + strconv.Itoa(int(np))
			if _, taken := out[k]; taken {
				continue // two service ports on one node port: the API prevents it
			}
			add(&knftables.Element{Map: "node-ports", Key: []string{proto, strconv.Itoa(int(np))}, Value: []string{ext}})
		}
	}
	return out
}

// Cleanup removes the userspace mode's table (when another mode takes
// over the node).
func Cleanup(ctx context.Context, nft knftables.Interface) error {
	tx := nft.NewTransaction()
	tx.Delete(&knftables.Table{})
	err := nft.Run(ctx, tx)
	if knftables.IsNotFound(err) {
		return nil
	}
	return err
}

// originalDst is the address a redirected connection was sent to
// (SO_ORIGINAL_DST from conntrack); zero when it cannot be read.
func originalDst(c net.Conn) netip.AddrPort {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return netip.AddrPort{}
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return netip.AddrPort{}
	}
	var out netip.AddrPort
	_ = rc.Control(func(fd uintptr) {
		// struct sockaddr_in, read through the 16-byte option buffer
		// unix offers for it.
		m, err := unix.GetsockoptIPv6Mreq(int(fd), unix.IPPROTO_IP, unix.SO_ORIGINAL_DST)
		if err != nil {
			return
		}
		b := m.Multiaddr
		out = netip.AddrPortFrom(netip.AddrFrom4([4]byte{b[4], b[5], b[6], b[7]}), uint16(b[2])<<8|uint16(b[3]))
	})
	return out
}

// Metric descriptions of the userspace mode's per-backend counters.
var (
	descActive = prometheus.NewDesc("portal_userspace_backend_active_connections",
		"Connections (UDP: sessions) open from the userspace proxy to a backend.", []string{"service_port", "traffic", "backend"}, nil)
	descTotal = prometheus.NewDesc("portal_userspace_backend_connections_total",
		"Connections the userspace proxy opened to a backend.", []string{"service_port", "traffic", "backend"}, nil)
	descFailures = prometheus.NewDesc("portal_userspace_backend_failures_total",
		"Failed connection attempts of the userspace proxy to a backend (refused, unreachable, timed out).", []string{"service_port", "traffic", "backend"}, nil)
	descDropped = prometheus.NewDesc("portal_userspace_dropped_total",
		"Clients the userspace proxy could not serve: no backend answered, or too many UDP sessions.", []string{"service_port", "traffic"}, nil)
)

// Describe implements prometheus.Collector.
func (d *Datapath) Describe(ch chan<- *prometheus.Desc) {
	for _, desc := range []*prometheus.Desc{descActive, descTotal, descFailures, descDropped} {
		ch <- desc
	}
}

// Collect implements prometheus.Collector: the counters of every service
// port's listeners, per backend (traffic "cluster" or "external").
func (d *Datapath) Collect(ch chan<- prometheus.Metric) {
	d.mu.Lock()
	type one struct {
		name, traffic string
		stats         l4.Stats
	}
	var all []one
	for name, p := range d.ports {
		for _, l := range []struct {
			traffic string
			l       *listener
		}{{"cluster", p.cluster}, {"external", p.external}} {
			if l.l != nil {
				all = append(all, one{name, l.traffic, l.l.proxy.Stats()})
			}
		}
	}
	d.mu.Unlock()
	for _, o := range all {
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(o.stats.Dropped), o.name, o.traffic)
		for _, b := range o.stats.Backends {
			be := b.Addr.String()
			ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(b.Active), o.name, o.traffic, be)
			ch <- prometheus.MustNewConstMetric(descTotal, prometheus.CounterValue, float64(b.Total), o.name, o.traffic, be)
			ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(b.Failures), o.name, o.traffic, be)
		}
	}
}
