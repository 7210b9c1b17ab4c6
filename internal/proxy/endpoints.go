package proxy

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// slicePort is one port of a trimmed EndpointSlice.
type slicePort struct {
	name     string
	port     int32
	protocol v1.Protocol
}

// trimmedSlice keeps only what the proxy uses of an EndpointSlice, so the
// cache does not hold whole API objects.
type trimmedSlice struct {
	ports []slicePort
	// endpoints are sorted by address. With one port their Port is set
	// and, when distinct is also true, they are that port's merged list
	// as they are (the common single-slice service shares them, rather
	// than holding a second copy).
	endpoints []Endpoint
	distinct  bool
}

// sliceServiceName returns the service a slice belongs to; ok is false for
// slices the proxy ignores (no service-name label, FQDN addresses).
func sliceServiceName(s *discoveryv1.EndpointSlice) (types.NamespacedName, bool) {
	if s == nil {
		return types.NamespacedName{}, false
	}
	name := s.Labels[discoveryv1.LabelServiceName]
	if name == "" || s.AddressType == discoveryv1.AddressTypeFQDN {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: s.Namespace, Name: name}, true
}

func trimSlice(s *discoveryv1.EndpointSlice, nodeName string) *trimmedSlice {
	t := &trimmedSlice{}
	for _, p := range s.Ports {
		if p.Port == nil || *p.Port <= 0 || *p.Port > 65535 {
			continue
		}
		sp := slicePort{port: *p.Port, protocol: v1.ProtocolTCP}
		if p.Name != nil {
			sp.name = *p.Name
		}
		if p.Protocol != nil && *p.Protocol != "" {
			sp.protocol = *p.Protocol
		}
		t.ports = append(t.ports, sp)
	}
	t.endpoints = make([]Endpoint, 0, len(s.Endpoints))
	for i := range s.Endpoints {
		e := &s.Endpoints[i]
		if len(e.Addresses) == 0 {
			continue
		}
		// The addresses of one endpoint are fungible; consumers use the first.
		ip, err := netip.ParseAddr(e.Addresses[0])
		if err != nil {
			continue
		}
		ep := Endpoint{IP: ip.Unmap()}
		c := e.Conditions
		ep.Ready = c.Ready == nil || *c.Ready
		ep.Serving = ep.Ready
		if c.Serving != nil {
			ep.Serving = *c.Serving
		}
		ep.Terminating = c.Terminating != nil && *c.Terminating
		if e.NodeName != nil {
			ep.NodeName = *e.NodeName
		}
		if e.Zone != nil {
			ep.Zone = *e.Zone
		}
		if r := e.TargetRef; r != nil && r.Kind == "Pod" {
			ep.Pod = r.Name
		}
		if e.Hints != nil && (len(e.Hints.ForZones) > 0 || len(e.Hints.ForNodes) > 0) {
			h := &Hints{}
			for _, z := range e.Hints.ForZones {
				h.Zones = append(h.Zones, z.Name)
			}
			for _, n := range e.Hints.ForNodes {
				h.Nodes = append(h.Nodes, n.Name)
			}
			slices.Sort(h.Zones)
			h.Zones = slices.Compact(h.Zones)
			slices.Sort(h.Nodes)
			h.Nodes = slices.Compact(h.Nodes)
			ep.Hints = h
		}
		ep.IsLocal = nodeName != "" && ep.NodeName == nodeName
		t.endpoints = append(t.endpoints, ep)
	}
	slices.SortStableFunc(t.endpoints, func(a, b Endpoint) int { return a.IP.Compare(b.IP) })
	if len(t.ports) == 1 {
		t.distinct = true
		for i := range t.endpoints {
			t.endpoints[i].Port = t.ports[0].port
			if i > 0 && t.endpoints[i].IP == t.endpoints[i-1].IP {
				t.distinct = false
			}
		}
	}
	return t
}

// mergeSlices builds the endpoints of one service from all its slices.
// Slices are visited in name order; an address:port seen in several slices
// (normal while the controller moves endpoints) keeps the first entry unless
// a later one is ready and the first is not.
func mergeSlices(nn types.NamespacedName, bySlice map[string]*trimmedSlice) EndpointsMap {
	if len(bySlice) == 1 {
		for _, s := range bySlice {
			if s.distinct && len(s.endpoints) > 0 {
				p := s.ports[0]
				return EndpointsMap{{NamespacedName: nn, Port: p.name, Protocol: p.protocol}: s.endpoints}
			}
		}
	}
	names := make([]string, 0, len(bySlice))
	for n := range bySlice {
		names = append(names, n)
	}
	slices.Sort(names)
	type key struct {
		name ServicePortName
		ap   netip.AddrPort
	}
	seen := map[key]int{}
	out := EndpointsMap{}
	// Each list sized up front: grown by appending, it would hold up to
	// twice its length.
	sizes := map[ServicePortName]int{}
	for _, s := range bySlice {
		for _, p := range s.ports {
			sizes[ServicePortName{NamespacedName: nn, Port: p.name, Protocol: p.protocol}] += len(s.endpoints)
		}
	}
	for _, sn := range names {
		s := bySlice[sn]
		for _, p := range s.ports {
			spn := ServicePortName{NamespacedName: nn, Port: p.name, Protocol: p.protocol}
			for _, ep := range s.endpoints {
				ep.Port = p.port
				k := key{spn, ep.AddrPort()}
				if i, ok := seen[k]; ok {
					if ep.Ready && !out[spn][i].Ready {
						out[spn][i] = ep
					}
					continue
				}
				seen[k] = len(out[spn])
				if out[spn] == nil {
					out[spn] = make([]Endpoint, 0, sizes[spn])
				}
				out[spn] = append(out[spn], ep)
			}
		}
	}
	for spn, eps := range out {
		slices.SortFunc(eps, func(a, b Endpoint) int {
			return cmp.Or(a.IP.Compare(b.IP), cmp.Compare(a.Port, b.Port))
		})
		out[spn] = eps
	}
	return out
}

// triggerTime is the network programming start of a slice change: the
// controller's last-change-trigger-time annotation, else the event time.
func triggerTime(s *discoveryv1.EndpointSlice, now time.Time) time.Time {
	if s != nil {
		if v := s.Annotations[v1.EndpointsLastChangeTriggerTime]; v != "" {
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				return t
			}
		}
	}
	return now
}
