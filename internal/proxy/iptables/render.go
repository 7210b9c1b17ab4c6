package iptables

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"strconv"
	"strings"

	"github.com/portal-net/portal/internal/proxy/dataplane"
)

const (
	tableNAT    = "nat"
	tableFilter = "filter"

	// masqMark marks packets to masquerade in PORTAL-POSTROUTING, as
	// kube-proxy and the nftables datapath do.
	masqMark = "0x4000"

	chainServices    = ChainPrefix + "SERVICES"
	chainNodePorts   = ChainPrefix + "NODEPORTS"
	chainPostrouting = ChainPrefix + "POSTROUTING"
	chainMasq        = ChainPrefix + "MASQ"
	chainHairpin     = ChainPrefix + "HAIRPIN"
	chainFilter      = ChainPrefix + "FILTER"
	chainFNodePorts  = ChainPrefix + "FNODEPORTS"
	chainLBSources   = ChainPrefix + "LB-SOURCES"

	prefixDst    = ChainPrefix + "DST-"  // nat bucket by destination's last octet
	prefixFDst   = ChainPrefix + "FDST-" // filter bucket by destination's last octet
	prefixNP     = ChainPrefix + "NP-"   // nat NodePort bucket: NP-<PROTO>-<port/128>
	prefixHP     = ChainPrefix + "HP-"   // hairpin bucket by source's last octet
	prefixSvc    = ChainPrefix + "SVC-"
	prefixExt    = ChainPrefix + "EXT-"
	prefixSep    = ChainPrefix + "SEP-"
	prefixFW     = ChainPrefix + "FW-"
	npBucketBits = 7
)

// chainKey names one chain of one table.
type chainKey struct{ table, name string }

// bucketRule is one rule a service port puts in a shared chain.
type bucketRule struct {
	chain chainKey
	rule  string
}

// claim is what a service port puts behind one address . protocol . port
// (or NodePort). Only one service port can own it; the first wins.
type claim struct {
	id    string
	rules []bucketRule
}

// fragment is everything one service port contributes: the names of the
// chains of its own (their rules are rendered from the ServicePort when
// they are written, so ~100,000 DNAT rule strings are not kept between
// syncs at 10,000 services), claimed rules in shared bucket chains, and
// endpoint addresses for the hairpin buckets.
type fragment struct {
	own     []ownChain
	claims  []claim
	hairpin [][4]byte
}

// ownChain names a chain of one service port's own: PORTAL-SVC-,
// PORTAL-EXT-, PORTAL-SEP- (with its endpoint) or PORTAL-FW-.
type ownChain struct {
	key chainKey
	ep  netip.AddrPort
}

func hashName(parts ...string) string {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return fmt.Sprintf("%016X", h.Sum64())
}

func lastOctet(ip netip.Addr) int { b := ip.As4(); return int(b[3]) }

func dstBucket(ip netip.Addr) chainKey {
	return chainKey{tableNAT, prefixDst + strconv.Itoa(lastOctet(ip))}
}

func fdstBucket(ip netip.Addr) chainKey {
	return chainKey{tableFilter, prefixFDst + strconv.Itoa(lastOctet(ip))}
}

func npBucket(proto string, port uint16) chainKey {
	return chainKey{tableNAT, prefixNP + strings.ToUpper(proto) + "-" + strconv.Itoa(int(port)>>npBucketBits)}
}

func hpBucket(k int) chainKey { return chainKey{tableNAT, prefixHP + strconv.Itoa(k)} }

// hpOctet is the source's last octet that hairpin bucket k is for.
func hpOctet(k chainKey) byte {
	n, _ := strconv.Atoi(strings.TrimPrefix(k.name, prefixHP))
	return byte(n)
}

// portMatch is `-p P -m P --dport N`.
func portMatch(proto string, port uint16) string {
	return fmt.Sprintf("-p %s -m %s --dport %d", proto, proto, port)
}

func commentOf(name string) string { return "-m comment --comment " + strconv.Quote(name) }

// noEndpoints is the verdict for traffic to a frontend without endpoints.
func noEndpoints(proto string, drop bool) string {
	switch {
	case drop:
		return "-j DROP"
	case proto == "tcp":
		return "-j REJECT --reject-with tcp-reset"
	default:
		return "-j REJECT --reject-with icmp-port-unreachable"
	}
}

// renderService computes one service port's fragment; a pure function.
func renderService(sp dataplane.ServicePort, podCIDR netip.Prefix) fragment {
	var f fragment
	proto := strings.ToLower(sp.Protocol)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return f // one bad service port must not fail every sync
	}
	h := hashName(sp.Name)
	cluster, external := v4(sp.Endpoints), v4(sp.ExternalEndpoints)
	comment := commentOf(sp.Name)
	match := portMatch(proto, sp.Port)

	var svcChain, extChain string
	var used [][]netip.AddrPort // endpoint lists of the chains above
	if len(cluster) > 0 && len(sp.VIPs) > 0 {
		svcChain = prefixSvc + h
		f.own = append(f.own, ownChain{key: chainKey{tableNAT, svcChain}})
		used = append(used, cluster)
	}
	hasExternal := len(sp.External)+len(sp.LoadBalancerIPs) > 0 || sp.NodePort != 0
	if len(external) > 0 && hasExternal {
		extChain = prefixExt + h
		f.own = append(f.own, ownChain{key: chainKey{tableNAT, extChain}})
		used = append(used, external)
	}
	if sp.Affinity {
		aff := affinity{svc: sp.Name}
		seen := map[netip.AddrPort]bool{}
		for _, eps := range used {
			for _, ep := range eps {
				if !seen[ep] {
					seen[ep] = true
					f.own = append(f.own, ownChain{chainKey{tableNAT, aff.chain(ep)}, ep})
				}
			}
		}
	}

	// byAddr claims address . proto . port: a dispatch rule to target, or
	// the no-endpoints verdict in the filter table.
	byAddr := func(ip netip.Addr, target string, drop bool) *claim {
		ip = ip.Unmap()
		if !ip.Is4() {
			return nil
		}
		c := claim{id: ip.String() + " " + proto + " " + strconv.Itoa(int(sp.Port))}
		if target != "" {
			c.rules = []bucketRule{{dstBucket(ip), "-d " + ip.String() + "/32 " + match + " " + comment + " -j " + target}}
		} else {
			c.rules = []bucketRule{{fdstBucket(ip), "-d " + ip.String() + "/32 " + match + " " + comment + " " + noEndpoints(proto, drop)}}
		}
		f.claims = append(f.claims, c)
		return &f.claims[len(f.claims)-1]
	}
	for _, vip := range sp.VIPs {
		byAddr(vip, svcChain, sp.ClusterDrop)
	}
	for _, ip := range sp.External {
		byAddr(ip, extChain, sp.ExternalDrop)
	}
	if len(sp.SourceRanges) > 0 {
		// Checked in the filter table against the original destination,
		// after DNAT: the nat table cannot drop.
		fw := prefixFW + h
		f.own = append(f.own, ownChain{key: chainKey{tableFilter, fw}})
		for _, ip := range sp.LoadBalancerIPs {
			if c := byAddr(ip, extChain, sp.ExternalDrop); c != nil {
				c.rules = append(c.rules, bucketRule{chainKey{tableFilter, chainLBSources}, fmt.Sprintf(
					"-p %s -m conntrack --ctorigdst %s/32 --ctorigdstport %d %s -j %s", proto, ip.Unmap(), sp.Port, comment, fw)})
			}
		}
	} else {
		for _, ip := range sp.LoadBalancerIPs {
			byAddr(ip, extChain, sp.ExternalDrop)
		}
	}
	if sp.NodePort != 0 {
		c := claim{id: "nodeport " + proto + " " + strconv.Itoa(int(sp.NodePort))}
		npMatch := portMatch(proto, sp.NodePort)
		if extChain != "" {
			c.rules = []bucketRule{{npBucket(proto, sp.NodePort), npMatch + " " + comment + " -j " + extChain}}
		} else {
			c.rules = []bucketRule{{chainKey{tableFilter, chainFNodePorts}, npMatch + " " + comment + " " + noEndpoints(proto, sp.ExternalDrop)}}
		}
		f.claims = append(f.claims, c)
	}
	seen := map[netip.Addr]bool{}
	for _, eps := range used {
		for _, ep := range eps {
			if a := ep.Addr().Unmap(); !seen[a] && sp.NeedsHairpin(a) {
				seen[a] = true
				f.hairpin = append(f.hairpin, a.As4())
			}
		}
	}
	return f
}

// ownRules renders the rules of c, a chain of sp's own that
// renderService named.
func ownRules(sp *dataplane.ServicePort, podCIDR netip.Prefix, c ownChain) []string {
	proto := strings.ToLower(sp.Protocol)
	var aff *affinity
	if sp.Affinity {
		aff = &affinity{svc: sp.Name, proto: proto, seconds: sp.AffinitySeconds()}
	}
	switch name := c.key.name; {
	case strings.HasPrefix(name, prefixSvc):
		var mark []string
		if podCIDR.IsValid() {
			mark = []string{"! -s " + podCIDR.Masked().String() + " -j MARK --or-mark " + masqMark}
		}
		return pickRules(mark, proto, v4(sp.Endpoints), aff)
	case strings.HasPrefix(name, prefixExt):
		var mark []string
		if !sp.ExternalLocal {
			mark = []string{"-j MARK --or-mark " + masqMark}
		}
		return pickRules(mark, proto, v4(sp.ExternalEndpoints), aff)
	case strings.HasPrefix(name, prefixSep):
		return []string{"-p " + proto + " -m recent --name " + name + " --set -j DNAT --to-destination " + endpointString(c.ep)}
	case strings.HasPrefix(name, prefixFW):
		var rules []string
		for _, p := range sp.SourceRanges {
			if p.Addr().Unmap().Is4() {
				rules = append(rules, "-s "+p.Masked().String()+" -j RETURN")
			}
		}
		return append(rules, "-j DROP")
	}
	return nil
}

// ownTargets are the chains of ours that c's rules may jump to: a
// service chain of an affinity service port jumps to its endpoints'
// chains.
func ownTargets(f *fragment, c ownChain) []string {
	if !strings.HasPrefix(c.key.name, prefixSvc) && !strings.HasPrefix(c.key.name, prefixExt) {
		return nil
	}
	var out []string
	for _, o := range f.own {
		if strings.HasPrefix(o.key.name, prefixSep) {
			out = append(out, o.key.name)
		}
	}
	return out
}

// affinity names the per-endpoint chains (and xt_recent lists) of a
// sessionAffinity ClientIP service port. Names carry the endpoint, so an
// endpoint change leaves the other endpoints' clients where they are.
type affinity struct {
	svc     string
	proto   string
	seconds int
}

func (a *affinity) chain(ep netip.AddrPort) string {
	return prefixSep + hashName(a.svc, endpointString(ep))
}

// pickRules is a service chain: the mark rules, then (affinity) a client
// seen within the timeout goes to its endpoint, then rule i of the N
// pick rules matches with probability 1/(N-i), an equal choice.
func pickRules(mark []string, proto string, eps []netip.AddrPort, aff *affinity) []string {
	rules := append([]string(nil), mark...)
	target := func(ep netip.AddrPort) string {
		if aff != nil {
			return "-j " + aff.chain(ep)
		}
		return "-p " + proto + " -j DNAT --to-destination " + endpointString(ep)
	}
	if aff != nil {
		for _, ep := range eps {
			rules = append(rules, fmt.Sprintf("-m recent --name %s --rcheck --seconds %d --reap -j %s", aff.chain(ep), aff.seconds, aff.chain(ep)))
		}
	}
	for i, ep := range eps {
		if left := len(eps) - i; left > 1 {
			t := target(ep)
			if aff == nil {
				// -p first, as iptables-save prints it.
				t = strings.TrimPrefix(t, "-p "+proto+" ")
				rules = append(rules, fmt.Sprintf("-p %s -m statistic --mode random --probability %.10f %s", proto, 1/float64(left), t))
			} else {
				rules = append(rules, fmt.Sprintf("-m statistic --mode random --probability %.10f %s", 1/float64(left), t))
			}
		} else {
			rules = append(rules, target(ep))
		}
	}
	return rules
}

// v4 keeps the IPv4 endpoints: these are the ip (not ip6) tables.
func v4(eps []netip.AddrPort) []netip.AddrPort {
	var out []netip.AddrPort
	for _, ep := range eps {
		if ep.Addr().Unmap().Is4() {
			out = append(out, ep)
		}
	}
	return out
}

func endpointString(ep netip.AddrPort) string {
	return ep.Addr().Unmap().String() + ":" + strconv.Itoa(int(ep.Port()))
}
