package nftables

import (
	"net/netip"
	"time"
)

// State is everything this datapath programs. The proxy model fills it
// from Services, EndpointSlices and Nodes; endpoint selection (readiness,
// topology, traffic policies) has already happened.
type State struct {
	// ServiceCIDRs: traffic to an address here that is not a service port
	// is rejected, so nothing in the range leaks to a default route.
	ServiceCIDRs []netip.Prefix
	// PodCIDR is the cluster's pod CIDR; traffic from outside it to a
	// ClusterIP is masqueraded. Invalid (zero) means no ClusterIP traffic
	// is masqueraded except hairpin.
	PodCIDR netip.Prefix
	// NodeIPs are the addresses NodePorts answer on (never 127.0.0.1).
	NodeIPs  []netip.Addr
	Services []ServicePort
}

// ServicePort is one port of one service.
type ServicePort struct {
	Name     string       // ns/name:port/proto, for comments/debug only
	VIPs     []netip.Addr // ClusterIPs
	External []netip.Addr // externalIPs + LB ingress IPs (VIP mode)
	Protocol string       // tcp|udp|sctp
	Port     uint16
	NodePort uint16 // 0: none
	// Endpoints serve cluster traffic (ClusterIPs).
	Endpoints []netip.AddrPort
	// ExternalEndpoints serve external traffic (External and NodePort);
	// the same as Endpoints unless ExternalLocal.
	ExternalEndpoints []netip.AddrPort
	// ExternalLocal is externalTrafficPolicy Local: external traffic is not
	// masqueraded and is dropped when ExternalEndpoints is empty.
	ExternalLocal bool
	// Affinity is sessionAffinity ClientIP: a client address that reached
	// an endpoint keeps reaching it, while it is still an endpoint, until
	// AffinityTimeout has passed since the client's last new connection
	// (0 means 10800 s, the Kubernetes default; rounded up to seconds).
	Affinity        bool
	AffinityTimeout time.Duration
}
