//go:build linux

package nftables

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strconv"

	"sigs.k8s.io/knftables"

	"github.com/portal-net/portal/internal/proxy/dataplane"
)

// Session affinity (ClientIP) is the one feature that gives a service
// port chains of its own: at most two (cluster traffic, and external
// plus NodePort traffic), plus one set per endpoint holding the client
// addresses pinned to it. Such a chain first sends a client found in an
// endpoint's set to that endpoint, then picks at random: rule k of the
// N pick rules matches with probability 1/(N-k), which is an equal
// choice without one chain per endpoint. Every rule that DNATs also
// refreshes the client in the endpoint's set, with the service's
// timeout; the nat chains only see a connection's first packet, so the
// timeout runs from the client's last new connection.
//
// Sets are named after the endpoint, so an endpoint change leaves the
// other endpoints' pins alone and a removed endpoint's set (and rule)
// goes in the same transaction: nobody is sent to it any more. A full
// sync adds sets but never flushes them, so a restart or periodic
// resync keeps the pins.

// affPrefix starts every affinity chain and set name, so a full sync can
// tell stale ones from the fixed sets.
const affPrefix = "aff-"

type affinity struct {
	base    string // aff-<hash of the service port name>
	proto   string
	timeout string // "<n>s"
	podCIDR netip.Prefix
	eps     map[netip.AddrPort]bool
}

func newAffinity(sp dataplane.ServicePort, proto string, podCIDR netip.Prefix) *affinity {
	h := fnv.New64a()
	h.Write([]byte(sp.Name))
	return &affinity{
		base:    fmt.Sprintf("%s%016x", affPrefix, h.Sum64()),
		proto:   proto,
		timeout: strconv.Itoa(sp.AffinitySeconds()) + "s",
		podCIDR: podCIDR,
		eps:     map[netip.AddrPort]bool{},
	}
}

func (a *affinity) setName(ep netip.AddrPort) string {
	return a.base + "-" + ep.Addr().Unmap().String() + "-" + strconv.Itoa(int(ep.Port()))
}

// chain adds to f the chain serving eps for traffic of kind k and returns
// its name. External and NodePort traffic share one chain: they mark
// alike and the DNAT targets are literal.
func (a *affinity) chain(f *fragment, k pickKind, eps []netip.AddrPort) string {
	name := a.base
	if k != pickCluster {
		name += "-ext"
	}
	if _, done := f.chains[name]; done {
		return name
	}
	rules := markRules(k, a.podCIDR)
	dnat := func(ep netip.AddrPort) string {
		s := a.setName(ep)
		return fmt.Sprintf("meta l4proto %s update @%s { ip saddr timeout %s } dnat to %s", a.proto, s, a.timeout, ep.Addr().Unmap().String()+":"+strconv.Itoa(int(ep.Port())))
	}
	for _, ep := range eps {
		a.eps[ep] = true
		rules = append(rules, "ip saddr @"+a.setName(ep)+" "+dnat(ep))
	}
	for i, ep := range eps {
		if left := len(eps) - i; left > 1 {
			rules = append(rules, fmt.Sprintf("numgen random mod %d == 0 %s", left, dnat(ep)))
		} else {
			rules = append(rules, dnat(ep))
		}
	}
	f.chains[name] = rules
	return name
}

func (a *affinity) setNames() []string {
	names := make([]string, 0, len(a.eps))
	for ep := range a.eps {
		names = append(names, a.setName(ep))
	}
	slices.Sort(names)
	return names
}

// affinitySet is the definition of every affinity set; the timeout is
// per element, set by the rules, so a timeout change rewrites rules only.
func affinitySet(name string) *knftables.Set {
	return &knftables.Set{Name: name, Type: "ipv4_addr", Flags: []knftables.SetFlag{knftables.DynamicFlag, knftables.TimeoutFlag}}
}
