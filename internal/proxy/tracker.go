package proxy

import (
	"cmp"
	"maps"
	"reflect"
	"slices"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TrackerConfig configures a Tracker.
type TrackerConfig struct {
	// NodeName is this node's name; endpoints on it get IsLocal.
	NodeName string
	// TopologyKeys returns a service's legacy spec.topologyKeys, which
	// k8s.io/api does not carry; nil means none for every service.
	TopologyKeys func(*v1.Service) []string
	// Now is the clock for event times; nil means time.Now.
	Now func() time.Time
}

// Tracker holds the applied proxy state and the changes pending since the
// last Take. Informer handlers call Services.Update and Endpoints.Update
// from any goroutine; the sync loop calls Take.
type Tracker struct {
	Services  *ServiceTracker
	Endpoints *EndpointsTracker

	mu     sync.Mutex // serialises Take
	svcMap ServicePortMap
	epMap  EndpointsMap
	// svcNames and epNames list, per service, its names in svcMap and
	// epMap: the applied state of one service is read back from the two
	// maps. (A small map per service would cost ~700 bytes each: 14 MB
	// at 10,000 services.)
	svcNames map[types.NamespacedName][]ServicePortName
	epNames  map[types.NamespacedName][]ServicePortName
}

// NewTracker returns an empty tracker.
func NewTracker(cfg TrackerConfig) *Tracker {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	keys := cfg.TopologyKeys
	if keys == nil {
		keys = func(*v1.Service) []string { return nil }
	}
	return &Tracker{
		Services:  &ServiceTracker{topologyKeys: keys, now: now, pending: map[types.NamespacedName]pendingService{}},
		Endpoints: &EndpointsTracker{nodeName: cfg.NodeName, now: now, cache: map[types.NamespacedName]map[string]*trimmedSlice{}, pending: map[types.NamespacedName]time.Time{}},
		svcMap:    ServicePortMap{},
		epMap:     EndpointsMap{},
		svcNames:  map[types.NamespacedName][]ServicePortName{},
		epNames:   map[types.NamespacedName][]ServicePortName{},
	}
}

type pendingService struct {
	ports ServicePortMap // nil: the service is gone or not proxied
	since time.Time
}

// ServiceTracker records Service events until the next Take.
type ServiceTracker struct {
	topologyKeys func(*v1.Service) []string
	now          func() time.Time

	mu      sync.Mutex
	pending map[types.NamespacedName]pendingService
}

// Update records an informer event: prev nil for an add, cur nil for a
// delete. It reports whether a change is pending (a sync is worth running).
// Updates that change nothing the proxy uses (status, unrelated labels) are
// not recorded.
func (t *ServiceTracker) Update(prev, cur *v1.Service) bool {
	obj := cur
	if obj == nil {
		obj = prev
	}
	if obj == nil {
		return t.hasPending()
	}
	nn := types.NamespacedName{Namespace: obj.Namespace, Name: obj.Name}
	var ports ServicePortMap
	if cur != nil {
		ports = ServicePorts(cur, t.topologyKeys(cur))
	}
	var before ServicePortMap
	if prev != nil && cur != nil {
		before = ServicePorts(prev, t.topologyKeys(prev))
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	p, pending := t.pending[nn]
	if !pending && prev != nil && cur != nil && portMapsEqual(before, ports) {
		return len(t.pending) > 0
	}
	if !pending {
		p.since = now
	}
	p.ports = ports
	t.pending[nn] = p
	return true
}

func (t *ServiceTracker) hasPending() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending) > 0
}

func (t *ServiceTracker) checkout() map[types.NamespacedName]pendingService {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.pending
	t.pending = map[types.NamespacedName]pendingService{}
	return p
}

func portMapsEqual(a, b ServicePortMap) bool {
	return maps.EqualFunc(a, b, servicePortEqual)
}

// EndpointsTracker caches EndpointSlices by service and records which
// services' endpoints changed until the next Take.
type EndpointsTracker struct {
	nodeName string
	now      func() time.Time

	mu      sync.Mutex
	cache   map[types.NamespacedName]map[string]*trimmedSlice
	pending map[types.NamespacedName]time.Time // earliest trigger time
}

// Update records an informer event: prev nil for an add, cur nil for a
// delete. Slices without the kubernetes.io/service-name label and FQDN
// slices are ignored. It reports whether a change is pending.
func (t *EndpointsTracker) Update(prev, cur *discoveryv1.EndpointSlice) bool {
	now := t.now()
	prevNN, prevOK := sliceServiceName(prev)
	curNN, curOK := sliceServiceName(cur)
	var trimmed *trimmedSlice
	if curOK {
		trimmed = trimSlice(cur, t.nodeName)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if prevOK && (!curOK || prevNN != curNN || prev.Name != cur.Name) {
		if bySlice := t.cache[prevNN]; bySlice != nil {
			if _, ok := bySlice[prev.Name]; ok {
				delete(bySlice, prev.Name)
				if len(bySlice) == 0 {
					delete(t.cache, prevNN)
				}
				t.mark(prevNN, now)
			}
		}
	}
	if curOK {
		bySlice := t.cache[curNN]
		if bySlice == nil {
			bySlice = map[string]*trimmedSlice{}
			t.cache[curNN] = bySlice
		}
		if old, ok := bySlice[cur.Name]; !ok || !reflect.DeepEqual(old, trimmed) {
			bySlice[cur.Name] = trimmed
			t.mark(curNN, triggerTime(cur, now))
		}
	}
	return len(t.pending) > 0
}

func (t *EndpointsTracker) mark(nn types.NamespacedName, at time.Time) {
	if old, ok := t.pending[nn]; !ok || at.Before(old) {
		t.pending[nn] = at
	}
}

// checkout returns the rebuilt endpoints of every changed service.
func (t *EndpointsTracker) checkout() (map[types.NamespacedName]EndpointsMap, map[types.NamespacedName]time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pending := t.pending
	t.pending = map[types.NamespacedName]time.Time{}
	built := make(map[types.NamespacedName]EndpointsMap, len(pending))
	for nn := range pending {
		built[nn] = mergeSlices(nn, t.cache[nn])
	}
	return built, pending
}

// ChangeKind classifies a PortChange.
type ChangeKind int

const (
	// Updated: the port exists before and after; its service fields or its
	// endpoints changed.
	Updated ChangeKind = iota
	Added
	Deleted
)

func (k ChangeKind) String() string {
	return [...]string{"Updated", "Added", "Deleted"}[k]
}

// PortChange is the before and after of one service port since the last
// Take. Endpoints are listed even when only the service changed, so a
// backend can rewrite the port from the change alone.
type PortChange struct {
	Old, New                   *ServicePort
	OldEndpoints, NewEndpoints []Endpoint
}

// Kind reports whether the port was added, updated or deleted.
func (c PortChange) Kind() ChangeKind {
	switch {
	case c.Old == nil:
		return Added
	case c.New == nil:
		return Deleted
	}
	return Updated
}

// StaleEndpoint is a UDP/SCTP backend that left a service port: conntrack
// flows whose original destination is one of Service's addresses and port
// and whose reply source is Endpoint must be deleted.
type StaleEndpoint struct {
	Service  *ServicePort // the port as it was when the flows were made
	Endpoint Endpoint
}

// ConntrackCleanup lists the UDP/SCTP conntrack entries a backend must
// delete after programming a Changes.
type ConntrackCleanup struct {
	StaleEndpoints []StaleEndpoint
	// StaleServices are old versions of ports that were deleted or whose
	// addresses or ports changed: all flows to those destinations go.
	StaleServices []*ServicePort
	// NewlyActive are ports that went from no usable endpoint to some.
	// Packets sent while there was none created entries that black-hole
	// the traffic (reject/drop verdicts); flows to these destinations go.
	NewlyActive []*ServicePort
}

// Changes is the result of a Take: the whole applied state plus what
// changed since the previous Take.
type Changes struct {
	// Services and Endpoints are the full current state. They are the
	// tracker's own maps, not copies (a clone costs milliseconds at 10,000
	// services): read-only, and valid only until the next Take.
	Services  ServicePortMap
	Endpoints EndpointsMap
	// Changed holds every service port whose service or endpoints changed;
	// endpoint changes of a name without a service port (before or after)
	// only show up in Endpoints.
	Changed   map[ServicePortName]PortChange
	Conntrack ConntrackCleanup
	// ProgrammingStart is, per changed service, the earliest time a change
	// was triggered: the EndpointSlice last-change-trigger-time annotation
	// or the informer event time. Observe
	// kubeproxy_network_programming_duration_seconds from it once the
	// rules are live.
	ProgrammingStart map[types.NamespacedName]time.Time
}

// Take applies the pending changes and returns them. Calls are serialised;
// Updates may run concurrently. Use the result before the next Take.
func (t *Tracker) Take() Changes {
	t.mu.Lock()
	defer t.mu.Unlock()
	svcPending := t.Services.checkout()
	epPending, epSince := t.Endpoints.checkout()
	touched := make(map[types.NamespacedName]bool, max(len(svcPending), len(epPending)))
	for nn := range svcPending {
		touched[nn] = true
	}
	for nn := range epPending {
		touched[nn] = true
	}
	ch := Changes{Changed: make(map[ServicePortName]PortChange, len(touched)), ProgrammingStart: make(map[types.NamespacedName]time.Time, len(touched))}
	if len(t.svcMap) == 0 && len(t.epMap) == 0 {
		// The first Take (or one after everything went) fills the maps
		// from nothing: sized once instead of grown.
		t.svcMap, t.epMap = make(ServicePortMap, len(touched)), make(EndpointsMap, len(touched))
		t.svcNames = make(map[types.NamespacedName][]ServicePortName, len(touched))
		t.epNames = make(map[types.NamespacedName][]ServicePortName, len(touched))
	}
	for nn := range touched {
		oldPorts := pick(t.svcMap, t.svcNames[nn])
		newPorts := oldPorts
		if p, ok := svcPending[nn]; ok {
			newPorts = p.ports
		}
		oldEps := pick(t.epMap, t.epNames[nn])
		newEps := oldEps
		if e, ok := epPending[nn]; ok {
			newEps = e
		}
		if t.diffService(&ch, oldPorts, newPorts, oldEps, newEps) {
			var start time.Time
			if p, ok := svcPending[nn]; ok {
				start = p.since
			}
			if s, ok := epSince[nn]; ok && (start.IsZero() || s.Before(start)) {
				start = s
			}
			ch.ProgrammingStart[nn] = start
		}
		t.apply(nn, oldPorts, newPorts, oldEps, newEps)
	}
	ch.Services, ch.Endpoints = t.svcMap, t.epMap
	sortCleanup(&ch.Conntrack)
	return ch
}

// diffService records the port changes of one service; it reports whether
// anything the proxy uses changed.
func (t *Tracker) diffService(ch *Changes, oldPorts, newPorts ServicePortMap, oldEps, newEps EndpointsMap) bool {
	// A service has a port or a few: a list beats a map here.
	var buf [4]ServicePortName
	names := buf[:0]
	for _, m := range []ServicePortMap{oldPorts, newPorts} {
		for n := range m {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	for _, m := range []EndpointsMap{oldEps, newEps} {
		for n := range m {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	changed := false
	for _, name := range names {
		oSP, nSP := oldPorts[name], newPorts[name]
		oE, nE := oldEps[name], newEps[name]
		svcChanged := !servicePortEqual(oSP, nSP)
		epChanged := !endpointsEqual(oE, nE)
		if !svcChanged && !epChanged {
			continue
		}
		if oSP == nil && nSP == nil {
			continue // endpoints of a port no service has: nothing programmed
		}
		changed = true
		ch.Changed[name] = PortChange{Old: oSP, New: nSP, OldEndpoints: oE, NewEndpoints: nE}
		if name.Protocol != v1.ProtocolUDP && name.Protocol != v1.ProtocolSCTP {
			continue
		}
		cc := &ch.Conntrack
		if oSP != nil {
			for _, ep := range staleEndpoints(oE, nE) {
				cc.StaleEndpoints = append(cc.StaleEndpoints, StaleEndpoint{Service: oSP, Endpoint: ep})
			}
			if nSP == nil || !addressesEqual(oSP, nSP) {
				cc.StaleServices = append(cc.StaleServices, oSP)
			}
		}
		if nSP != nil && hasUsable(nE) && (oSP == nil || !hasUsable(oE)) {
			cc.NewlyActive = append(cc.NewlyActive, nSP)
		}
	}
	return changed
}

// staleEndpoints returns the old serving endpoints whose address:port is no
// longer serving. Flows to a non-serving endpoint cannot exist, and one
// that stays serving (e.g. terminating) keeps its flows for graceful
// termination.
func staleEndpoints(oldEps, newEps []Endpoint) []Endpoint {
	var out []Endpoint
	for _, o := range oldEps {
		if !o.Serving {
			continue
		}
		if !slices.ContainsFunc(newEps, func(n Endpoint) bool { return n.Serving && n.AddrPort() == o.AddrPort() }) {
			out = append(out, o)
		}
	}
	return out
}

func hasUsable(eps []Endpoint) bool {
	return slices.ContainsFunc(eps, func(e Endpoint) bool { return e.Ready || (e.Serving && e.Terminating) })
}

func (t *Tracker) apply(nn types.NamespacedName, oldPorts, newPorts ServicePortMap, oldEps, newEps EndpointsMap) {
	for n := range oldPorts {
		delete(t.svcMap, n)
	}
	maps.Copy(t.svcMap, newPorts)
	setNames(t.svcNames, nn, newPorts)
	for n := range oldEps {
		delete(t.epMap, n)
	}
	maps.Copy(t.epMap, newEps)
	setNames(t.epNames, nn, newEps)
}

// pick returns the entries of names in m (nil for none).
func pick[V any](m map[ServicePortName]V, names []ServicePortName) map[ServicePortName]V {
	if len(names) == 0 {
		return nil
	}
	out := make(map[ServicePortName]V, len(names))
	for _, n := range names {
		out[n] = m[n]
	}
	return out
}

// setNames records the names of m as service nn's.
func setNames[V any](names map[types.NamespacedName][]ServicePortName, nn types.NamespacedName, m map[ServicePortName]V) {
	if len(m) == 0 {
		delete(names, nn)
		return
	}
	names[nn] = slices.AppendSeq(make([]ServicePortName, 0, len(m)), maps.Keys(m))
}

func sortCleanup(c *ConntrackCleanup) {
	byName := func(a, b *ServicePort) int { return cmp.Compare(a.Name.String(), b.Name.String()) }
	slices.SortFunc(c.StaleServices, byName)
	slices.SortFunc(c.NewlyActive, byName)
	slices.SortFunc(c.StaleEndpoints, func(a, b StaleEndpoint) int {
		return cmp.Or(byName(a.Service, b.Service), a.Endpoint.IP.Compare(b.Endpoint.IP), cmp.Compare(a.Endpoint.Port, b.Endpoint.Port))
	})
}
