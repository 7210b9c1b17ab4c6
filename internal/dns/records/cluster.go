package records

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// PodMode says which names under <ns>.pod.<zone> exist, like CoreDNS's
// "pods" option.
type PodMode int

const (
	// PodsInsecure (the default, as kubeadm configures CoreDNS) answers any
	// well-formed dashed IP in an existing namespace, without checking that
	// a pod has that IP. Kept for compatibility with what clusters expect.
	PodsInsecure PodMode = iota
	// PodsVerified answers only when a pod in that namespace has the IP.
	PodsVerified
	// PodsDisabled makes every name below pod.<zone> NXDOMAIN.
	PodsDisabled
)

// Config configures a Cluster. Constructors take it; nothing reads flags.
type Config struct {
	// Zone is the cluster domain, e.g. "cluster.local", with or without the
	// trailing dot.
	Zone string
	// TTL of every answer; 5 when 0. It is also the SOA minimum (the
	// negative-caching TTL); the SOA record's own TTL is min(TTL, 300) as in
	// CoreDNS.
	TTL uint32
	// ServiceCIDRs are the service ranges. PTR questions for addresses in
	// them are ours even when no service holds the address (NXDOMAIN rather
	// than forwarding). PTR questions for ClusterIPs, endpoint addresses and
	// pod addresses we know are ours wherever they are.
	ServiceCIDRs []netip.Prefix
	// NameserverIPs are this server's own addresses (CoreDNS's local IPs).
	// The apex NS answer and ns.dns.<zone> name the service whose endpoints
	// hold them (kube-dns) or, when none does, ns.dns.<zone> with these
	// addresses.
	NameserverIPs []netip.Addr
	// Pods selects how pod records are answered; PodsInsecure by default.
	Pods PodMode
	// Now is the clock for the SOA serial (Unix seconds of the last
	// change); time.Now when nil.
	Now func() time.Time
}

const (
	defaultTTL       = 5
	dnsVersionTTL    = 28800 // as in the specification's example and CoreDNS
	schemaVersion    = "1.1.0"
	noPort           = -1
	kindClusterIP    = 0
	kindHeadless     = 1
	kindExternalName = 2
)

// svcKey names a service; both parts are lower case.
type svcKey struct{ ns, name string }

type port struct {
	name  string // lower case, "" for unnamed
	proto string // lower case: tcp, udp, sctp
	port  int32  // noPort when an EndpointSlice port has none
}

type service struct {
	key          svcKey
	kind         int
	externalName string
	clusterIPs   []netip.Addr
	ports        []port
}

// endpoint is one address of a service, named by its hostname or, without
// one, by the dashed address.
type endpoint struct {
	addr netip.Addr
	host string
}

// epGroup is what one EndpointSlice contributes: its ports and its
// endpoints (after readiness filtering and dedupe across slices).
type epGroup struct {
	ports []port
	eps   []endpoint
}

// slice is one EndpointSlice as DNS sees it: only its ready endpoints'
// addresses, each once. A service with one slice (most of them) uses its
// eps as they are for its records, so they are kept only once.
type slice struct {
	svc   svcKey
	name  string
	ports []port
	eps   []endpoint
}

type sliceKey struct{ ns, name string }

type podKey struct{ ns, name string }

type pod struct {
	ns          string
	ips         []netip.Addr
	active      bool // not Succeeded/Failed
	hostNetwork bool
	// clusterSearch: the pod's resolv.conf searches exactly the
	// cluster's list (dnsPolicy ClusterFirst, no dnsConfig searches).
	clusterSearch bool
}

// epRef is one named endpoint of a service, the value of the reverse index.
type epRef struct {
	svc  svcKey
	host string
}

// rel is the endpoint's name relative to the zone.
func (r epRef) rel() string { return r.host + "." + r.svc.name + "." + r.svc.ns + ".svc" }

// Cluster holds the DNS view of the cluster. Informer handlers call the
// Update methods; any number of goroutines call Resolve.
type Cluster struct {
	zone    string // lower case, fully qualified ("cluster.local.")
	ttl     uint32
	cidrs   []netip.Prefix
	nsIPs   []netip.Addr
	podMode PodMode
	now     func() time.Time

	gen atomic.Uint64 // see Generation

	mu         sync.RWMutex
	synced     bool
	modified   int64
	namespaces map[string]struct{}
	services   map[svcKey]*service
	slices     map[sliceKey]*slice
	svcSlices  map[svcKey][]string // slice names, sorted (a map each cost ~300 bytes a service)
	endpoints  map[svcKey][]epGroup
	clusterIPs map[netip.Addr]svcKey
	epByIP     ptrIndex
	pods       map[podKey]*pod
	podsByIP   map[netip.Addr]map[podKey]struct{}
}

// New returns an empty, unsynced Cluster.
func New(cfg Config) *Cluster {
	zone := strings.ToLower(strings.TrimSuffix(cfg.Zone, "."))
	if zone == "" {
		zone = "cluster.local"
	}
	ttl := cfg.TTL
	if ttl == 0 {
		ttl = defaultTTL
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	c := &Cluster{
		zone:       zone + ".",
		ttl:        ttl,
		cidrs:      slices.Clone(cfg.ServiceCIDRs),
		nsIPs:      nameserverIPs(cfg.NameserverIPs),
		podMode:    cfg.Pods,
		now:        now,
		namespaces: map[string]struct{}{},
		services:   map[svcKey]*service{},
		slices:     map[sliceKey]*slice{},
		svcSlices:  map[svcKey][]string{},
		endpoints:  map[svcKey][]epGroup{},
		clusterIPs: map[netip.Addr]svcKey{},
		epByIP:     ptrIndex{one: map[netip.Addr]epRef{}, more: map[netip.Addr][]epRef{}},
		pods:       map[podKey]*pod{},
		podsByIP:   map[netip.Addr]map[podKey]struct{}{},
	}
	c.modified = now().Unix()
	return c
}

// SetSynced marks the informers' first list as complete. Until then every
// question that is ours is answered SERVFAIL, so that clients retry rather
// than cache a NXDOMAIN for a service we have not seen yet.
func (c *Cluster) SetSynced() {
	c.mu.Lock()
	c.synced = true
	c.gen.Add(1)
	c.mu.Unlock()
}

// Generation changes with every change that may change an answer of
// Resolve (every Update and SetSynced), so the server can reuse an answer
// while it stays the same.
func (c *Cluster) Generation() uint64 { return c.gen.Load() }

// Synced reports whether SetSynced was called.
func (c *Cluster) Synced() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.synced
}

// touch records a change for the SOA serial and the generation; callers
// hold mu.
func (c *Cluster) touch() {
	c.modified = c.now().Unix()
	c.gen.Add(1)
}

// UpdateNamespace applies an informer add (prev nil), update or delete (cur nil).
func (c *Cluster) UpdateNamespace(prev, cur *corev1.Namespace) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev != nil && (cur == nil || prev.Name != cur.Name) {
		delete(c.namespaces, strings.ToLower(prev.Name))
	}
	if cur != nil {
		c.namespaces[strings.ToLower(cur.Name)] = struct{}{}
	}
	c.touch()
}

// UpdateService applies an informer add (prev nil), update or delete (cur nil).
func (c *Cluster) UpdateService(prev, cur *corev1.Service) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev != nil {
		k := keyOf(prev.Namespace, prev.Name)
		if cur == nil || k != keyOf(cur.Namespace, cur.Name) {
			c.removeService(k)
			c.rebuildEndpoints(k)
		}
	}
	if cur != nil {
		s := convertService(cur)
		c.removeService(s.key)
		c.services[s.key] = s
		for _, ip := range s.clusterIPs {
			c.clusterIPs[ip] = s.key
		}
		// Readiness filtering depends on the service.
		c.rebuildEndpoints(s.key)
	}
	c.touch()
}

func (c *Cluster) removeService(k svcKey) {
	old, ok := c.services[k]
	if !ok {
		return
	}
	for _, ip := range old.clusterIPs {
		if c.clusterIPs[ip] == k {
			delete(c.clusterIPs, ip)
		}
	}
	delete(c.services, k)
}

func keyOf(ns, name string) svcKey {
	return svcKey{ns: strings.ToLower(ns), name: strings.ToLower(name)}
}

func convertService(s *corev1.Service) *service {
	out := &service{
		key: keyOf(s.Namespace, s.Name),
	}
	switch {
	case s.Spec.Type == corev1.ServiceTypeExternalName:
		out.kind = kindExternalName
		out.externalName = s.Spec.ExternalName
	case s.Spec.ClusterIP == corev1.ClusterIPNone:
		out.kind = kindHeadless
	default:
		out.kind = kindClusterIP
		ips := s.Spec.ClusterIPs
		if len(ips) == 0 && s.Spec.ClusterIP != "" {
			ips = []string{s.Spec.ClusterIP}
		}
		for _, ip := range ips {
			if a, err := netip.ParseAddr(ip); err == nil {
				out.clusterIPs = append(out.clusterIPs, a.Unmap())
			}
		}
	}
	for _, p := range s.Spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		out.ports = append(out.ports, port{
			name:  strings.ToLower(p.Name),
			proto: strings.ToLower(string(proto)),
			port:  p.Port,
		})
	}
	return out
}

// UpdateEndpointSlice applies an informer add (prev nil), update or delete
// (cur nil). Slices are tied to their service by the
// kubernetes.io/service-name label; all slices of a service are merged.
func (c *Cluster) UpdateEndpointSlice(prev, cur *discoveryv1.EndpointSlice) {
	c.mu.Lock()
	defer c.mu.Unlock()
	dirty := map[svcKey]struct{}{}
	if prev != nil {
		k := sliceKey{ns: strings.ToLower(prev.Namespace), name: prev.Name}
		if old, ok := c.slices[k]; ok {
			delete(c.slices, k)
			c.unlinkSlice(old.svc, k.name)
			dirty[old.svc] = struct{}{}
		}
	}
	if cur != nil {
		k := sliceKey{ns: strings.ToLower(cur.Namespace), name: cur.Name}
		if old, ok := c.slices[k]; ok { // an add we missed the delete of
			c.unlinkSlice(old.svc, k.name)
			dirty[old.svc] = struct{}{}
		}
		if s := convertSlice(cur); s != nil {
			c.slices[k] = s
			c.linkSlice(s.svc, k.name)
			dirty[s.svc] = struct{}{}
		} else {
			delete(c.slices, k)
		}
	}
	for k := range dirty {
		c.rebuildEndpoints(k)
	}
	c.touch()
}

func convertSlice(es *discoveryv1.EndpointSlice) *slice {
	svcName := es.Labels[discoveryv1.LabelServiceName]
	if svcName == "" {
		return nil
	}
	if es.AddressType != discoveryv1.AddressTypeIPv4 && es.AddressType != discoveryv1.AddressTypeIPv6 {
		return nil // FQDN slices carry no addresses we can answer with
	}
	s := &slice{svc: keyOf(es.Namespace, svcName), name: es.Name}
	for _, p := range es.Ports {
		sp := port{port: noPort, proto: "tcp"}
		if p.Name != nil {
			sp.name = strings.ToLower(*p.Name)
		}
		if p.Protocol != nil {
			sp.proto = strings.ToLower(string(*p.Protocol))
		}
		if p.Port != nil {
			sp.port = *p.Port
		}
		s.ports = append(s.ports, sp)
	}
	if len(s.ports) == 0 {
		// CoreDNS keeps the addresses of a port-less slice (A records) but
		// gives them no SRV record.
		s.ports = []port{{port: noPort}}
	}
	n := 0
	for _, e := range es.Endpoints {
		if ready(e) {
			n += len(e.Addresses)
		}
	}
	s.eps = make([]endpoint, 0, n)
	var seen map[endpoint]struct{} // for large slices; small ones are scanned
	for _, e := range es.Endpoints {
		// The endpoint's own condition decides, as in CoreDNS: for
		// publishNotReadyAddresses the EndpointSlice controller already
		// marks unready pods' endpoints ready.
		if !ready(e) {
			continue
		}
		host := ""
		if e.Hostname != nil {
			host = strings.ToLower(*e.Hostname)
		}
		for _, a := range e.Addresses {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				continue
			}
			ep := endpoint{addr: ip.Unmap(), host: host}
			if ep.host == "" {
				ep.host = dashed(ep.addr)
			}
			if n > smallSlice {
				if seen == nil {
					seen = make(map[endpoint]struct{}, n)
				}
				if _, dup := seen[ep]; dup {
					continue
				}
				seen[ep] = struct{}{}
			} else if slices.Contains(s.eps, ep) {
				continue
			}
			s.eps = append(s.eps, ep)
		}
	}
	return s
}

// smallSlice is the most endpoints a slice is deduplicated by scanning.
const smallSlice = 32

func ready(e discoveryv1.Endpoint) bool { return e.Conditions.Ready == nil || *e.Conditions.Ready }

// rebuildEndpoints recomputes the merged endpoint view of one service and
// the reverse index entries that come from it.
func (c *Cluster) rebuildEndpoints(k svcKey) {
	for _, g := range c.endpoints[k] {
		for _, e := range g.eps {
			c.epByIP.drop(e.addr, epRef{k, e.host})
		}
	}
	delete(c.endpoints, k)

	svc := c.services[k]
	if svc == nil || svc.kind == kindExternalName {
		return
	}
	names := c.svcSlices[k]
	groups := make([]epGroup, 0, len(names))
	var seen map[endpoint]struct{} // with more than one slice: what earlier ones had
	for _, name := range names {
		s := c.slices[sliceKey{ns: k.ns, name: name}]
		eps := s.eps // shared with the slice: neither changes once made
		if len(names) > 1 {
			if seen == nil {
				seen = map[endpoint]struct{}{}
			}
			eps = unseen(eps, seen)
		}
		if len(eps) > 0 {
			groups = append(groups, epGroup{ports: s.ports, eps: eps})
		}
	}
	if len(groups) == 0 {
		return
	}
	c.endpoints[k] = groups
	for _, g := range groups {
		for _, e := range g.eps {
			c.epByIP.add(e.addr, epRef{k, e.host})
		}
	}
}

// unseen returns the endpoints of eps not in seen and adds them to it:
// eps itself when all are new, else a copy without the others.
func unseen(eps []endpoint, seen map[endpoint]struct{}) []endpoint {
	var out []endpoint // nil while every endpoint so far is new
	for j, ep := range eps {
		if _, dup := seen[ep]; dup {
			if out == nil {
				out = append(make([]endpoint, 0, len(eps)-1), eps[:j]...)
			}
			continue
		}
		seen[ep] = struct{}{}
		if out != nil {
			out = append(out, ep)
		}
	}
	if out == nil {
		return eps
	}
	return out
}

// linkSlice and unlinkSlice keep the sorted slice names of each service.
// A slice is in its service's namespace, so its name is enough.
func (c *Cluster) linkSlice(svc svcKey, name string) {
	names := c.svcSlices[svc]
	if i, found := slices.BinarySearch(names, name); !found {
		c.svcSlices[svc] = slices.Insert(names, i, name)
	}
}

func (c *Cluster) unlinkSlice(svc svcKey, name string) {
	names := c.svcSlices[svc]
	i, found := slices.BinarySearch(names, name)
	switch {
	case !found:
	case len(names) == 1:
		delete(c.svcSlices, svc)
	default:
		c.svcSlices[svc] = slices.Delete(names, i, i+1)
	}
}

// ptrIndex finds the endpoints an address names, for PTR. Nearly every
// address names one endpoint, kept in one; an address naming more has
// them all in more, sorted by refCmp, and none in one.
type ptrIndex struct {
	one  map[netip.Addr]epRef
	more map[netip.Addr][]epRef
}

// get returns the endpoints a names, sorted by refCmp.
func (x *ptrIndex) get(a netip.Addr) []epRef {
	if r, ok := x.one[a]; ok {
		return []epRef{r}
	}
	return x.more[a]
}

func (x *ptrIndex) add(a netip.Addr, t epRef) {
	if refs, ok := x.more[a]; ok {
		if i, found := slices.BinarySearchFunc(refs, t, refCmp); !found {
			x.more[a] = slices.Insert(refs, i, t)
		}
		return
	}
	r, ok := x.one[a]
	switch {
	case !ok:
		x.one[a] = t
	case r != t:
		delete(x.one, a)
		if refCmp(t, r) < 0 {
			r, t = t, r
		}
		x.more[a] = []epRef{r, t}
	}
}

func (x *ptrIndex) drop(a netip.Addr, t epRef) {
	if r, ok := x.one[a]; ok {
		if r == t {
			delete(x.one, a)
		}
		return
	}
	refs := x.more[a]
	i, found := slices.BinarySearchFunc(refs, t, refCmp)
	switch {
	case !found:
	case len(refs) == 2:
		delete(x.more, a)
		x.one[a] = refs[1-i]
	default:
		x.more[a] = slices.Delete(refs, i, i+1)
	}
}

// refCmp orders endpoint references by namespace, service and host.
func refCmp(a, b epRef) int {
	return cmp.Or(cmp.Compare(a.svc.ns, b.svc.ns), cmp.Compare(a.svc.name, b.svc.name), cmp.Compare(a.host, b.host))
}

func dashed(a netip.Addr) string {
	var buf [64]byte
	b := a.AppendTo(buf[:0])
	sep := byte('.')
	if a.Is6() {
		sep = ':'
	}
	for i, c := range b {
		if c == sep {
			b[i] = '-'
		}
	}
	if a.Is6() && b[len(b)-1] == '-' {
		b = append(b, '0')
	}
	return string(b) // the one allocation
}

// UpdatePod applies an informer add (prev nil), update or delete (cur nil).
// Pods serve PodsVerified, PTR for pod addresses and PodNamespace.
func (c *Cluster) UpdatePod(prev, cur *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev != nil {
		c.removePod(podKey{ns: strings.ToLower(prev.Namespace), name: prev.Name})
	}
	if cur != nil {
		k := podKey{ns: strings.ToLower(cur.Namespace), name: cur.Name}
		c.removePod(k)
		p := &pod{
			ns:          k.ns,
			active:      cur.Status.Phase != corev1.PodSucceeded && cur.Status.Phase != corev1.PodFailed,
			hostNetwork: cur.Spec.HostNetwork,
			clusterSearch: !cur.Spec.HostNetwork &&
				(cur.Spec.DNSPolicy == "" || cur.Spec.DNSPolicy == corev1.DNSClusterFirst || cur.Spec.DNSPolicy == corev1.DNSClusterFirstWithHostNet) &&
				(cur.Spec.DNSConfig == nil || len(cur.Spec.DNSConfig.Searches) == 0),
		}
		ips := make([]string, 0, 1+len(cur.Status.PodIPs))
		ips = append(ips, cur.Status.PodIP)
		for _, ip := range cur.Status.PodIPs {
			ips = append(ips, ip.IP)
		}
		for _, s := range ips {
			a, err := netip.ParseAddr(s)
			if err != nil || slices.Contains(p.ips, a.Unmap()) {
				continue
			}
			p.ips = append(p.ips, a.Unmap())
		}
		c.pods[k] = p
		for _, a := range p.ips {
			m := c.podsByIP[a]
			if m == nil {
				m = map[podKey]struct{}{}
				c.podsByIP[a] = m
			}
			m[k] = struct{}{}
		}
	}
	c.touch()
}

func (c *Cluster) removePod(k podKey) {
	p, ok := c.pods[k]
	if !ok {
		return
	}
	for _, a := range p.ips {
		m := c.podsByIP[a]
		delete(m, k)
		if len(m) == 0 {
			delete(c.podsByIP, a)
		}
	}
	delete(c.pods, k)
}

// PodNamespace returns the namespace of the running pod with this IP, for
// the server's autopath, which is only right for a pod whose resolv.conf
// searches the cluster's list: so not for a pod with another dnsPolicy or
// its own dnsConfig searches. Host-network pods share their node's
// address, so an address held by a host-network pod, or by pods of
// different namespaces, has no namespace.
func (c *Cluster) PodNamespace(ip netip.Addr) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ip = ip.Unmap()
	for k := range c.podsByIP[ip] {
		if p := c.pods[k]; p.active && !p.clusterSearch {
			return "", false
		}
	}
	return c.podNamespaceLocked(ip)
}

func (c *Cluster) podNamespaceLocked(ip netip.Addr) (string, bool) {
	ns := ""
	for k := range c.podsByIP[ip] {
		p := c.pods[k]
		if !p.active {
			continue
		}
		if p.hostNetwork || (ns != "" && ns != p.ns) {
			return "", false
		}
		ns = p.ns
	}
	return ns, ns != ""
}

// nameserverIPs keeps the addresses other hosts can reach: loopback ones
// would name whatever service has an endpoint there (CoreDNS skips them
// too).
func nameserverIPs(ips []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, ip := range ips {
		if ip = ip.Unmap(); ip.IsValid() && !ip.IsLoopback() {
			out = append(out, ip)
		}
	}
	return out
}
