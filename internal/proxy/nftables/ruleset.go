//go:build linux

package nftables

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"sigs.k8s.io/knftables"
)

// TableName is the table this package owns, in the ip family.
const TableName = "portal-proxy"

// masqBit marks packets to masquerade in postrouting, as kube-proxy does.
const masqBit = "0x4000"

// Sets and maps of the table. Service addresses and NodePorts are keys;
// endpoints are values; nothing per service is a chain.
const (
	mapDispatch            = "dispatch"              // daddr . proto . dport → goto <kind>pick-<proto>-<N>
	mapNodePorts           = "nodeports"             // proto . dport → goto np-[local-]pick-<proto>-<N>
	mapNoEndpoints         = "no-endpoints"          // daddr . proto . dport → goto reject-chain | drop
	mapNodePortNoEndpoints = "nodeport-no-endpoints" // proto . dport → goto reject-chain | drop
	setServicePorts        = "service-ports"         // every ClusterIP . proto . port that exists
	setServiceCIDRs        = "service-cidrs"
	setNodeIPs             = "node-ips"
	setHairpin             = "hairpin"            // endpoint . endpoint: a pod reaching itself through a service
	setSourceFiltered      = "lb-source-filtered" // LB ip . proto . port with loadBalancerSourceRanges
	setSourceAllowed       = "lb-source-allowed"  // LB ip . proto . port . allowed source range
	chainReject            = "reject-chain"
	chainServices          = "services"
	chainFilterServices    = "filter-services"
)

// container is the definition of one set or map.
type container struct {
	name   string
	isMap  bool
	typ    string
	typeOf string
	flags  []knftables.SetFlag
	// key and value lay out the elements of a container whose elements
	// go over netlink (Elements); nil key: elements go through knftables
	// with the rest (the small interval sets).
	key, value []field
}

// protocols are the service protocols, each with its own backends maps.
var protocols = []string{"tcp", "udp", "sctp"}

// backendsMap and nodePortBackendsMap name the maps holding the endpoint
// slots of proto's service addresses and NodePorts:
// daddr . proto . dport . slot → endpoint, proto . dport . slot → endpoint.
func backendsMap(proto string) string         { return "backends-" + proto }
func nodePortBackendsMap(proto string) string { return "nodeport-backends-" + proto }

// The `numgen random mod 2` in a typeof key only declares the key's type;
// each pick chain looks the map up with its own modulus. There is one
// backends map per protocol because the value must be declared with a
// protocol's port (`ip daddr . udp dport`): nft derives from it a
// dependency of the DNAT rule, so a map declared `: ip daddr . tcp dport`
// silently never DNATs UDP or SCTP (the rule reads `tcp dport` and does not
// match), and nft 1.0.6 cannot read back a map declared `: ip daddr . th
// dport` ("conflicting protocols specified: ip vs. th"). An explicit
// `type ... . mark` key does not accept numgen ("datatype mismatch").
var containers = buildContainers()

func buildContainers() []container {
	cs := []container{
		{name: mapDispatch, isMap: true, typ: "ipv4_addr . inet_proto . inet_service : verdict",
			key: []field{fieldAddr, fieldProto, fieldPort}, value: []field{fieldVerdict}},
		{name: mapNodePorts, isMap: true, typ: "inet_proto . inet_service : verdict",
			key: []field{fieldProto, fieldPort}, value: []field{fieldVerdict}},
	}
	for _, p := range protocols {
		cs = append(cs,
			container{name: backendsMap(p), isMap: true,
				typeOf: "ip daddr . meta l4proto . th dport . numgen random mod 2 : ip daddr . " + p + " dport",
				key:    []field{fieldAddr, fieldProto, fieldPort, fieldSlot}, value: []field{fieldAddr, fieldPort}},
			container{name: nodePortBackendsMap(p), isMap: true,
				typeOf: "meta l4proto . th dport . numgen random mod 2 : ip daddr . " + p + " dport",
				key:    []field{fieldProto, fieldPort, fieldSlot}, value: []field{fieldAddr, fieldPort}})
	}
	return append(cs, []container{
		{name: mapNoEndpoints, isMap: true, typ: "ipv4_addr . inet_proto . inet_service : verdict",
			key: []field{fieldAddr, fieldProto, fieldPort}, value: []field{fieldVerdict}},
		{name: mapNodePortNoEndpoints, isMap: true, typ: "inet_proto . inet_service : verdict",
			key: []field{fieldProto, fieldPort}, value: []field{fieldVerdict}},
		{name: setServicePorts, typ: "ipv4_addr . inet_proto . inet_service", key: []field{fieldAddr, fieldProto, fieldPort}},
		{name: setServiceCIDRs, typ: "ipv4_addr", flags: []knftables.SetFlag{knftables.IntervalFlag}},
		{name: setNodeIPs, typ: "ipv4_addr", key: []field{fieldAddr}},
		{name: setHairpin, typ: "ipv4_addr . ipv4_addr", key: []field{fieldAddr, fieldAddr}},
		{name: setSourceFiltered, typ: "ipv4_addr . inet_proto . inet_service", key: []field{fieldAddr, fieldProto, fieldPort}},
		{name: setSourceAllowed, typ: "ipv4_addr . inet_proto . inet_service . ipv4_addr", flags: []knftables.SetFlag{knftables.IntervalFlag}},
	}...)
}

// viaNetlink says whether c's elements are written through Elements.
func (c container) viaNetlink() bool { return c.key != nil }

func (c container) object() knftables.Object {
	if c.isMap {
		return &knftables.Map{Name: c.name, Type: c.typ, TypeOf: c.typeOf, Flags: c.flags}
	}
	return &knftables.Set{Name: c.name, Type: c.typ, TypeOf: c.typeOf, Flags: c.flags}
}

func (c container) element(key, value []string) *knftables.Element {
	if c.isMap {
		return &knftables.Element{Map: c.name, Key: key, Value: value}
	}
	return &knftables.Element{Set: c.name, Key: key}
}

// pickKind is the kind of traffic a pick chain serves; it decides whether
// the chain marks for masquerade and which backends map it reads.
type pickKind int

const (
	pickCluster pickKind = iota
	pickExternal
	pickExternalLocal
	pickNodePort
	pickNodePortLocal
)

var pickPrefix = [...]string{"pick", "ext-pick", "ext-local-pick", "np-pick", "np-local-pick"}

// pickChainName names the pick chain of kind k for proto's service ports
// with n endpoints, e.g. pick-udp-3: the chain reads proto's backends map.
func pickChainName(k pickKind, proto string, n int) string {
	return pickPrefix[k] + "-" + proto + "-" + strconv.Itoa(n)
}

// pickRules are the rules of one pick chain: mark for masquerade where
// needed, then DNAT to slot (numgen random mod n) of proto's backends.
func pickRules(k pickKind, proto string, n int, podCIDR netip.Prefix) []string {
	rules := markRules(k, podCIDR)
	key := "ip daddr . meta l4proto . th dport"
	m := backendsMap(proto)
	if k == pickNodePort || k == pickNodePortLocal {
		key, m = "meta l4proto . th dport", nodePortBackendsMap(proto)
	}
	return append(rules, fmt.Sprintf("dnat to %s . numgen random mod %d map @%s", key, n, m))
}

// markRules mark for masquerade the traffic of kind k that needs it:
// ClusterIP traffic from outside the pod CIDR, external traffic unless
// externalTrafficPolicy is Local.
func markRules(k pickKind, podCIDR netip.Prefix) []string {
	mark := "meta mark set meta mark | " + masqBit
	switch k {
	case pickCluster:
		if podCIDR.IsValid() {
			return []string{"ip saddr != " + podCIDR.Masked().String() + " " + mark}
		}
	case pickExternal, pickNodePort:
		return []string{mark}
	}
	return nil
}

// baseChain is a chain with fixed rules, present in every ruleset.
type baseChain struct {
	name     string
	typ      knftables.BaseChainType
	hook     knftables.BaseChainHook
	priority knftables.BaseChainPriority
	rules    []string
}

func (c baseChain) object() *knftables.Chain {
	ch := &knftables.Chain{Name: c.name}
	if c.hook != "" {
		ch.Type, ch.Hook, ch.Priority = &c.typ, &c.hook, &c.priority
	}
	return ch
}

// Rejects run in filter chains just before DNAT (dstnat - 10), both for
// forwarded and for locally generated traffic, and only on new
// connections, as kube-proxy's: a service briefly without ready endpoints
// must not reset the connections it already has (their packets are
// DNATed by conntrack, not by our rules). NodePorts are matched by
// @node-ips alone: an address in it is local by construction, so a fib
// lookup would add nothing.
var baseChains = []baseChain{
	{name: "filter-prerouting", typ: knftables.FilterType, hook: knftables.PreroutingHook, priority: "dstnat - 10",
		rules: []string{"ct state new jump " + chainFilterServices}},
	{name: "filter-output", typ: knftables.FilterType, hook: knftables.OutputHook, priority: "-110",
		rules: []string{"ct state new jump " + chainFilterServices}},
	{name: chainFilterServices, rules: []string{
		"ip daddr . meta l4proto . th dport @" + setSourceFiltered + " ip daddr . meta l4proto . th dport . ip saddr != @" + setSourceAllowed + " drop",
		"ip daddr . meta l4proto . th dport vmap @" + mapNoEndpoints,
		"ip daddr @" + setNodeIPs + " meta l4proto . th dport vmap @" + mapNodePortNoEndpoints,
		"ip daddr @" + setServiceCIDRs + " ip daddr . meta l4proto . th dport != @" + setServicePorts + " goto " + chainReject,
	}},
	{name: chainReject, rules: []string{
		"meta l4proto tcp reject with tcp reset",
		"reject",
	}},
	{name: "nat-prerouting", typ: knftables.NATType, hook: knftables.PreroutingHook, priority: knftables.DNATPriority,
		rules: []string{"jump " + chainServices}},
	{name: "nat-output", typ: knftables.NATType, hook: knftables.OutputHook, priority: "-100",
		rules: []string{"jump " + chainServices}},
	{name: chainServices, rules: []string{
		"ip daddr . meta l4proto . th dport vmap @" + mapDispatch,
		"ip daddr @" + setNodeIPs + " meta l4proto . th dport vmap @" + mapNodePorts,
	}},
	// nft cannot compare ip saddr with ip daddr, so hairpin traffic is
	// matched against @hairpin, which holds ep . ep for every endpoint
	// that may be on this node (dataplane.ServicePort.NeedsHairpin).
	{name: "nat-postrouting", typ: knftables.NATType, hook: knftables.PostroutingHook, priority: knftables.SNATPriority,
		rules: []string{
			"meta mark & " + masqBit + " == " + masqBit + " meta mark set meta mark & 0xffffbfff masquerade",
			"ct status dnat ip saddr . ip daddr @" + setHairpin + " masquerade",
		}},
}

// elementOf turns a stored key and value into a knftables element.
func (c container) elementOf(key, value string) *knftables.Element {
	var v []string
	if value != "" {
		v = strings.Split(value, " . ")
	}
	return c.element(strings.Split(key, " . "), v)
}

func byName(name string) container {
	c, ok := lookup(name)
	if !ok {
		panic("nftables: unknown container " + name)
	}
	return c
}

func lookup(name string) (container, bool) {
	for _, c := range containers {
		if c.name == name {
			return c, true
		}
	}
	return container{}, false
}
