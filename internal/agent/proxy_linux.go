package agent

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/portal-net/portal/internal/podruntime/network"
)

// serviceRouteProtocol marks the service CIDR route (the pod network's own
// routes use network.RouteProtocol).
const serviceRouteProtocol = network.RouteProtocol + 1

// serviceRoute sends the service CIDR to the pod bridge, so connections
// from the node to a ClusterIP get a route (the proxy then DNATs them) and
// nothing in the range can follow a default route off the node: addresses
// that are not services are rejected by the proxy's rules.
func serviceRoute(cidr netip.Prefix) error {
	br, err := netlink.LinkByName(network.DefaultBridgeName)
	if err != nil {
		return err
	}
	_, dst, err := net.ParseCIDR(cidr.String())
	if err != nil {
		return err
	}
	return netlink.RouteReplace(&netlink.Route{
		LinkIndex: br.Attrs().Index,
		Dst:       dst,
		Scope:     netlink.SCOPE_LINK,
		Protocol:  netlink.RouteProtocol(serviceRouteProtocol),
		Table:     unix.RT_TABLE_MAIN,
	})
}
