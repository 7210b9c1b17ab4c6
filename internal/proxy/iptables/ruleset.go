package iptables

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/portal-net/portal/internal/proxy/dataplane"
)

// globals are the node-wide inputs; a change of any is a full sync.
type globals struct {
	serviceCIDRs []netip.Prefix
	podCIDR      netip.Prefix
	nodeIPs      []netip.Addr
}

func globalsOf(s dataplane.State) globals {
	g := globals{podCIDR: s.PodCIDR}
	for _, p := range s.ServiceCIDRs {
		if p.Addr().Unmap().Is4() {
			g.serviceCIDRs = append(g.serviceCIDRs, p.Masked())
		}
	}
	for _, ip := range s.NodeIPs {
		if ip = ip.Unmap(); ip.Is4() && !ip.IsLoopback() && !slices.Contains(g.nodeIPs, ip) {
			g.nodeIPs = append(g.nodeIPs, ip)
		}
	}
	return g
}

func (g globals) equal(o globals) bool {
	return g.podCIDR == o.podCIDR && slices.Equal(g.serviceCIDRs, o.serviceCIDRs) && slices.Equal(g.nodeIPs, o.nodeIPs)
}

type applied struct {
	sp   dataplane.ServicePort
	frag fragment
	// gen is the update that last saw this service port in the State;
	// changed says that update found it different.
	gen     uint64
	changed bool
}

// chain is one chain of ours as a ruleset holds it: the rules of a
// shared or top chain as they are, or where a service port's own chain
// or a hairpin bucket is rendered from when it is written.
type chain struct {
	rules []string
	owner *applied // a service port's own chain: owner.frag.own[own]
	own   int32
	hp    bool // a hairpin bucket, rendered from ruleset.hairpin
}

type priorChain struct {
	chain   chain
	existed bool
}

// ruleset is the programmed form of a State: every chain of ours with
// its rules, plus what each service port contributed, so a change
// re-renders only the service ports that changed and the chains they
// touch.
type ruleset struct {
	g        globals
	chains   map[chainKey]chain
	services map[string]*applied
	gen      uint64
	owners   map[string]string                // claim id → service port name
	buckets  map[chainKey]map[string][]string // shared chain → owner → rules
	hairpin  map[byte]map[[4]byte]int32       // source's last octet → endpoint → refs
	dirty    map[chainKey]bool                // shared chains to re-render

	// prior records, during a delta update, each changed chain as it was,
	// so the delta rewrites only those. nil outside a delta update.
	prior map[chainKey]priorChain
}

func newRuleset(g globals) *ruleset {
	return &ruleset{
		g:        g,
		chains:   map[chainKey]chain{},
		services: map[string]*applied{},
		owners:   map[string]string{},
		buckets:  map[chainKey]map[string][]string{},
		hairpin:  map[byte]map[[4]byte]int32{},
		dirty:    map[chainKey]bool{},
	}
}

// render computes the whole ruleset for s; when two service ports claim
// the same address . protocol . port, the first in s wins.
func render(s dataplane.State) *ruleset {
	r := newRuleset(globalsOf(s))
	s.Changed = nil // everything is new here
	r.update(s)
	return r
}

// touch records k as it is before a delta update changes it. A hairpin
// bucket's rules are rendered now, before its addresses change.
func (r *ruleset) touch(k chainKey) {
	if r.prior == nil {
		return
	}
	if _, seen := r.prior[k]; !seen {
		old, ok := r.chains[k]
		if old.hp {
			old = chain{rules: r.rules(k, old)}
		}
		r.prior[k] = priorChain{old, ok}
	}
}

func (r *ruleset) setChain(k chainKey, c chain) {
	r.touch(k)
	r.chains[k] = c
}

// rules are the rules of c, chain k of r (or of an earlier state of r).
func (r *ruleset) rules(k chainKey, c chain) []string {
	switch {
	case c.owner != nil:
		return ownRules(&c.owner.sp, r.g.podCIDR, c.owner.frag.own[c.own])
	case c.hp:
		m := r.hairpin[hpOctet(k)]
		ips := make([][4]byte, 0, len(m))
		for ip := range m {
			ips = append(ips, ip)
		}
		slices.SortFunc(ips, func(a, b [4]byte) int { return bytes.Compare(a[:], b[:]) })
		rules := make([]string, len(ips))
		for i, ip := range ips {
			a := netip.AddrFrom4(ip).String()
			rules[i] = "-s " + a + "/32 -d " + a + "/32 -j MASQUERADE"
		}
		return rules
	}
	return c.rules
}

// targets are the chains of ours that c's rules may jump to.
func (r *ruleset) targets(k chainKey, c chain) []string {
	switch {
	case c.owner != nil:
		return ownTargets(&c.owner.frag, c.owner.frag.own[c.own])
	case c.hp:
		return nil
	}
	var out []string
	for _, rule := range c.rules {
		if t := ourTarget(rule); t != "" {
			out = append(out, t)
		}
	}
	return out
}

func (r *ruleset) delChain(k chainKey) {
	r.touch(k)
	delete(r.chains, k)
}

func (r *ruleset) add(name string, sp dataplane.ServicePort) {
	a := &applied{sp: sp, frag: renderService(sp, r.g.podCIDR), gen: r.gen}
	f := &a.frag
	for i, c := range f.own {
		r.setChain(c.key, chain{owner: a, own: int32(i)})
	}
	for _, c := range f.claims {
		if _, taken := r.owners[c.id]; taken {
			continue
		}
		r.owners[c.id] = name
		for _, br := range c.rules {
			b := r.buckets[br.chain]
			if b == nil {
				b = map[string][]string{}
				r.buckets[br.chain] = b
			}
			b[name] = append(b[name], br.rule)
			r.dirty[br.chain] = true
		}
	}
	for _, ip := range f.hairpin {
		k := ip[3]
		m := r.hairpin[k]
		if m == nil {
			m = map[[4]byte]int32{}
			r.hairpin[k] = m
		}
		if m[ip] == 0 {
			hk := hpBucket(int(k))
			r.touch(hk)
			r.dirty[hk] = true
		}
		m[ip]++
	}
	r.services[name] = a
}

func (r *ruleset) remove(name string) {
	a := r.services[name]
	for _, c := range a.frag.own {
		r.delChain(c.key)
	}
	for _, c := range a.frag.claims {
		if r.owners[c.id] != name {
			continue
		}
		delete(r.owners, c.id)
		for _, br := range c.rules {
			if b := r.buckets[br.chain]; b != nil {
				delete(b, name)
				if len(b) == 0 {
					delete(r.buckets, br.chain)
				}
			}
			r.dirty[br.chain] = true
		}
	}
	for _, ip := range a.frag.hairpin {
		k := ip[3]
		m := r.hairpin[k]
		if m[ip] <= 1 {
			hk := hpBucket(int(k))
			r.touch(hk)
			delete(m, ip)
			r.dirty[hk] = true
			if len(m) == 0 {
				delete(r.hairpin, k)
			}
		} else {
			m[ip]--
		}
	}
	delete(r.services, name)
}

// update brings r to s (same globals), touching only the service ports
// that differ. A key freed by a removed service port is not handed to
// another port that lost it earlier until the next full render.
func (r *ruleset) update(s dataplane.State) {
	// One pass over s marks what is unchanged; no map of s is built, as
	// a delta at 10,000 service ports should cost little besides the
	// comparisons.
	if names, ports, ok := s.ChangedPorts(); ok {
		r.updateChanged(names, ports)
		return
	}
	r.gen++
	var fresh []*dataplane.ServicePort
	for i := range s.Services {
		sp := &s.Services[i]
		a := r.services[sp.Name]
		switch {
		case a != nil && a.gen == r.gen:
			// a later duplicate name: the first wins
		case a != nil && a.sp.Equal(sp):
			a.gen = r.gen
		default:
			if a != nil {
				a.gen, a.changed = r.gen, true
			}
			fresh = append(fresh, sp)
		}
	}
	for name, a := range r.services {
		if a.gen != r.gen || a.changed {
			r.remove(name)
		}
	}
	for _, sp := range fresh {
		if _, dup := r.services[sp.Name]; !dup {
			r.add(sp.Name, *sp)
		}
	}
	r.finish()
}

// updateChanged is update when the State says which service ports
// changed: only those are compared and rewritten.
func (r *ruleset) updateChanged(names []string, ports []*dataplane.ServicePort) {
	for i, name := range names {
		if a := r.services[name]; a != nil && (ports[i] == nil || !a.sp.Equal(ports[i])) {
			r.remove(name)
		}
	}
	for i, name := range names {
		if _, ok := r.services[name]; !ok && ports[i] != nil {
			r.add(name, *ports[i])
		}
	}
	r.finish()
}

// finish re-renders the shared chains that changed, then the top chains
// that jump to them.
func (r *ruleset) finish() {
	for k := range r.dirty {
		_, exists := r.chains[k]
		if strings.HasPrefix(k.name, prefixHP) {
			switch {
			case len(r.hairpin[hpOctet(k)]) > 0:
				r.setChain(k, chain{hp: true})
			case exists:
				r.delChain(k)
			}
			continue
		}
		var rules []string
		b := r.buckets[k]
		for _, owner := range sortedKeys(b) {
			rules = append(rules, b[owner]...)
		}
		if len(rules) == 0 {
			if exists {
				r.delChain(k)
			}
		} else if !slices.Equal(r.chains[k].rules, rules) {
			r.setChain(k, chain{rules: rules})
		}
	}
	clear(r.dirty)
	for k, rules := range r.top() {
		if old, ok := r.chains[k]; !ok || !slices.Equal(old.rules, rules) {
			r.setChain(k, chain{rules: rules})
		}
	}
}

// top computes the fixed chains and those whose rules are the jumps to
// the buckets in use.
func (r *ruleset) top() map[chainKey][]string {
	var services, nodePorts, hairpin, filter []string
	for k := range 256 {
		if _, ok := r.chains[chainKey{tableNAT, prefixDst + strconv.Itoa(k)}]; ok {
			services = append(services, "-d 0.0.0."+strconv.Itoa(k)+"/0.0.0.255 -j "+prefixDst+strconv.Itoa(k))
		}
		if _, ok := r.chains[hpBucket(k)]; ok {
			hairpin = append(hairpin, "-s 0.0.0."+strconv.Itoa(k)+"/0.0.0.255 -j "+prefixHP+strconv.Itoa(k))
		}
	}
	var np []chainKey
	for k := range r.buckets {
		if strings.HasPrefix(k.name, prefixNP) {
			np = append(np, k)
		}
	}
	slices.SortFunc(np, func(a, b chainKey) int { return strings.Compare(a.name, b.name) })
	for _, k := range np {
		proto, n, _ := strings.Cut(strings.TrimPrefix(k.name, prefixNP), "-")
		lo, _ := strconv.Atoi(n)
		lo <<= npBucketBits
		proto = strings.ToLower(proto)
		nodePorts = append(nodePorts, fmt.Sprintf("-p %s -m %s --dport %d:%d -j %s", proto, proto, lo, lo+1<<npBucketBits-1, k.name))
	}
	if len(nodePorts) > 0 {
		for _, ip := range r.g.nodeIPs {
			services = append(services, "-d "+ip.String()+"/32 -j "+chainNodePorts)
		}
	}
	if _, ok := r.chains[chainKey{tableFilter, chainLBSources}]; ok {
		filter = append(filter, "-j "+chainLBSources)
	}
	for k := range 256 {
		if _, ok := r.chains[chainKey{tableFilter, prefixFDst + strconv.Itoa(k)}]; ok {
			filter = append(filter, "-d 0.0.0."+strconv.Itoa(k)+"/0.0.0.255 -j "+prefixFDst+strconv.Itoa(k))
		}
	}
	if _, ok := r.chains[chainKey{tableFilter, chainFNodePorts}]; ok {
		for _, ip := range r.g.nodeIPs {
			filter = append(filter, "-d "+ip.String()+"/32 -j "+chainFNodePorts)
		}
	}
	for _, p := range r.g.serviceCIDRs {
		filter = append(filter,
			"-d "+p.String()+" -p tcp -j REJECT --reject-with tcp-reset",
			"-d "+p.String()+" -j REJECT --reject-with icmp-port-unreachable")
	}
	return map[chainKey][]string{
		{tableNAT, chainServices}:  services,
		{tableNAT, chainNodePorts}: nodePorts,
		{tableNAT, chainPostrouting}: {
			"-m mark --mark " + masqMark + "/" + masqMark + " -j " + chainMasq,
			"-m conntrack --ctstate DNAT -j " + chainHairpin,
		},
		{tableNAT, chainMasq}:      {"-j MARK --xor-mark " + masqMark, "-j MASQUERADE"},
		{tableNAT, chainHairpin}:   hairpin,
		{tableFilter, chainFilter}: filter,
	}
}

// sortedKeys returns m's keys in order, so restore input is reproducible.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
