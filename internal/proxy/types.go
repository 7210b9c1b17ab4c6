package proxy

import (
	"fmt"
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// ServicePortName names one port of one Service. Port is the service port's
// name ("" for a single unnamed port); it is also the key EndpointSlice ports
// are matched by, which is how named target ports are resolved.
type ServicePortName struct {
	types.NamespacedName
	Port     string
	Protocol v1.Protocol
}

func (n ServicePortName) String() string {
	return fmt.Sprintf("%s/%s:%s/%s", n.Namespace, n.Name, n.Port, n.Protocol)
}

// LoadBalancerIngress is one IP of status.loadBalancer.ingress. Mode is VIP
// (the default: the node accepts the IP itself) or Proxy (a load balancer
// sits in front and the node must not capture the IP).
type LoadBalancerIngress struct {
	IP   netip.Addr
	Mode v1.LoadBalancerIPMode
}

// ServicePort is everything a datapath needs to program one port of one
// Service, with defaults applied and invalid addresses dropped. Values are
// immutable once built: trackers hand out shared pointers.
type ServicePort struct {
	Name ServicePortName
	Type v1.ServiceType

	// ClusterIPs holds every family's cluster IP (spec.clusterIPs).
	ClusterIPs []netip.Addr
	Port       int32
	Protocol   v1.Protocol
	// TargetPort is informational: endpoints already carry resolved ports.
	TargetPort intstr.IntOrString
	// NodePort is 0 when the service has none (ClusterIP, or LoadBalancer
	// with allocateLoadBalancerNodePorts=false and none set).
	NodePort                      int32
	ExternalIPs                   []netip.Addr
	LoadBalancerIngress           []LoadBalancerIngress
	LoadBalancerSourceRanges      []netip.Prefix
	AllocateLoadBalancerNodePorts bool

	// SessionAffinityClientIP pins a client IP to one endpoint for
	// StickyMaxAgeSeconds (default 10800).
	SessionAffinityClientIP bool
	StickyMaxAgeSeconds     int32

	// ExternalPolicyLocal is true only for externally reachable services
	// (NodePort, LoadBalancer or with externalIPs) with
	// externalTrafficPolicy=Local, as kube-proxy treats it.
	ExternalPolicyLocal bool
	InternalPolicyLocal bool
	// HealthCheckNodePort is set for LoadBalancer services with
	// externalTrafficPolicy=Local; 0 otherwise.
	HealthCheckNodePort int32

	// TrafficDistribution is spec.trafficDistribution ("" when unset).
	TrafficDistribution string
	// TopologyKeys is the legacy spec.topologyKeys list portal still serves.
	TopologyKeys []string
	// TopologyMode is the service.kubernetes.io/topology-mode annotation (or
	// the older topology-aware-hints one); it enables EndpointSlice hints.
	TopologyMode string
	// Scheduler is the portal.dev/scheduler annotation ("" when unset).
	Scheduler string
	// Weights are the portal.dev/weights annotation's pod weights (nil
	// when unset: every endpoint weighs 1).
	Weights map[string]int
}

// UsesUDPConntrack reports whether stale conntrack entries of this port
// matter: connectionless protocols keep flowing to a vanished backend.
func (sp *ServicePort) UsesUDPConntrack() bool {
	return sp.Protocol == v1.ProtocolUDP || sp.Protocol == v1.ProtocolSCTP
}

// Endpoint is one backend address:port of one service port, merged from the
// EndpointSlices of the service.
type Endpoint struct {
	IP   netip.Addr
	Port int32
	// Ready, Serving and Terminating are the EndpointSlice conditions with
	// the API's defaults applied (ready: nil→true, serving: nil→ready,
	// terminating: nil→false).
	Ready       bool
	Serving     bool
	Terminating bool
	NodeName    string
	Zone        string
	// Pod is the name of the pod behind the endpoint (targetRef), for
	// the userspace mode's portal.dev/weights; "" for other targets.
	Pod string
	// Hints are the slice's hints; nil when the endpoint has none (most
	// have none: a pointer keeps 100,000 endpoints small).
	Hints *Hints
	// IsLocal is true when NodeName is the node the tracker runs on.
	IsLocal bool
}

// AddrPort returns the endpoint's address and port.
func (e Endpoint) AddrPort() netip.AddrPort {
	return netip.AddrPortFrom(e.IP, uint16(e.Port))
}

// String returns "ip:port" ("[ip6]:port" for IPv6).
func (e Endpoint) String() string { return e.AddrPort().String() }

func (e Endpoint) equal(o Endpoint) bool {
	return e.IP == o.IP && e.Port == o.Port && e.Ready == o.Ready && e.Serving == o.Serving &&
		e.Terminating == o.Terminating && e.NodeName == o.NodeName && e.Zone == o.Zone &&
		e.IsLocal == o.IsLocal && slices.Equal(e.ZoneHints(), o.ZoneHints()) && slices.Equal(e.NodeHints(), o.NodeHints())
}

// Hints are an endpoint's hints.forZones and forNodes, each sorted.
type Hints struct {
	Zones, Nodes []string
}

// ZoneHints returns the zones the endpoint is hinted for (nil: none).
func (e Endpoint) ZoneHints() []string {
	if e.Hints == nil {
		return nil
	}
	return e.Hints.Zones
}

// NodeHints returns the nodes the endpoint is hinted for (nil: none).
func (e Endpoint) NodeHints() []string {
	if e.Hints == nil {
		return nil
	}
	return e.Hints.Nodes
}

// ServicePortMap is every proxied service port by name.
type ServicePortMap map[ServicePortName]*ServicePort

// EndpointsMap is the merged endpoints of every EndpointSlice port name,
// each list sorted by address and port. A name may exist without a matching
// service port (slices can arrive before their service).
type EndpointsMap map[ServicePortName][]Endpoint

func endpointsEqual(a, b []Endpoint) bool {
	return slices.EqualFunc(a, b, Endpoint.equal)
}
