// Package network gives pods their network on a node: a bridge portal0
// holding the first IP of the node's pod CIDR, per pod a named network
// namespace with loopback up, a veth into the bridge and an IP from
// host-local IPAM persisted on disk, and host-gateway routes to the other
// nodes' pod CIDRs.
package network

import (
	"context"
	"net"
)

// Manager is the pod network of one node. Implementations: the netlink one
// (linux) and a validating fake for the layers above.
type Manager interface {
	// Setup creates (or checks) the bridge with the gateway address of
	// podCIDR, enables forwarding, and loads the IPAM state.
	Setup(ctx context.Context, podCIDR *net.IPNet) error
	// Add creates the named network namespace for a pod, a veth pair with
	// the pod end named eth0 (MTU of the bridge), an IP from IPAM owned by
	// id, and the default route via the bridge. Idempotent per id: a
	// second Add returns the same result.
	Add(ctx context.Context, id string) (*Attachment, error)
	// Del removes the namespace, the veth and releases the IP of id.
	// Unknown ids are not an error.
	Del(ctx context.Context, id string) error
	// List returns the ids that have an attachment (after a restart too).
	List(ctx context.Context) ([]string, error)
	// SyncRoutes makes the node's routes to other nodes' pod CIDRs exactly
	// routes (pod CIDR → node IP); routes it installed before and that are
	// no longer wanted are removed.
	SyncRoutes(ctx context.Context, routes []Route) error
}

// Attachment is a pod's place on the network.
type Attachment struct {
	ID string
	// NetnsPath is the bind-mounted namespace file (open it to setns).
	NetnsPath string
	// HostVeth is the bridge-side interface name.
	HostVeth string
	IP       net.IP
	Gateway  net.IP
	// PrefixLen of the pod CIDR (the pod's eth0 address is IP/PrefixLen).
	PrefixLen int
}

// Route is one host-gateway route.
type Route struct {
	Dst *net.IPNet
	Via net.IP
}
