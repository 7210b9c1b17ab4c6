// Package dataplane is what the service proxy's control loop hands to a
// datapath (nftables, iptables, userspace): the service ports of this node
// with their endpoints already chosen (readiness, topology, traffic
// policies), and the interface every datapath implements.
package dataplane

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Interface programs a State. Each datapath computes its own deltas.
type Interface interface {
	// Sync makes the datapath match s, writing only what changed since
	// the last successful sync (everything after a failure).
	Sync(ctx context.Context, s State) error
	// FullSync rewrites everything, repairing changes made behind the
	// datapath's back; the control loop calls it on its resync timer.
	FullSync(ctx context.Context, s State) error
}

// State is everything a datapath programs on one node.
type State struct {
	// ServiceCIDRs: traffic to an address here that is not a service port
	// is rejected, so nothing in the range leaks to a default route.
	ServiceCIDRs []netip.Prefix
	// PodCIDR is the cluster's pod CIDR; traffic from outside it to a
	// ClusterIP is masqueraded. Invalid (zero) means no ClusterIP traffic
	// is masqueraded except hairpin.
	PodCIDR netip.Prefix
	// NodeIPs are the addresses NodePorts answer on (never 127.0.0.1).
	NodeIPs []netip.Addr
	// Services is read only during the call: the caller may reuse the
	// list itself. The slices inside each ServicePort (endpoints,
	// addresses, ranges) must never be modified once handed over:
	// datapaths keep them as the applied state, so 100,000 endpoints
	// are not held twice.
	Services []ServicePort
	// Changed, when not nil, is a promise from the caller: every service
	// port whose Name is not in it is Equal to the one in the State of
	// the last successful Sync, and Services is sorted by Name with no
	// name twice. A partial Sync may then look at the changed names
	// alone (see ChangedPorts) instead of comparing every service port.
	// nil promises nothing.
	Changed map[string]bool
}

// ChangedPorts returns, when s.Changed is set, the changed names in order
// with each one's service port in s (nil: it is gone); ok is false when
// s.Changed is nil.
func (s *State) ChangedPorts() (names []string, ports []*ServicePort, ok bool) {
	if s.Changed == nil {
		return nil, nil, false
	}
	names = make([]string, 0, len(s.Changed))
	for n := range s.Changed {
		names = append(names, n)
	}
	slices.Sort(names)
	ports = make([]*ServicePort, len(names))
	for i, n := range names {
		if at, found := slices.BinarySearchFunc(s.Services, n, func(sp ServicePort, n string) int { return strings.Compare(sp.Name, n) }); found {
			ports[i] = &s.Services[at]
		}
	}
	return names, ports, true
}

// ServicePort is one port of one service.
type ServicePort struct {
	Name     string       // ns/name:port/proto, for comments/debug only
	VIPs     []netip.Addr // ClusterIPs
	External []netip.Addr // spec.externalIPs
	// LoadBalancerIPs are the status.loadBalancer.ingress IPs in VIP mode
	// (ipMode Proxy ones are not programmed: the load balancer proxies
	// to node ports itself).
	LoadBalancerIPs []netip.Addr
	// SourceRanges is spec.loadBalancerSourceRanges: traffic to a
	// LoadBalancerIP from any other source is dropped. Empty: any source.
	SourceRanges []netip.Prefix
	Protocol     string // tcp|udp|sctp
	Port         uint16
	NodePort     uint16 // 0: none
	// Endpoints serve cluster traffic (ClusterIPs).
	Endpoints []netip.AddrPort
	// ExternalEndpoints serve external traffic (External, LoadBalancerIPs
	// and NodePort); the same as Endpoints unless ExternalLocal.
	ExternalEndpoints []netip.AddrPort
	// RemoteEndpoints are the addresses, sorted, of the endpoints (of
	// either list) known to run on other nodes. A pod's packets to a
	// service are translated on its own node, so only endpoints that may
	// be on this one need the hairpin masquerade (a pod reaching itself
	// through its service); an endpoint whose node is unknown is not
	// listed and keeps it.
	RemoteEndpoints []netip.Addr
	// ClusterDrop and ExternalDrop say what happens to traffic whose
	// endpoint list is empty: dropped silently when set (a Local traffic
	// policy and no endpoint on this node, while others have some, as
	// kube-proxy does), otherwise rejected at once (TCP reset, ICMP port
	// unreachable).
	ClusterDrop, ExternalDrop bool
	// ExternalLocal is externalTrafficPolicy Local: external traffic is not
	// masqueraded.
	ExternalLocal bool
	// Affinity is sessionAffinity ClientIP: a client address that reached
	// an endpoint keeps reaching it, while it is still an endpoint, until
	// AffinityTimeout has passed since the client's last new connection
	// (0 means 10800 s, the Kubernetes default; rounded up to seconds).
	Affinity        bool
	AffinityTimeout time.Duration
	// Scheduler is the userspace mode's scheduler for this service port
	// (the portal.dev/scheduler annotation); "" means the proxy's default.
	// The kernel modes pick at random.
	Scheduler string
	// Weights are the userspace mode's endpoint weights (the
	// portal.dev/weights annotation); an endpoint not in it weighs 1.
	Weights map[netip.AddrPort]int
}

// DefaultAffinityTimeout is sessionAffinityConfig.clientIP.timeoutSeconds'
// default.
const DefaultAffinityTimeout = 10800 * time.Second

// AffinitySeconds is the affinity timeout in whole seconds, rounded up.
func (sp *ServicePort) AffinitySeconds() int {
	d := sp.AffinityTimeout
	if d <= 0 {
		d = DefaultAffinityTimeout
	}
	return int((d + time.Second - 1) / time.Second)
}

// Equal says whether two service ports program the same rules.
func (sp *ServicePort) Equal(o *ServicePort) bool {
	return sp.Name == o.Name && sp.Protocol == o.Protocol && sp.Port == o.Port && sp.NodePort == o.NodePort &&
		sp.ExternalLocal == o.ExternalLocal && sp.ClusterDrop == o.ClusterDrop && sp.ExternalDrop == o.ExternalDrop &&
		sp.Affinity == o.Affinity && sp.AffinityTimeout == o.AffinityTimeout && sp.Scheduler == o.Scheduler && maps.Equal(sp.Weights, o.Weights) &&
		slices.Equal(sp.VIPs, o.VIPs) && slices.Equal(sp.External, o.External) &&
		slices.Equal(sp.LoadBalancerIPs, o.LoadBalancerIPs) && slices.Equal(sp.SourceRanges, o.SourceRanges) &&
		slices.Equal(sp.Endpoints, o.Endpoints) && slices.Equal(sp.ExternalEndpoints, o.ExternalEndpoints) &&
		slices.Equal(sp.RemoteEndpoints, o.RemoteEndpoints)
}

// NeedsHairpin reports whether endpoint address a may be on this node, so
// that its traffic to its own service needs the hairpin masquerade.
func (sp *ServicePort) NeedsHairpin(a netip.Addr) bool {
	_, remote := slices.BinarySearchFunc(sp.RemoteEndpoints, a, netip.Addr.Compare)
	return !remote
}

// SortByName sorts service ports by Name, the order State.Changed needs.
func SortByName(sps []ServicePort) {
	slices.SortFunc(sps, func(a, b ServicePort) int { return strings.Compare(a.Name, b.Name) })
}

// ChangedNames is the State.Changed of going from service ports a to b:
// the names that are in one only or not Equal in both.
func ChangedNames(a, b []ServicePort) map[string]bool {
	index := func(sps []ServicePort) map[string]*ServicePort {
		m := make(map[string]*ServicePort, len(sps))
		for i := range sps {
			m[sps[i].Name] = &sps[i]
		}
		return m
	}
	am, bm := index(a), index(b)
	out := map[string]bool{}
	for n, sp := range am {
		if o := bm[n]; o == nil || !sp.Equal(o) {
			out[n] = true
		}
	}
	for n := range bm {
		if am[n] == nil {
			out[n] = true
		}
	}
	return out
}
