// Package hostport maps a node's host ports to the pods that ask for them
// (a container port's hostPort and hostIP), as the CNI portmap plugin does
// for a kubelet: DNAT from the node's addresses (or the one hostIP) to
// the pod, for traffic arriving at the node and for the node's own, with
// loopback (hostIP 127.0.0.1) included.
//
// The whole mapping is one small nftables table, rewritten in a single
// transaction whenever the set of mappings changes; the pods' host ports
// are few, so there is no delta to keep.
package hostport

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/portal-net/portal/internal/sys/sysctl"
)

// TableName is the nftables table (family ip) holding the mappings.
const TableName = "portal-hostport"

// Mapping sends HostIP:HostPort (any local address when HostIP is not
// valid) to PodIP:ContainerPort.
type Mapping struct {
	HostIP        netip.Addr
	HostPort      int32
	Protocol      corev1.Protocol
	PodIP         netip.Addr
	ContainerPort int32
}

// FromPods returns the mappings the running pods ask for: every container
// port with a hostPort of a pod that has an IPv4 pod IP, is not on the
// host's network (its ports are the host's already) and has not finished.
// The order is stable.
func FromPods(pods []*corev1.Pod) []Mapping {
	var out []Mapping
	for _, p := range pods {
		if p.Spec.HostNetwork || p.DeletionTimestamp != nil ||
			p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		podIP, err := netip.ParseAddr(p.Status.PodIP)
		if err != nil || !podIP.Is4() {
			continue
		}
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.HostPort <= 0 {
					continue
				}
				m := Mapping{HostPort: cp.HostPort, Protocol: cp.Protocol, PodIP: podIP, ContainerPort: cp.ContainerPort}
				if m.Protocol == "" {
					m.Protocol = corev1.ProtocolTCP
				}
				if cp.HostIP != "" {
					hostIP, err := netip.ParseAddr(cp.HostIP)
					if err != nil || !hostIP.Is4() {
						continue
					}
					if !hostIP.IsUnspecified() {
						m.HostIP = hostIP
					}
				}
				out = append(out, m)
			}
		}
	}
	slices.SortFunc(out, func(a, b Mapping) int {
		if c := a.HostIP.Compare(b.HostIP); c != 0 {
			return c
		}
		if a.HostPort != b.HostPort {
			return int(a.HostPort - b.HostPort)
		}
		if c := strings.Compare(string(a.Protocol), string(b.Protocol)); c != 0 {
			return c
		}
		return a.PodIP.Compare(b.PodIP)
	})
	return slices.Compact(out)
}

// Table writes the mappings into TableName.
type Table struct {
	nft    knftables.Interface
	bridge string
}

// New returns a Table writing through nft (knftables.New(knftables.
// IPv4Family, TableName) or a fake) for pods on bridge, which gets
// route_localnet once a mapping is reachable on 127.0.0.1 (a DNAT from
// loopback to a pod is routed out of it; "" leaves it alone).
func New(nft knftables.Interface, bridge string) *Table { return &Table{nft: nft, bridge: bridge} }

// Sync replaces the table's rules with ms, in one transaction: traffic
// to a mapping never finds the table half written.
func (t *Table) Sync(ctx context.Context, ms []Mapping) error {
	tx := t.nft.NewTransaction()
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("portal: pods' host ports")})
	tx.Add(&knftables.Chain{Name: "prerouting", Type: knftables.PtrTo(knftables.NATType),
		Hook: knftables.PtrTo(knftables.PreroutingHook), Priority: knftables.PtrTo(knftables.DNATPriority + "-5")})
	tx.Add(&knftables.Chain{Name: "output", Type: knftables.PtrTo(knftables.NATType),
		Hook: knftables.PtrTo(knftables.OutputHook), Priority: knftables.PtrTo(knftables.DNATPriority + "-5")})
	tx.Add(&knftables.Chain{Name: "postrouting", Type: knftables.PtrTo(knftables.NATType),
		Hook: knftables.PtrTo(knftables.PostroutingHook), Priority: knftables.PtrTo(knftables.SNATPriority)})
	// Loopback mappings need route_localnet on the pod bridge, which
	// would also let a pod send to the node's 127.0.0.1 services: packets
	// for 127.0.0.0/8 that did not come from the node itself are dropped
	// (CVE-2020-8558).
	tx.Add(&knftables.Chain{Name: "localnet", Type: knftables.PtrTo(knftables.FilterType),
		Hook: knftables.PtrTo(knftables.PreroutingHook), Priority: knftables.PtrTo(knftables.RawPriority)})
	tx.Add(&knftables.Chain{Name: "mappings"})
	for _, c := range []string{"prerouting", "output", "postrouting", "localnet", "mappings"} {
		tx.Flush(&knftables.Chain{Name: c})
	}
	tx.Add(&knftables.Rule{Chain: "prerouting", Rule: "jump mappings"})
	tx.Add(&knftables.Rule{Chain: "output", Rule: "jump mappings"})
	tx.Add(&knftables.Rule{Chain: "localnet", Rule: `iifname != "lo" ip daddr 127.0.0.0/8 drop`})
	// The node's own connections to 127.0.0.1 leave with the bridge's
	// address, so the pod can answer them.
	tx.Add(&knftables.Rule{Chain: "postrouting", Rule: "ct status dnat ip saddr 127.0.0.0/8 masquerade"})
	for _, m := range ms {
		proto := strings.ToLower(string(m.Protocol))
		to := fmt.Sprintf("meta l4proto %s th dport %d dnat to %s:%d", proto, m.HostPort, m.PodIP, m.ContainerPort)
		if m.HostIP.IsValid() {
			tx.Add(&knftables.Rule{Chain: "mappings", Rule: fmt.Sprintf("ip daddr %s %s", m.HostIP, to)})
		} else {
			tx.Add(&knftables.Rule{Chain: "mappings", Rule: "fib daddr type local " + to})
		}
		// A pod reaching its own host port comes back to itself from
		// the bridge's address (hairpin).
		tx.Add(&knftables.Rule{Chain: "postrouting", Rule: fmt.Sprintf(
			"ip saddr %s ip daddr %s meta l4proto %s th dport %d ct status dnat masquerade", m.PodIP, m.PodIP, proto, m.ContainerPort)})
	}
	if err := t.nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("host ports: %w", err)
	}
	if t.bridge != "" && slices.ContainsFunc(ms, reachesLoopback) {
		name := "net.ipv4.conf." + t.bridge + ".route_localnet"
		if _, err := sysctl.Ensure(sysctl.New(), name, "1"); err != nil {
			return fmt.Errorf("host ports on 127.0.0.1: %w", err)
		}
	}
	return nil
}

func reachesLoopback(m Mapping) bool { return !m.HostIP.IsValid() || m.HostIP.IsLoopback() }

// Delete removes the table.
func (t *Table) Delete(ctx context.Context) error {
	tx := t.nft.NewTransaction()
	tx.Delete(&knftables.Table{})
	if err := t.nft.Run(ctx, tx); err != nil && !knftables.IsNotFound(err) {
		return err
	}
	return nil
}
