package speaker

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/portal-net/portal/internal/feed"
	"github.com/portal-net/portal/internal/lb/l2"
)

// LabelExcludeFromLB is the well-known node label that keeps a node out of
// external load balancers.
const LabelExcludeFromLB = "node.kubernetes.io/exclude-from-external-load-balancers"

// Members is the liveness the speaker decides on (package members).
type Members interface {
	SetPeers(map[string]netip.Addr)
	SetReady(bool)
	Live() []string
	Changes() <-chan struct{}
	Run(ctx context.Context) error
}

// Announcer answers ARP/NDP on one interface (package l2).
type Announcer interface {
	Announce(netip.Addr) error
	// Reannounce sends one more gratuitous frame for an announced address.
	Reannounce(netip.Addr) bool
	Withdraw(netip.Addr)
	Close() error
}

// Config configures a Speaker.
type Config struct {
	NodeName string
	// NodeIP picks the peers' addresses of the same family from the
	// Node objects, and the interface when no other fits.
	NodeIP netip.Addr
	// Interface, when set, is where every address is announced;
	// otherwise the interface with a subnet holding the address, or the
	// one holding NodeIP.
	Interface string
	// Class is the loadBalancerClass served besides none.
	Class   string
	Members Members
	// NewAnnouncer opens an announcer on an interface (nil: l2.New).
	NewAnnouncer func(iface string) (Announcer, error)
	// InterfaceFor overrides the interface choice (tests); by default
	// each decision reads the node's interfaces once for all addresses.
	InterfaceFor func(ip netip.Addr) (string, error)
	Recorder     record.EventRecorder
	// Resync re-decides even without a change (default 10 s), so an
	// interface that appeared later is used.
	Resync time.Duration
}

// Speaker announces the LoadBalancer addresses this node wins.
type Speaker struct {
	cfg      Config
	services corelisters.ServiceLister
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced
	kick     chan struct{}

	mu sync.Mutex
	// ready is, per service key, per EndpointSlice name, the nodes with
	// a ready endpoint.
	ready map[string]map[string][]string

	// Owned by Run's goroutine.
	announcers map[string]Announcer
	current    map[netip.Addr]string // address → interface
	owners     map[netip.Addr][]string
	lastLive   []string
}

// New registers handlers on f's Service and Node informers and on slices
// (before either starts); the caller starts them.
func New(cfg Config, f informers.SharedInformerFactory, slices feed.Source) (*Speaker, error) {
	if cfg.Members == nil {
		return nil, fmt.Errorf("speaker: no members")
	}
	if cfg.NewAnnouncer == nil {
		cfg.NewAnnouncer = func(iface string) (Announcer, error) { return l2.New(l2.Config{Interface: iface}) }
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 10 * time.Second
	}
	s := &Speaker{
		cfg:        cfg,
		services:   f.Core().V1().Services().Lister(),
		nodes:      f.Core().V1().Nodes().Lister(),
		kick:       make(chan struct{}, 1),
		ready:      map[string]map[string][]string{},
		announcers: map[string]Announcer{},
		current:    map[netip.Addr]string{},
		owners:     map[netip.Addr][]string{},
	}
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.poke() },
		UpdateFunc: func(any, any) { s.poke() },
		DeleteFunc: func(any) { s.poke() },
	}
	for _, inf := range []cache.SharedIndexInformer{f.Core().V1().Services().Informer(), f.Core().V1().Nodes().Informer()} {
		reg, err := inf.AddEventHandler(h)
		if err != nil {
			return nil, err
		}
		s.synced = append(s.synced, reg.HasSynced)
	}
	sliceSynced, err := slices.Subscribe(s.sliceChanged)
	if err != nil {
		return nil, err
	}
	s.synced = append(s.synced, sliceSynced)
	return s, nil
}

func (s *Speaker) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Speaker) sliceChanged(prev, cur any) {
	es, ok := cur.(*discoveryv1.EndpointSlice)
	if !ok {
		es, ok = prev.(*discoveryv1.EndpointSlice)
		if !ok {
			return
		}
	}
	svc := es.Labels[discoveryv1.LabelServiceName]
	if svc == "" {
		return
	}
	key := es.Namespace + "/" + svc
	var readyNodes []string
	if cur != nil {
		for _, ep := range es.Endpoints {
			if ep.NodeName != nil && (ep.Conditions.Ready == nil || *ep.Conditions.Ready) && !slices.Contains(readyNodes, *ep.NodeName) {
				readyNodes = append(readyNodes, *ep.NodeName)
			}
		}
	}
	s.mu.Lock()
	if len(readyNodes) == 0 {
		delete(s.ready[key], es.Name)
		if len(s.ready[key]) == 0 {
			delete(s.ready, key)
		}
	} else {
		if s.ready[key] == nil {
			s.ready[key] = map[string][]string{}
		}
		s.ready[key][es.Name] = readyNodes
	}
	s.mu.Unlock()
	s.poke()
}

// Run announces until ctx ends, then withdraws everything (peers take
// over at once: the members' leaving heartbeat tells them).
func (s *Speaker) Run(ctx context.Context) {
	memberCtx, stopMembers := context.WithCancel(context.Background())
	membersDone := make(chan struct{})
	go func() {
		defer close(membersDone)
		if err := s.cfg.Members.Run(memberCtx); err != nil {
			klog.ErrorS(err, "Load-balancer heartbeats stopped")
		}
	}()
	defer func() {
		// Withdraw first, then say goodbye: never two announcers, at
		// worst a moment with none.
		s.withdrawAll()
		stopMembers()
		<-membersDone
	}()
	if !cache.WaitForCacheSync(ctx.Done(), s.synced...) {
		return
	}
	s.refreshPeers()
	s.cfg.Members.SetReady(true)
	t := time.NewTicker(s.cfg.Resync)
	defer t.Stop()
	for {
		s.sync()
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-s.cfg.Members.Changes():
		case <-t.C:
		}
	}
}

func (s *Speaker) refreshPeers() (excluded map[string]bool) {
	nodes, err := s.nodes.List(labels.Everything())
	if err != nil {
		return nil
	}
	peers := map[string]netip.Addr{}
	excluded = map[string]bool{}
	for _, n := range nodes {
		if _, ok := n.Labels[LabelExcludeFromLB]; ok {
			excluded[n.Name] = true
		}
		if n.Name == s.cfg.NodeName {
			continue
		}
		for _, a := range n.Status.Addresses {
			ip, err := netip.ParseAddr(a.Address)
			if a.Type == corev1.NodeInternalIP && err == nil && ip.Is4() == s.cfg.NodeIP.Is4() {
				peers[n.Name] = ip
				break
			}
		}
	}
	s.cfg.Members.SetPeers(peers)
	return excluded
}

func (s *Speaker) ours(svc *corev1.Service) bool {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	return svc.Spec.LoadBalancerClass == nil || (s.cfg.Class != "" && *svc.Spec.LoadBalancerClass == s.cfg.Class)
}

// sync re-decides and applies the difference.
func (s *Speaker) sync() {
	excluded := s.refreshPeers()
	list, err := s.services.List(labels.Everything())
	if err != nil {
		return
	}
	var svcs []Service
	byKey := map[string]*corev1.Service{}
	s.mu.Lock()
	for _, svc := range list {
		if !s.ours(svc) {
			continue
		}
		d := Service{Key: svc.Namespace + "/" + svc.Name, LocalOnly: svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal}
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if ip, err := netip.ParseAddr(in.IP); err == nil {
				d.IPs = append(d.IPs, ip.Unmap())
			}
		}
		if len(d.IPs) == 0 {
			continue
		}
		if d.LocalOnly {
			d.ReadyNodes = map[string]bool{}
			for _, ns := range s.ready[d.Key] {
				for _, n := range ns {
					d.ReadyNodes[n] = true
				}
			}
		}
		svcs = append(svcs, d)
		byKey[d.Key] = svc
	}
	s.mu.Unlock()
	live := s.cfg.Members.Live()
	want := Assign(s.cfg.NodeName, live, excluded, svcs)
	// When the live set changes (a node came back after a partition,
	// during which it may have announced beside us), the addresses we
	// keep get one more gratuitous frame, so clients that followed the
	// other node come back.
	liveChanged := !slices.Equal(live, s.lastLive)
	s.lastLive = live

	for ip, iface := range s.current {
		if _, keep := want[ip]; !keep {
			s.announcers[iface].Withdraw(ip)
			delete(s.current, ip)
			delete(s.owners, ip)
			klog.InfoS("Stopped announcing a load-balancer address", "address", ip, "interface", iface)
		}
	}
	choose := s.cfg.InterfaceFor
	if choose == nil && len(want) > 0 {
		links, err := readLinks()
		choose = func(ip netip.Addr) (string, error) {
			if err != nil && s.cfg.Interface == "" {
				return "", err
			}
			return links.pick(s.cfg.Interface, ip, s.cfg.NodeIP)
		}
	}
	for _, ip := range slices.SortedFunc(maps.Keys(want), netip.Addr.Compare) {
		iface, err := choose(ip)
		if err != nil {
			klog.ErrorS(err, "No interface to announce a load-balancer address on", "address", ip)
			continue
		}
		if old, ok := s.current[ip]; ok && old != iface {
			s.announcers[old].Withdraw(ip)
			delete(s.current, ip)
		}
		if _, ok := s.current[ip]; ok && liveChanged {
			s.announcers[iface].Reannounce(ip)
		}
		if _, ok := s.current[ip]; !ok {
			ann, err := s.announcer(iface)
			if err == nil {
				err = ann.Announce(ip)
			}
			if err != nil {
				klog.ErrorS(err, "Announcing a load-balancer address", "address", ip, "interface", iface)
				continue
			}
			s.current[ip] = iface
			klog.InfoS("Announcing a load-balancer address", "address", ip, "interface", iface, "services", want[ip])
		}
		// An event for each service that newly has this node as its
		// announcer for ip.
		for _, key := range want[ip] {
			if slices.Contains(s.owners[ip], key) {
				continue
			}
			if svc := byKey[key]; svc != nil && s.cfg.Recorder != nil {
				proto := "ARP"
				if ip.Is6() {
					proto = "NDP"
				}
				s.cfg.Recorder.Eventf(svc, corev1.EventTypeNormal, "AddressAnnounced", "%s announced by node %s on %s (%s)", ip, s.cfg.NodeName, iface, proto)
			}
		}
		s.owners[ip] = want[ip]
	}
}

func (s *Speaker) announcer(iface string) (Announcer, error) {
	if a := s.announcers[iface]; a != nil {
		return a, nil
	}
	a, err := s.cfg.NewAnnouncer(iface)
	if err != nil {
		return nil, err
	}
	s.announcers[iface] = a
	return a, nil
}

func (s *Speaker) withdrawAll() {
	for ip, iface := range s.current {
		s.announcers[iface].Withdraw(ip)
	}
	for _, a := range s.announcers {
		_ = a.Close()
	}
	clear(s.current)
	clear(s.owners)
	clear(s.announcers)
}

// link is an interface that can answer ARP, with its addresses.
type link struct {
	name     string
	prefixes []netip.Prefix
}

type links []link

// readLinks lists the up, non-loopback interfaces and their addresses,
// leaving out the pod bridge.
func readLinks() (links, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out links
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagLoopback != 0 || ifc.Flags&net.FlagUp == 0 || strings.HasPrefix(ifc.Name, "portal") {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		l := link{name: ifc.Name}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if p, ok := netip.AddrFromSlice(ipn.IP); ok {
					ones, _ := ipn.Mask.Size()
					l.prefixes = append(l.prefixes, netip.PrefixFrom(p.Unmap(), ones))
				}
			}
		}
		out = append(out, l)
	}
	return out, nil
}

// pick chooses the interface to announce ip on: the fixed one, else the
// first (by index) with a subnet holding ip, else the one holding nodeIP.
func (ls links) pick(fixed string, ip, nodeIP netip.Addr) (string, error) {
	if fixed != "" {
		return fixed, nil
	}
	var byNodeIP string
	for _, l := range ls {
		for _, p := range l.prefixes {
			if p.Contains(ip) {
				return l.name, nil
			}
			if p.Addr() == nodeIP && byNodeIP == "" {
				byNodeIP = l.name
			}
		}
	}
	if byNodeIP != "" {
		return byNodeIP, nil
	}
	return "", fmt.Errorf("no interface has a subnet holding %s or the node address %s (set --lb-interface)", ip, nodeIP)
}
