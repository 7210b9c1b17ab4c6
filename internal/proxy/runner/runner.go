package runner

import (
	"context"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/portal-net/portal/internal/feed"
	"github.com/portal-net/portal/internal/proxy"
	"github.com/portal-net/portal/internal/proxy/dataplane"
	"github.com/portal-net/portal/internal/proxy/healthcheck"
	"github.com/portal-net/portal/internal/sys/conntrack"
	"github.com/portal-net/portal/internal/sys/memtrim"
)

// Config of a Runner.
type Config struct {
	NodeName string
	// EndpointSlices, when set, feeds the EndpointSlices instead of the
	// informer factory's informer (the agent's feed keeps no copy of
	// them; see internal/feed).
	EndpointSlices feed.Source
	// NodeIPs are the addresses NodePorts answer on.
	NodeIPs      []netip.Addr
	ServiceCIDRs []netip.Prefix
	// ClusterCIDR is the pod network of the whole cluster (traffic from
	// outside it to a ClusterIP is masqueraded).
	ClusterCIDR netip.Prefix
	// SyncPeriod forces a sync even without changes; MinSyncPeriod
	// spaces the syncs after changes. A periodic sync is a full one
	// (rewriting everything, repairing what was changed behind our back)
	// once FullSyncPeriod (default DefaultFullSyncPeriod) has passed since
	// the last full one, and a cheap partial one otherwise.
	SyncPeriod, MinSyncPeriod, FullSyncPeriod time.Duration
	// TopologyKeys reads spec.topologyKeys (not in k8s.io/api's Service).
	TopologyKeys func(*v1.Service) []string
	Datapath     dataplane.Interface
	// Conntrack clears stale UDP/SCTP flows; nil skips it.
	Conntrack conntrack.Interface
	// Health, ServiceHealth and Metrics are told about queued changes and
	// syncs; each is optional.
	Health        *healthcheck.ProxyHealth
	ServiceHealth *healthcheck.ServiceHealthServer
	Metrics       *healthcheck.Metrics
}

// Runner is the proxy's control loop on one node.
type Runner struct {
	cfg     Config
	tracker *proxy.Tracker
	nodes   corelisters.NodeLister
	kick    chan struct{}
	// handled says when every handler has seen the informers' initial
	// lists: syncing earlier would program (and clear conntrack for) a
	// partial state, breaking services and flows that are fine.
	handled []cache.InformerSynced

	// nodesChanged: a Node's labels changed since the last sync, so every
	// service port's endpoint selection (topology) is redone.
	nodesChanged atomic.Bool
	// list holds the datapath form of every programmable service port
	// from the last sync, sorted by name: the State's Services. ports
	// says, for every service port, whether it is in list (false: no
	// IPv4 cluster IP). A partial sync rebuilds only the service ports
	// that changed. Only syncOnce touches them.
	ports map[proxy.ServicePortName]bool
	list  []dataplane.ServicePort
	// checked are the service ports with a healthCheckNodePort (eTP
	// Local), kept with ports, so a sync looks at these few only.
	checked map[proxy.ServicePortName]bool

	// partial: the datapath holds our last state, so its next sync is a
	// partial one (false at start and after a failure). Only syncOnce
	// touches it.
	partial bool
}

// New registers informer handlers on f (the caller starts f).
func New(cfg Config, f informers.SharedInformerFactory) (*Runner, error) {
	r := &Runner{
		cfg:     cfg,
		tracker: proxy.NewTracker(proxy.TrackerConfig{NodeName: cfg.NodeName, TopologyKeys: cfg.TopologyKeys}),
		nodes:   f.Core().V1().Nodes().Lister(),
		kick:    make(chan struct{}, 1),
	}
	svc := f.Core().V1().Services().Informer()
	reg, err := svc.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { r.changed(r.tracker.Services.Update(nil, asService(o))) },
		UpdateFunc: func(o, n any) { r.changed(r.tracker.Services.Update(asService(o), asService(n))) },
		DeleteFunc: func(o any) { r.changed(r.tracker.Services.Update(asService(o), nil)) },
	})
	if err != nil {
		return nil, err
	}
	r.handled = append(r.handled, reg.HasSynced)
	slices := cfg.EndpointSlices
	if slices == nil {
		slices = feed.FromInformer(f.Discovery().V1().EndpointSlices().Informer())
	}
	synced, err := slices.Subscribe(func(o, n any) { r.changed(r.tracker.Endpoints.Update(asSlice(o), asSlice(n))) })
	if err != nil {
		return nil, err
	}
	r.handled = append(r.handled, synced)
	// Node labels feed topology (zone of this node, topologyKeys).
	reg, err = f.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { r.nodeChanged(true) },
		UpdateFunc: func(o, n any) {
			r.nodeChanged(nodeLabelsChanged(o, n))
		},
	})
	if err != nil {
		return nil, err
	}
	r.handled = append(r.handled, reg.HasSynced)
	return r, nil
}

func asService(o any) *v1.Service {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	s, _ := o.(*v1.Service)
	return s
}

func asSlice(o any) *discoveryv1.EndpointSlice {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	s, _ := o.(*discoveryv1.EndpointSlice)
	return s
}

func nodeLabelsChanged(o, n any) bool {
	a, ok1 := o.(*v1.Node)
	b, ok2 := n.(*v1.Node)
	return !ok1 || !ok2 || !labels.Equals(a.Labels, b.Labels)
}

func (r *Runner) nodeChanged(changed bool) {
	if changed {
		r.nodesChanged.Store(true)
		r.changed(true)
	}
}

func (r *Runner) changed(pending bool) {
	if !pending {
		return
	}
	if r.cfg.Health != nil {
		r.cfg.Health.QueuedUpdate()
	}
	if r.cfg.Metrics != nil {
		r.cfg.Metrics.Queued()
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// DefaultFullSyncPeriod is how often a periodic sync rewrites everything,
// as kube-proxy does (at 10,000 services a full sync costs seconds of CPU;
// a partial one with nothing to do, milliseconds).
const DefaultFullSyncPeriod = time.Hour

// Run syncs until ctx ends: at once, after changes, and every SyncPeriod.
// Syncs after changes are rate-limited to one per MinSyncPeriod with a
// burst of two, as kube-proxy's runner does: a new service and its
// EndpointSlice (two events a moment apart) are programmed at once, while
// sustained churn is batched.
func (r *Runner) Run(ctx context.Context) {
	if !waitHandled(ctx, r.handled) {
		return
	}
	resync := time.NewTicker(r.cfg.SyncPeriod)
	defer resync.Stop()
	limit := rate.NewLimiter(rate.Inf, 0)
	if r.cfg.MinSyncPeriod > 0 {
		limit = rate.NewLimiter(rate.Every(r.cfg.MinSyncPeriod), burstSyncs)
	}
	fullEvery := r.cfg.FullSyncPeriod
	if fullEvery <= 0 {
		fullEvery = DefaultFullSyncPeriod
	}
	limit.Allow() // the first sync (a full one: nothing is applied yet)
	r.syncOnce(ctx, false)
	lastFull := time.Now()
	for {
		full := false
		select {
		case <-ctx.Done():
			return
		case <-resync.C:
			if time.Since(lastFull) >= fullEvery {
				full, lastFull = true, time.Now()
			}
		case <-r.kick:
			if err := limit.Wait(ctx); err != nil {
				return
			}
		}
		r.syncOnce(ctx, full)
	}
}

// handledPoll is how often Run checks whether the informers' first lists
// have reached every handler. client-go's WaitForCacheSync checks every
// 100 ms, which added 50 ms on average (up to 100) to every start.
const handledPoll = 5 * time.Millisecond

// waitHandled waits until every one of synced reports true; false if ctx
// ended first.
func waitHandled(ctx context.Context, synced []cache.InformerSynced) bool {
	return wait.PollUntilContextCancel(ctx, handledPoll, true, func(context.Context) (bool, error) {
		for _, s := range synced {
			if !s() {
				return false, nil
			}
		}
		return true, nil
	}) == nil
}

// burstSyncs is how many syncs after changes may follow each other
// without waiting MinSyncPeriod.
const burstSyncs = 2

// syncOnce programs the current state: with the datapath's Sync (which
// writes only what changed), or with FullSync when full (the periodic
// resync, which repairs rules changed behind our back).
func (r *Runner) syncOnce(ctx context.Context, full bool) {
	start := time.Now()
	ch := r.tracker.Take()
	state := r.desired(ch, full || r.nodesChanged.Swap(false))
	apply := r.cfg.Datapath.Sync
	if full {
		apply = r.cfg.Datapath.FullSync
		r.partial = false
	}
	if err := apply(ctx, state); err != nil {
		klog.ErrorS(err, "Syncing proxy rules failed; retrying")
		// The datapath does a full sync after an error; the tracker has
		// moved on, so ask again soon.
		r.partial = false
		r.changed(true)
		return
	}
	took := time.Since(start)
	wasFull := !r.partial || full
	r.observeSync(ch, took)
	if wasFull {
		// A full sync (the first above all: every informer object
		// decoded, every element rendered and sent) leaves garbage of
		// more than the live state; the runtime keeps such freed memory
		// for reuse up to its next GC goal and gives it back only slowly.
		// Give it back now, once the rules are live and the sync is on
		// record (a forced GC of the whole heap takes a while): a full
		// sync is rare.
		memtrim.ReleaseStartup()
	}
	if r.cfg.Conntrack != nil && udpChanged(ch) {
		if n, err := r.cfg.Conntrack.ClearStale(conntrackServices(state)); err != nil {
			klog.ErrorS(err, "Clearing stale conntrack entries")
		} else if n > 0 {
			klog.V(2).InfoS("Cleared stale conntrack entries", "flows", n)
		}
	}
	klog.V(4).InfoS("Proxy rules synced", "services", len(state.Services), "took", time.Since(start))
}

// desired builds the datapath state for this node from the model. With
// all (the first and every full sync, and after a node's labels changed)
// it selects the endpoints of every service port; otherwise only of the
// ones that changed, reusing the rest from the last sync, and tells the
// datapath which ones those are. Service ports are in name order, so a
// duplicate frontend goes to the same one every time.
func (r *Runner) desired(ch proxy.Changes, all bool) dataplane.State {
	node := proxy.NodeInfo{Name: r.cfg.NodeName, NodeLabels: r.nodeLabels}
	if n, err := r.nodes.Get(r.cfg.NodeName); err == nil {
		node.Labels = n.Labels
		node.Zone = n.Labels[v1.LabelTopologyZone]
	}
	s := dataplane.State{ServiceCIDRs: r.cfg.ServiceCIDRs, PodCIDR: r.cfg.ClusterCIDR, NodeIPs: r.cfg.NodeIPs}
	if all || r.ports == nil {
		r.ports = make(map[proxy.ServicePortName]bool, len(ch.Services))
		r.list = make([]dataplane.ServicePort, 0, len(ch.Services))
		r.checked = map[proxy.ServicePortName]bool{}
		for name, sp := range ch.Services {
			r.noteHealthCheck(name, sp)
			c, ok := buildPort(name, sp, ch.Endpoints[name], node)
			r.ports[name] = ok
			if ok {
				r.list = append(r.list, c)
			}
		}
		dataplane.SortByName(r.list)
	} else {
		if r.partial {
			s.Changed = make(map[string]bool, len(ch.Changed))
		}
		for name := range ch.Changed {
			r.noteHealthCheck(name, ch.Services[name])
			key := r.updatePort(name, ch, node)
			if s.Changed != nil {
				s.Changed[key] = true
			}
		}
	}
	s.Services = r.list
	return s
}

// updatePort rebuilds one cached service port, keeping r.list sorted,
// and returns its name in the datapath's form.
func (r *Runner) updatePort(name proxy.ServicePortName, ch proxy.Changes, node proxy.NodeInfo) string {
	key := name.String()
	if r.ports[name] {
		if at, found := slices.BinarySearchFunc(r.list, key, listOrder); found {
			r.list = slices.Delete(r.list, at, at+1)
		}
	}
	sp, exists := ch.Services[name]
	if !exists {
		delete(r.ports, name)
		return key
	}
	c, ok := buildPort(name, sp, ch.Endpoints[name], node)
	r.ports[name] = ok
	if ok {
		at, _ := slices.BinarySearchFunc(r.list, key, listOrder)
		r.list = slices.Insert(r.list, at, c)
	}
	return key
}

func listOrder(sp dataplane.ServicePort, name string) int { return strings.Compare(sp.Name, name) }

// noteHealthCheck records whether service port name (sp nil: gone) has a
// healthCheckNodePort.
func (r *Runner) noteHealthCheck(name proxy.ServicePortName, sp *proxy.ServicePort) {
	if sp != nil && sp.ExternalPolicyLocal && sp.HealthCheckNodePort > 0 && sp.HealthCheckNodePort <= 65535 {
		r.checked[name] = true
	} else {
		delete(r.checked, name)
	}
}

// buildPort is one service port's datapath form on this node.
func buildPort(name proxy.ServicePortName, sp *proxy.ServicePort, eps []proxy.Endpoint, node proxy.NodeInfo) (dataplane.ServicePort, bool) {
	sel := proxy.Select(sp, eps, node)
	out := dataplane.ServicePort{
		Name:            name.String(),
		Protocol:        strings.ToLower(string(sp.Protocol)),
		Port:            uint16(sp.Port),
		NodePort:        uint16(sp.NodePort),
		ExternalLocal:   sp.ExternalPolicyLocal,
		Endpoints:       addrPorts(sel.Cluster),
		ClusterDrop:     !sel.ClusterReject,
		ExternalDrop:    !sel.ExternalReject,
		SourceRanges:    v4Prefixes(sp.LoadBalancerSourceRanges),
		Affinity:        sp.SessionAffinityClientIP,
		AffinityTimeout: time.Duration(sp.StickyMaxAgeSeconds) * time.Second,
		Scheduler:       sp.Scheduler,
	}
	// Usually both traffic kinds have the same endpoints: one slice then.
	lists := [][]proxy.Endpoint{sel.Cluster}
	if sameList(sel.External, sel.Cluster) {
		out.ExternalEndpoints = out.Endpoints
	} else if out.ExternalEndpoints = addrPorts(sel.External); slices.Equal(out.ExternalEndpoints, out.Endpoints) {
		out.ExternalEndpoints = out.Endpoints
	} else {
		lists = append(lists, sel.External)
	}
	isRemote := func(ep proxy.Endpoint) bool { return ep.IP.Is4() && node.IsRemote(ep) }
	n := 0
	for _, eps := range lists {
		for _, ep := range eps {
			if isRemote(ep) {
				n++
			}
		}
	}
	if n > 0 {
		remote := make([]netip.Addr, 0, n)
		for _, eps := range lists {
			for _, ep := range eps {
				if isRemote(ep) {
					remote = append(remote, ep.IP)
				}
			}
		}
		slices.SortFunc(remote, netip.Addr.Compare)
		if remote = slices.Compact(remote); len(remote) < n {
			// Cloned to its length: at 100,000 endpoints the spare
			// capacity would be megabytes kept for the datapath's lifetime.
			remote = slices.Clone(remote)
		}
		out.RemoteEndpoints = remote
	}
	if sp.Weights != nil {
		for _, eps := range [][]proxy.Endpoint{sel.Cluster, sel.External} {
			for _, ep := range eps {
				if w, ok := sp.Weights[ep.Pod]; ok && ep.Pod != "" {
					if out.Weights == nil {
						out.Weights = map[netip.AddrPort]int{}
					}
					out.Weights[ep.AddrPort()] = w
				}
			}
		}
	}
	for _, ip := range sp.ClusterIPs {
		if ip.Is4() {
			out.VIPs = append(out.VIPs, ip)
		}
	}
	for _, ip := range sp.ExternalIPs {
		if ip.Is4() {
			out.External = append(out.External, ip)
		}
	}
	for _, in := range sp.LoadBalancerIngress {
		if in.IP.Is4() && in.Mode != v1.LoadBalancerIPModeProxy {
			out.LoadBalancerIPs = append(out.LoadBalancerIPs, in.IP)
		}
	}
	return out, len(out.VIPs) > 0
}

func v4Prefixes(ps []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.Addr().Is4() {
			out = append(out, p.Masked())
		}
	}
	return out
}

func (r *Runner) nodeLabels(name string) map[string]string {
	n, err := r.nodes.Get(name)
	if err != nil {
		return nil
	}
	return n.Labels
}

// sameList says whether a and b are one list: same array, same length.
func sameList(a, b []proxy.Endpoint) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func addrPorts(eps []proxy.Endpoint) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(eps))
	for _, e := range eps {
		if e.IP.Is4() {
			out = append(out, e.AddrPort())
		}
	}
	return out
}

// conntrackServices describes every UDP/SCTP frontend with its current
// endpoints, for conntrack.ClearStale.
func conntrackServices(s dataplane.State) []conntrack.Service {
	var out []conntrack.Service
	for _, sp := range s.Services {
		var proto uint8
		switch sp.Protocol {
		case "udp":
			proto = conntrack.UDP
		case "sctp":
			proto = conntrack.SCTP
		default:
			continue
		}
		add := func(addr netip.Addr, port uint16, eps []netip.AddrPort) {
			if port == 0 {
				return
			}
			out = append(out, conntrack.Service{Frontend: conntrack.Frontend{Proto: proto, Addr: addr, Port: port}, Endpoints: eps})
		}
		for _, ip := range sp.VIPs {
			add(ip, sp.Port, sp.Endpoints)
		}
		for _, ip := range sp.External {
			add(ip, sp.Port, sp.ExternalEndpoints)
		}
		for _, ip := range sp.LoadBalancerIPs {
			add(ip, sp.Port, sp.ExternalEndpoints)
		}
		for _, ip := range s.NodeIPs {
			add(ip, sp.NodePort, sp.ExternalEndpoints)
		}
	}
	return out
}

// udpChanged: only changes of UDP/SCTP service ports can leave stale flows
// (reading the whole conntrack table is not free).
func udpChanged(ch proxy.Changes) bool {
	for _, c := range ch.Changed {
		if (c.Old != nil && c.Old.UsesUDPConntrack()) || (c.New != nil && c.New.UsesUDPConntrack()) {
			return true
		}
	}
	return false
}

// observeSync tells the optional health servers and metrics about a
// successful sync.
func (r *Runner) observeSync(ch proxy.Changes, took time.Duration) {
	full := !r.partial
	r.partial = true
	if m := r.cfg.Metrics; m != nil {
		m.ObserveSync(full, took)
		for _, start := range ch.ProgrammingStart {
			m.ObserveProgramming(start)
		}
		svcs, eps := countChanges(ch)
		m.ServiceChanges(svcs)
		m.EndpointChanges(eps)
	}
	if r.cfg.Health != nil {
		r.cfg.Health.Updated()
	}
	if r.cfg.ServiceHealth != nil {
		ports, counts := healthChecks(ch, r.checked, r.cfg.NodeName)
		if err := r.cfg.ServiceHealth.SyncServices(ports); err != nil {
			klog.V(2).InfoS("Some health check node ports are not served yet", "err", err)
		}
		r.cfg.ServiceHealth.SyncEndpoints(counts)
	}
}

// countChanges counts the services whose spec changed and those whose
// endpoints changed since the last sync (kube-proxy counts informer events;
// per sync is what the proxy actually programmed).
func countChanges(ch proxy.Changes) (services, endpoints int) {
	svc := map[types.NamespacedName]bool{}
	ep := map[types.NamespacedName]bool{}
	for name, c := range ch.Changed {
		if c.Old != c.New {
			svc[name.NamespacedName] = true
		}
		if (len(c.OldEndpoints) != 0 || len(c.NewEndpoints) != 0) && !reflect.DeepEqual(c.OldEndpoints, c.NewEndpoints) {
			ep[name.NamespacedName] = true
		}
	}
	return len(svc), len(ep)
}

// healthChecks returns the healthCheckNodePort of every service with
// externalTrafficPolicy Local (checked names them), and its number of distinct local usable
// endpoints over all its ports (what a load balancer probing the node
// needs to know).
func healthChecks(ch proxy.Changes, checked map[proxy.ServicePortName]bool, nodeName string) (map[types.NamespacedName]uint16, map[types.NamespacedName]int) {
	ports := map[types.NamespacedName]uint16{}
	local := map[types.NamespacedName]map[netip.AddrPort]bool{}
	node := proxy.NodeInfo{Name: nodeName}
	for name := range checked {
		sp := ch.Services[name]
		if sp == nil || !sp.ExternalPolicyLocal || sp.HealthCheckNodePort <= 0 || sp.HealthCheckNodePort > 65535 {
			continue
		}
		nn := name.NamespacedName
		ports[nn] = uint16(sp.HealthCheckNodePort)
		if local[nn] == nil {
			local[nn] = map[netip.AddrPort]bool{}
		}
		for _, e := range proxy.Select(sp, ch.Endpoints[name], node).Local {
			local[nn][e.AddrPort()] = true
		}
	}
	counts := make(map[types.NamespacedName]int, len(local))
	for nn, eps := range local {
		counts[nn] = len(eps)
	}
	return ports, counts
}
