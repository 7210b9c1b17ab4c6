//go:build linux

package nftables

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/portal-net/portal/internal/proxy/dataplane"
)

// entry is one element of one set or map, in nft's "a . b" form; value
// is "" in sets.
type entry struct {
	container string
	key       string
	value     string
}

// claim is what a service port puts behind one dispatch key (an address .
// protocol . port, or a NodePort): the dispatch or no-endpoints verdict
// and the backend slots. Only one service port can own a key; the first
// to claim it wins.
type claim struct {
	id      string
	entries []entry
	pick    string // pick chain the verdict jumps to, "" for none
	kind    pickKind
	proto   string
	n       int
}

// fragment is everything one service port contributes. Shared entries
// (service-ports and the node-wide sets) and hairpin addresses (each one
// element "a . a" of @hairpin) may come from several service ports and
// are reference-counted. chains and sets are the service port's own (only
// affinity service ports have any).
type fragment struct {
	claims  []claim
	shared  []entry
	hairpin [][4]byte
	chains  map[string][]string
	sets    []string
}

// renderService computes one service port's fragment; a pure function.
func renderService(sp dataplane.ServicePort, podCIDR netip.Prefix) fragment {
	proto := strings.ToLower(sp.Protocol)
	if _, ok := protoNumbers[proto]; !ok {
		// The API admits only TCP, UDP and SCTP; there is no backends
		// map for anything else.
		return fragment{}
	}
	suffix := " . " + proto + " . " + strconv.Itoa(int(sp.Port))
	cluster, external := v4(sp.Endpoints), v4(sp.ExternalEndpoints)
	f := fragment{
		claims: make([]claim, 0, len(sp.VIPs)+len(sp.External)+len(sp.LoadBalancerIPs)+1),
		shared: make([]entry, 0, len(sp.VIPs)),
	}
	none := func(drop bool) string {
		if drop {
			return "drop"
		}
		return "goto " + chainReject
	}
	var aff *affinity
	if sp.Affinity {
		aff = newAffinity(sp, proto, podCIDR)
		f.chains = map[string][]string{}
	}

	// byAddr claims address . proto . port: a dispatch element and its
	// backend slots, or a no-endpoints verdict.
	byAddr := func(ip netip.Addr, eps []netip.AddrPort, kind pickKind, none string) {
		if ip = ip.Unmap(); !ip.Is4() {
			return
		}
		key := ip.String() + suffix
		c := claim{id: key}
		switch {
		case len(eps) == 0:
			c.entries = []entry{{mapNoEndpoints, key, none}}
		case aff != nil:
			c.entries = []entry{{mapDispatch, key, "goto " + aff.chain(&f, kind, eps)}}
		default:
			c.kind, c.proto, c.n, c.pick = kind, proto, len(eps), pickChainName(kind, proto, len(eps))
			c.entries = append(make([]entry, 0, len(eps)+1), entry{mapDispatch, key, "goto " + c.pick})
			for i, ep := range eps {
				c.entries = append(c.entries, entry{backendsMap(proto), key + " . " + strconv.Itoa(i), endpointValue(ep)})
			}
		}
		f.claims = append(f.claims, c)
	}
	for _, vip := range sp.VIPs {
		if vip = vip.Unmap(); vip.Is4() {
			f.shared = append(f.shared, entry{setServicePorts, vip.String() + suffix, ""})
		}
		byAddr(vip, cluster, pickCluster, none(sp.ClusterDrop))
	}
	extKind, npKind, extNone := pickExternal, pickNodePort, none(sp.ExternalDrop)
	if sp.ExternalLocal {
		extKind, npKind = pickExternalLocal, pickNodePortLocal
	}
	for _, ip := range sp.External {
		byAddr(ip, external, extKind, extNone)
	}
	for _, ip := range sp.LoadBalancerIPs {
		byAddr(ip, external, extKind, extNone)
		if ip = ip.Unmap(); ip.Is4() && len(sp.SourceRanges) > 0 {
			// The frontend's claim also carries its source filter.
			c := &f.claims[len(f.claims)-1]
			key := ip.String() + suffix
			c.entries = append(c.entries, entry{setSourceFiltered, key, ""})
			for _, p := range sp.SourceRanges {
				if p.Addr().Is4() {
					c.entries = append(c.entries, entry{setSourceAllowed, key + " . " + p.Masked().String(), ""})
				}
			}
		}
	}
	if sp.NodePort != 0 {
		key := proto + " . " + strconv.Itoa(int(sp.NodePort))
		c := claim{id: "nodeport " + key}
		switch {
		case len(external) == 0:
			c.entries = []entry{{mapNodePortNoEndpoints, key, extNone}}
		case aff != nil:
			c.entries = []entry{{mapNodePorts, key, "goto " + aff.chain(&f, npKind, external)}}
		default:
			c.kind, c.proto, c.n, c.pick = npKind, proto, len(external), pickChainName(npKind, proto, len(external))
			c.entries = []entry{{mapNodePorts, key, "goto " + c.pick}}
			for i, ep := range external {
				c.entries = append(c.entries, entry{nodePortBackendsMap(proto), key + " . " + strconv.Itoa(i), endpointValue(ep)})
			}
		}
		f.claims = append(f.claims, c)
	}
	lists := [][]netip.AddrPort{cluster}
	if !sameAddrPorts(cluster, external) {
		lists = append(lists, external)
	}
	for _, eps := range lists {
		for _, ep := range eps {
			if a := ep.Addr().Unmap(); sp.NeedsHairpin(a) {
				if f.hairpin == nil {
					f.hairpin = make([][4]byte, 0, len(cluster)+len(external))
				}
				f.hairpin = append(f.hairpin, a.As4())
			}
		}
	}
	if aff != nil {
		f.sets = aff.setNames()
	}
	return f
}

// renderGlobals is the node-wide part of s.
func renderGlobals(s dataplane.State) fragment {
	var f fragment
	for _, p := range s.ServiceCIDRs {
		if p.Addr().Is4() {
			f.shared = append(f.shared, entry{setServiceCIDRs, p.Masked().String(), ""})
		}
	}
	for _, ip := range s.NodeIPs {
		if ip = ip.Unmap(); ip.Is4() && !ip.IsLoopback() {
			f.shared = append(f.shared, entry{setNodeIPs, ip.String(), ""})
		}
	}
	return f
}

// ruleset is the programmed form of a dataplane.State. It keeps what a
// later update needs: each applied service port, which one owns each
// dispatch key, the reference counts of shared elements, and the pick and
// affinity chains and sets. It does not keep the elements themselves: a
// service port's are rendered again from it when it changes or goes
// (renderService is pure), so at 100,000 endpoints the ruleset costs
// about the service ports it holds rather than a map of every element.
type ruleset struct {
	podCIDR  netip.Prefix
	picks    map[string][]string              // chain → rules
	refs     map[entry]int                    // shared entries (value "")
	hairpin  map[[4]byte]int32                // endpoint address → references
	owners   map[string]string                // claim id → service port name
	services map[string]dataplane.ServicePort // service port name → what was applied
	globals  fragment
	want     map[string]*dataplane.ServicePort // update's index of its State, reused
	chains   map[string][]string               // affinity chain → rules
	sets     map[string]bool                   // affinity sets

	// During an update, delta records every element it changed with its
	// value before and after, so the update can be written as the net
	// element deletions and additions. During render, all collects every
	// element, for the full sync that writes them. nil otherwise.
	delta         map[elemRef]*elemChange
	all           []entry
	touchedChains map[string]priorChain
	touchedSets   map[string]bool // set → existed before
}

type priorChain struct {
	rules   []string
	existed bool
}

type elemRef struct{ container, key string }

// elemChange is one element before and after an update.
type elemChange struct {
	was, now        string
	existed, exists bool
}

func newRuleset(podCIDR netip.Prefix) *ruleset {
	return &ruleset{
		podCIDR:  podCIDR,
		picks:    map[string][]string{},
		refs:     map[entry]int{},
		hairpin:  map[[4]byte]int32{},
		owners:   map[string]string{},
		services: map[string]dataplane.ServicePort{},
		chains:   map[string][]string{},
		sets:     map[string]bool{},
	}
}

// render computes the whole ruleset for s, with every element in all.
// When two service ports claim the same address . protocol . port, the
// first in s wins.
func render(s dataplane.State) *ruleset {
	r := newRuleset(s.PodCIDR)
	// Sized up front: growing containers of 100,000 entries costs more
	// than filling them.
	var vips, eps int
	for i := range s.Services {
		sp := &s.Services[i]
		vips += len(sp.VIPs)
		eps += len(sp.Endpoints)
	}
	r.all = make([]entry, 0, 3*vips+3*eps)
	r.refs = make(map[entry]int, vips)
	r.hairpin = make(map[[4]byte]int32, eps)
	r.owners = make(map[string]string, vips)
	r.services = make(map[string]dataplane.ServicePort, len(s.Services))
	s.Changed = nil // everything is new here
	r.update(s)
	return r
}

// set records that element key of container c now has value: in delta
// during an update (an element first set in an update did not exist
// before it: only a service port being removed can have held it), in all
// during render.
func (r *ruleset) set(c, key, value string) {
	if r.delta == nil {
		if r.all != nil {
			r.all = append(r.all, entry{c, key, value})
		}
		return
	}
	ref := elemRef{c, key}
	ch := r.delta[ref]
	if ch == nil {
		ch = &elemChange{}
		r.delta[ref] = ch
	}
	ch.now, ch.exists = value, true
}

// del records that element key of container c, whose value was value,
// is gone. Only updates delete.
func (r *ruleset) del(c, key, value string) {
	if r.delta == nil {
		return
	}
	ref := elemRef{c, key}
	ch := r.delta[ref]
	if ch == nil {
		ch = &elemChange{was: value, existed: true}
		r.delta[ref] = ch
	}
	ch.now, ch.exists = "", false
}

func (r *ruleset) touchChain(name string) {
	if r.touchedChains == nil {
		return
	}
	if _, seen := r.touchedChains[name]; !seen {
		old, ok := r.chains[name]
		r.touchedChains[name] = priorChain{old, ok}
	}
}

func (r *ruleset) touchSet(name string) {
	if r.touchedSets == nil {
		return
	}
	if _, seen := r.touchedSets[name]; !seen {
		r.touchedSets[name] = r.sets[name]
	}
}

func (r *ruleset) addShared(es []entry) {
	for _, e := range es {
		if r.refs[e]++; r.refs[e] == 1 {
			r.set(e.container, e.key, e.value)
		}
	}
}

// addHairpin and dropHairpin count the references to an endpoint
// address's @hairpin element, which exists while any service port needs it.
func (r *ruleset) addHairpin(as [][4]byte) {
	for _, a := range as {
		if r.hairpin[a]++; r.hairpin[a] == 1 {
			r.set(setHairpin, hairpinKey(a), "")
		}
	}
}

func (r *ruleset) dropHairpin(as [][4]byte) {
	for _, a := range as {
		if r.hairpin[a]--; r.hairpin[a] <= 0 {
			delete(r.hairpin, a)
			r.del(setHairpin, hairpinKey(a), "")
		}
	}
}

func hairpinKey(a [4]byte) string {
	k := netip.AddrFrom4(a).String()
	return k + " . " + k
}

func (r *ruleset) dropShared(es []entry) {
	for _, e := range es {
		if r.refs[e]--; r.refs[e] <= 0 {
			delete(r.refs, e)
			r.del(e.container, e.key, e.value)
		}
	}
}

func (r *ruleset) add(name string, sp dataplane.ServicePort) {
	f := renderService(sp, r.podCIDR)
	for _, c := range f.claims {
		if _, taken := r.owners[c.id]; taken {
			continue
		}
		r.owners[c.id] = name
		if c.pick != "" {
			if _, ok := r.picks[c.pick]; !ok {
				r.picks[c.pick] = pickRules(c.kind, c.proto, c.n, r.podCIDR)
			}
		}
		for _, e := range c.entries {
			r.set(e.container, e.key, e.value)
		}
	}
	r.addShared(f.shared)
	r.addHairpin(f.hairpin)
	for chain, rules := range f.chains {
		r.touchChain(chain)
		r.chains[chain] = rules
	}
	for _, set := range f.sets {
		r.touchSet(set)
		r.sets[set] = true
	}
	r.services[name] = sp // shares its slices with the caller's (see State.Services)
}

// remove takes out what service port name added: its fragment, rendered
// again from the applied service port.
func (r *ruleset) remove(name string) {
	f := renderService(r.services[name], r.podCIDR)
	for _, c := range f.claims {
		if r.owners[c.id] != name {
			continue
		}
		delete(r.owners, c.id)
		for _, e := range c.entries {
			r.del(e.container, e.key, e.value)
		}
	}
	r.dropShared(f.shared)
	r.dropHairpin(f.hairpin)
	for chain := range f.chains {
		r.touchChain(chain)
		delete(r.chains, chain)
	}
	for _, set := range f.sets {
		r.touchSet(set)
		delete(r.sets, set)
	}
	delete(r.services, name)
}

// update brings r to s (same pod CIDR), touching only the service ports
// that differ. A key freed by a removed service port is not handed to
// another port that lost it earlier until the next full render.
func (r *ruleset) update(s dataplane.State) {
	if names, ports, ok := s.ChangedPorts(); ok {
		r.updateChanged(s, names, ports)
		return
	}
	// The index of s is kept between updates: rebuilding a map of 10,000
	// entries was a third of a one-service delta.
	if r.want == nil {
		r.want = make(map[string]*dataplane.ServicePort, len(s.Services))
	}
	want := r.want
	clear(want)
	defer clear(want) // s belongs to the caller
	for i := range s.Services {
		if _, dup := want[s.Services[i].Name]; !dup {
			want[s.Services[i].Name] = &s.Services[i]
		}
	}
	for name, a := range r.services {
		if sp, ok := want[name]; !ok || !a.Equal(sp) {
			r.remove(name)
		}
	}
	r.dropShared(r.globals.shared)
	r.globals = renderGlobals(s)
	r.addShared(r.globals.shared)
	for i := range s.Services {
		sp := &s.Services[i]
		if want[sp.Name] != sp {
			continue // a later duplicate name
		}
		if _, ok := r.services[sp.Name]; !ok {
			r.add(sp.Name, *sp)
		}
	}
}

// updateChanged is update when s says which service ports changed: only
// those are compared and rewritten, so a delta costs the same at 10 or
// 10,000 service ports.
func (r *ruleset) updateChanged(s dataplane.State, names []string, ports []*dataplane.ServicePort) {
	for i, name := range names {
		if a, ok := r.services[name]; ok && (ports[i] == nil || !a.Equal(ports[i])) {
			r.remove(name)
		}
	}
	r.dropShared(r.globals.shared)
	r.globals = renderGlobals(s)
	r.addShared(r.globals.shared)
	for i, name := range names {
		if _, ok := r.services[name]; !ok && ports[i] != nil {
			r.add(name, *ports[i])
		}
	}
}

// v4 keeps the IPv4 endpoints: this table is in the ip family. The
// common all-IPv4 list is returned as it is (callers only read it).
func v4(eps []netip.AddrPort) []netip.AddrPort {
	if !slices.ContainsFunc(eps, func(ep netip.AddrPort) bool { return !ep.Addr().Unmap().Is4() }) {
		return eps
	}
	out := make([]netip.AddrPort, 0, len(eps))
	for _, ep := range eps {
		if ep.Addr().Unmap().Is4() {
			out = append(out, ep)
		}
	}
	return out
}

// sameAddrPorts says whether a and b are one list (same array, same
// length), as a service port's endpoint lists usually are.
func sameAddrPorts(a, b []netip.AddrPort) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func endpointValue(ep netip.AddrPort) string {
	return ep.Addr().Unmap().String() + " . " + strconv.Itoa(int(ep.Port()))
}

// sortedKeys returns m's keys in order, so transactions are reproducible.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
