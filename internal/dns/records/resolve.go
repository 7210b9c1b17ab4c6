package records

import (
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// entry is one thing a name stands for, CoreDNS's msg.Service: an address
// with a port and the name an SRV record would target, or a CNAME target.
// Every query type is rendered from the same entries, which is how a name
// such as _http._tcp.svc.ns.svc.<zone> also answers A.
type entry struct {
	addr   netip.Addr // invalid for a CNAME
	port   int32      // noPort: no SRV record
	target string     // relative to the zone ("svc.ns.svc"); for a CNAME the external name, fully qualified
	cname  bool
}

// lookup is the outcome of looking a name up in the zone.
type lookup struct {
	nx      bool // the name does not exist
	entries []entry
}

const maxCNAMEChain = 10

// Resolve answers req if its single question is in the cluster zone or is
// a PTR we own; ok=false means it is not ours and the server should forward
// it. The reply is SetReply(req) with Authoritative set, the Rcode and the
// Answer, Ns and Extra sections; EDNS0 and truncation are the server's.
//
// Where the answer differs from CoreDNS's kubernetes plugin, on purpose:
//   - dns-version.<zone>, dns.<zone> and _proto.svc.ns.svc.<zone> (when the
//     service has a named port of that protocol) exist, so other types get
//     NODATA where CoreDNS says NXDOMAIN;
//   - SOA questions below the apex get NXDOMAIN for names that do not
//     exist (CoreDNS always says NODATA);
//   - names below <pod>.<ns>.pod.<zone> do not exist (CoreDNS ignores the
//     extra label);
//   - a CNAME to a name outside the zone is answered alone: the server may
//     chase it (CoreDNS drops the CNAME when its upstream cannot answer);
//   - PTR for a pod address that is no endpoint answers the pod's dashed
//     name, and PTR inside ServiceCIDRs with no record is NXDOMAIN here
//     rather than forwarded;
//   - until SetSynced every question of ours is SERVFAIL (CoreDNS serves
//     positive answers and turns only NXDOMAIN into SERVFAIL);
//   - a name that exists without records of any type (the apex, svc.<zone>,
//     pod.<zone>, <ns>.svc.<zone>, ns.dns.<zone> for other types) is NODATA
//     for every type: CoreDNS says NXDOMAIN for some types (TXT, PTR)
//     while NODATA for A at the same name;
//   - only PTR questions are ours under in-addr.arpa and ip6.arpa; other
//     types there are forwarded (CoreDNS, when configured for the reverse
//     zones, answers them with its in-addr.arpa SOA).
//
// Wildcard labels ("*") are not supported: the specification 1.1.0 no
// longer lists them and CoreDNS removed them, so "*" is an ordinary label
// and such names are NXDOMAIN.
func (c *Cluster) Resolve(req *dns.Msg) (resp *dns.Msg, ok bool) {
	if req == nil || req.Response || req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 {
		return nil, false
	}
	q := req.Question[0]
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		return nil, false
	}
	qname := dns.Fqdn(q.Name)
	lname := lower(qname)
	if strings.HasSuffix(lname, ".arpa.") {
		return c.resolveReverse(req, qname, lname)
	}
	if !inZone(lname, c.zone) {
		return nil, false
	}
	zone := qname[len(qname)-len(c.zone):] // the zone as the question spells it
	rel := strings.TrimSuffix(lname[:len(lname)-len(c.zone)], ".")

	resp = new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true

	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.synced {
		resp.Rcode = dns.RcodeServerFailure
		resp.Ns = []dns.RR{c.soa(zone)}
		return resp, true
	}

	nx := false
	switch q.Qtype {
	case dns.TypeA, dns.TypeAAAA:
		resp.Answer, nx = c.address(qname, rel, zone, q.Qtype, 0)
	case dns.TypeSRV:
		resp.Answer, resp.Extra, nx = c.srv(qname, rel, zone)
	case dns.TypeTXT:
		if rel == "dns-version" {
			resp.Answer = []dns.RR{&dns.TXT{Hdr: c.hdr(qname, dns.TypeTXT, dnsVersionTTL), Txt: []string{schemaVersion}}}
		} else {
			nx = c.find(rel).nx
		}
	case dns.TypeCNAME:
		l := c.find(rel)
		nx = l.nx
		if len(l.entries) > 0 && l.entries[0].cname {
			resp.Answer = []dns.RR{&dns.CNAME{Hdr: c.hdr(qname, dns.TypeCNAME, c.ttl), Target: l.entries[0].target}}
		}
	case dns.TypeSOA:
		if rel == "" {
			resp.Answer = []dns.RR{c.soa(zone)}
		} else {
			nx = c.find(rel).nx
		}
	case dns.TypeNS:
		if rel == "" {
			resp.Answer, resp.Extra = c.ns(qname, zone)
		} else {
			nx = c.find(rel).nx
		}
	case dns.TypeAXFR, dns.TypeIXFR:
		resp.Rcode = dns.RcodeRefused
		return resp, true
	default:
		nx = c.find(rel).nx
	}
	switch {
	case nx:
		resp.Rcode = dns.RcodeNameError
		resp.Answer, resp.Extra = nil, nil
		resp.Ns = []dns.RR{c.soa(zone)}
	case len(resp.Answer) == 0:
		resp.Ns = []dns.RR{c.soa(zone)}
	}
	return resp, true
}

func (c *Cluster) hdr(name string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

// soa is the zone's SOA, as CoreDNS builds it: its own TTL capped at 300,
// the minimum (negative TTL) the configured TTL, the serial the Unix time of
// the last change.
func (c *Cluster) soa(zone string) *dns.SOA {
	return &dns.SOA{
		Hdr:     c.hdr(zone, dns.TypeSOA, min(c.ttl, 300)),
		Ns:      "ns.dns." + zone,
		Mbox:    "hostmaster." + zone,
		Serial:  uint32(c.modified),
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  c.ttl,
	}
}

// address answers A or AAAA, following CNAMEs that stay inside the zone.
func (c *Cluster) address(qname, rel, zone string, qtype uint16, depth int) (rrs []dns.RR, nx bool) {
	l := c.find(rel)
	if l.nx {
		return nil, true
	}
	var seen []netip.Addr
	for _, e := range l.entries {
		if e.cname {
			if strings.EqualFold(e.target, qname) || depth >= maxCNAMEChain {
				continue
			}
			cn := &dns.CNAME{Hdr: c.hdr(qname, dns.TypeCNAME, c.ttl), Target: e.target}
			lt := lower(e.target)
			if !inZone(lt, c.zone) {
				rrs = append(rrs, cn) // outside the zone: the server may chase it
				continue
			}
			next, _ := c.address(e.target, strings.TrimSuffix(lt[:len(lt)-len(c.zone)], "."), zone, qtype, depth+1)
			if len(next) > 0 {
				rrs = append(rrs, cn)
				rrs = append(rrs, next...)
			}
			continue
		}
		if e.addr.Is4() != (qtype == dns.TypeA) || slices.Contains(seen, e.addr) {
			continue
		}
		seen = append(seen, e.addr)
		rrs = append(rrs, addrRR(c.hdr(qname, qtype, c.ttl), e.addr))
	}
	return rrs, false
}

func addrRR(h dns.RR_Header, a netip.Addr) dns.RR {
	if a.Is4() {
		h.Rrtype = dns.TypeA
		b := a.As4()
		return &dns.A{Hdr: h, A: b[:]}
	}
	h.Rrtype = dns.TypeAAAA
	b := a.As16()
	return &dns.AAAA{Hdr: h, AAAA: b[:]}
}

// srv answers SRV with the targets' addresses in Extra. Weights are
// CoreDNS's: every record of priority 0 gets floor(100/n), n counting the
// candidates before duplicates are dropped.
func (c *Cluster) srv(qname, rel, zone string) (ans, extra []dns.RR, nx bool) {
	l := c.find(rel)
	if l.nx {
		return nil, nil, true
	}
	n := 0
	for _, e := range l.entries {
		if !e.cname {
			n++
		}
	}
	if n == 0 {
		return nil, nil, false
	}
	w := 100.0 / float64(100*n)
	w *= 100
	weight := uint16(math.Floor(w))
	if weight == 0 {
		weight = 1
	}
	type srvKey struct {
		target string
		port   int32
	}
	type extraKey struct {
		target string
		addr   netip.Addr
	}
	var seenSRV []srvKey
	var seenExtra []extraKey
	for _, e := range l.entries {
		if e.cname || e.port == noPort {
			continue
		}
		target := e.target + "." + zone
		if k := (srvKey{e.target, e.port}); !slices.Contains(seenSRV, k) {
			seenSRV = append(seenSRV, k)
			ans = append(ans, &dns.SRV{
				Hdr:    c.hdr(qname, dns.TypeSRV, c.ttl),
				Weight: weight,
				Port:   uint16(e.port),
				Target: target,
			})
		}
		if k := (extraKey{e.target, e.addr}); !slices.Contains(seenExtra, k) {
			seenExtra = append(seenExtra, k)
			extra = append(extra, addrRR(c.hdr(target, 0, c.ttl), e.addr))
		}
	}
	return ans, extra, false
}

// ns answers the apex NS question: the service that holds this server's
// addresses (kube-dns), with its addresses in Extra.
func (c *Cluster) ns(qname, zone string) (ans, extra []dns.RR) {
	var names []string
	for _, e := range c.nsEntries() {
		target := e.target + "." + zone
		extra = append(extra, addrRR(c.hdr(target, 0, c.ttl), e.addr))
		if !slices.Contains(names, e.target) {
			names = append(names, e.target)
			ans = append(ans, &dns.NS{Hdr: c.hdr(qname, dns.TypeNS, c.ttl), Ns: target})
		}
	}
	return ans, extra
}

// nsEntries follows CoreDNS: for each of our own addresses, the services
// whose endpoints include it (their ClusterIPs, or for a headless service
// its endpoints); with none, ns.dns.<zone> and our own addresses.
func (c *Cluster) nsEntries() []entry {
	var out []entry
	add := func(e entry) {
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	found := false
	for _, ip := range c.nsIPs {
		for _, r := range c.epByIP.get(ip.Unmap()) {
			found = true
			svc := c.services[r.svc]
			if svc == nil {
				continue
			}
			name := r.svc.name + "." + r.svc.ns + ".svc"
			if svc.kind == kindHeadless {
				for _, g := range c.endpoints[r.svc] {
					for _, ep := range g.eps {
						add(entry{addr: ep.addr, port: noPort, target: ep.host + "." + name})
					}
				}
				continue
			}
			for _, a := range svc.clusterIPs {
				add(entry{addr: a, port: noPort, target: name})
			}
		}
	}
	if !found {
		for _, ip := range c.nsIPs {
			add(entry{addr: ip.Unmap(), port: noPort, target: "ns.dns"})
		}
	}
	return out
}

// find looks rel (the lower-case name without the zone, "" for the apex)
// up. Callers hold mu.
func (c *Cluster) find(rel string) lookup {
	switch rel {
	case "", "svc", "pod", "dns", "dns-version":
		return lookup{}
	case "ns.dns":
		var es []entry
		for _, e := range c.nsEntries() {
			e.target = "ns.dns"
			es = append(es, e)
		}
		return lookup{entries: es}
	}
	var buf [6]string
	labels, ok := split(rel, &buf)
	if !ok {
		return lookup{nx: true}
	}
	n := len(labels)
	switch labels[n-1] {
	case "svc":
		return c.findService(labels)
	case "pod":
		return c.findPod(labels)
	}
	return lookup{nx: true}
}

// split cuts rel into at most len(buf) labels, reporting false when there
// are more or one is empty.
func split(rel string, buf *[6]string) ([]string, bool) {
	n := 0
	for {
		if n == len(buf) {
			return nil, false
		}
		i := strings.IndexByte(rel, '.')
		if i < 0 {
			buf[n] = rel
			n++
			break
		}
		buf[n] = rel[:i]
		n++
		rel = rel[i+1:]
	}
	for _, l := range buf[:n] {
		if l == "" {
			return nil, false
		}
	}
	return buf[:n], true
}

func (c *Cluster) findService(labels []string) lookup {
	n := len(labels) // labels[n-1] == "svc"; n >= 2
	if n > 5 {
		return lookup{nx: true}
	}
	ns := labels[n-2]
	if _, ok := c.namespaces[ns]; !ok {
		return lookup{nx: true}
	}
	if n == 2 {
		return lookup{}
	}
	k := svcKey{ns: ns, name: labels[n-3]}
	svc := c.services[k]
	if svc == nil {
		return lookup{nx: true}
	}
	var host, portName, proto string
	switch n {
	case 4:
		host = labels[0]
		if strings.HasPrefix(host, "_") {
			// _tcp.svc.ns.svc.<zone> is an empty non-terminal when the
			// service has a named port of that protocol.
			if c.hasNamedPort(svc, host[1:]) {
				return lookup{}
			}
			return lookup{nx: true}
		}
	case 5:
		portName, proto = stripUnderscore(labels[0]), stripUnderscore(labels[1])
	}
	name := k.name + "." + k.ns + ".svc"

	if svc.kind == kindExternalName {
		if n > 3 {
			return lookup{nx: true}
		}
		if _, err := netip.ParseAddr(svc.externalName); err == nil || svc.externalName == "" {
			return lookup{nx: true} // CoreDNS serves only names as CNAMEs
		}
		return lookup{entries: []entry{{cname: true, port: noPort, target: dns.Fqdn(svc.externalName)}}}
	}

	var es []entry
	if svc.kind == kindHeadless || host != "" {
		for _, g := range c.endpoints[k] {
			for _, ep := range g.eps {
				if host != "" && host != ep.host {
					continue
				}
				for _, p := range g.ports {
					if matchPort(p, portName, proto) {
						es = append(es, entry{addr: ep.addr, port: p.port, target: ep.host + "." + name})
					}
				}
			}
		}
		if len(es) == 0 {
			return lookup{nx: true}
		}
		return lookup{entries: es}
	}

	found := false
	for _, p := range svc.ports {
		if !matchPort(p, portName, proto) {
			continue
		}
		found = true
		for _, a := range svc.clusterIPs {
			es = append(es, entry{addr: a, port: p.port, target: name})
		}
	}
	return lookup{nx: !found, entries: es}
}

func (c *Cluster) hasNamedPort(svc *service, proto string) bool {
	for _, p := range svc.ports {
		if p.name != "" && p.proto == proto {
			return true
		}
	}
	if svc.kind == kindHeadless {
		for _, g := range c.endpoints[svc.key] {
			for _, p := range g.ports {
				if p.name != "" && p.proto == proto {
					return true
				}
			}
		}
	}
	return false
}

// matchPort: an empty port name or protocol in the question matches any,
// as in CoreDNS.
func matchPort(p port, name, proto string) bool {
	return (name == "" || name == p.name) && (proto == "" || proto == p.proto)
}

func stripUnderscore(s string) string {
	return strings.TrimPrefix(s, "_")
}

func (c *Cluster) findPod(labels []string) lookup {
	n := len(labels) // labels[n-1] == "pod"; n >= 2
	if c.podMode == PodsDisabled || n > 3 {
		return lookup{nx: true}
	}
	ns := labels[n-2]
	if _, ok := c.namespaces[ns]; !ok {
		return lookup{nx: true}
	}
	if n == 2 {
		return lookup{}
	}
	a, ok := parseDashed(labels[0])
	if !ok {
		return lookup{nx: true}
	}
	e := entry{addr: a, port: noPort, target: labels[0] + "." + ns + ".pod"}
	if c.podMode == PodsInsecure {
		return lookup{entries: []entry{e}}
	}
	for k := range c.podsByIP[a] {
		if k.ns == ns {
			return lookup{entries: []entry{e}}
		}
	}
	return lookup{nx: true}
}

// parseDashed reads a pod label: "10-244-1-5" or "fd00-10-244--5".
func parseDashed(s string) (netip.Addr, bool) {
	var ip string
	if strings.Count(s, "-") == 3 && !strings.Contains(s, "--") {
		ip = strings.ReplaceAll(s, "-", ".")
	} else {
		ip = strings.ReplaceAll(s, "-", ":")
	}
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// resolveReverse answers PTR questions for addresses we know or own.
func (c *Cluster) resolveReverse(req *dns.Msg, qname, lname string) (*dns.Msg, bool) {
	if req.Question[0].Qtype != dns.TypePTR {
		return nil, false
	}
	a, ok := parseReverse(lname)
	if !ok {
		return nil, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()

	var targets []string
	if k, ok := c.clusterIPs[a]; ok {
		targets = append(targets, k.name+"."+k.ns+".svc."+c.zone)
	} else if refs := c.epByIP.get(a); len(refs) > 0 {
		for _, r := range refs {
			targets = append(targets, r.rel()+"."+c.zone)
		}
	} else {
		for k := range c.podsByIP[a] {
			p := c.pods[k]
			if !p.active || p.hostNetwork {
				continue
			}
			t := dashed(a) + "." + p.ns + ".pod." + c.zone
			if !slices.Contains(targets, t) {
				targets = append(targets, t)
			}
		}
		slices.Sort(targets)
	}
	revZone := ""
	for _, p := range c.cidrs {
		if p.Contains(a) {
			revZone = reverseZone(p)
			break
		}
	}
	if len(targets) == 0 && revZone == "" {
		return nil, false
	}

	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	switch {
	case !c.synced:
		resp.Rcode = dns.RcodeServerFailure
	case len(targets) == 0:
		resp.Rcode = dns.RcodeNameError
	default:
		for _, t := range targets {
			resp.Answer = append(resp.Answer, &dns.PTR{Hdr: c.hdr(qname, dns.TypePTR, c.ttl), Ptr: t})
		}
		return resp, true
	}
	if revZone == "" {
		revZone = reverseName(a)
	}
	soa := c.soa(c.zone)
	soa.Hdr.Name = revZone
	resp.Ns = []dns.RR{soa}
	return resp, true
}

// parseReverse reads a full in-addr.arpa or ip6.arpa name.
func parseReverse(name string) (netip.Addr, bool) {
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa."); ok {
		var buf [6]string
		labels, ok := split(rest, &buf)
		if !ok || len(labels) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, l := range labels {
			if len(l) > 3 || (len(l) > 1 && l[0] == '0') {
				return netip.Addr{}, false
			}
			v := 0
			for _, ch := range []byte(l) {
				if ch < '0' || ch > '9' {
					return netip.Addr{}, false
				}
				v = v*10 + int(ch-'0')
			}
			if v > 255 {
				return netip.Addr{}, false
			}
			b[3-i] = byte(v)
		}
		return netip.AddrFrom4(b), true
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa."); ok {
		if len(rest) != 63 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i := 0; i < 32; i++ {
			ch := rest[2*i]
			if i < 31 && rest[2*i+1] != '.' {
				return netip.Addr{}, false
			}
			var v byte
			switch {
			case ch >= '0' && ch <= '9':
				v = ch - '0'
			case ch >= 'a' && ch <= 'f':
				v = ch - 'a' + 10
			default:
				return netip.Addr{}, false
			}
			nib := 31 - i // the first label is the last nibble
			if nib%2 == 0 {
				b[nib/2] |= v << 4
			} else {
				b[nib/2] |= v
			}
		}
		return netip.AddrFrom16(b).Unmap(), true
	}
	return netip.Addr{}, false
}

// reverseName is the full reverse name of a.
func reverseName(a netip.Addr) string {
	return reversePrefix(netip.PrefixFrom(a, a.BitLen()))
}

// reverseZone is the reverse zone enclosing p, cut at the label boundary
// at or above its length (10.96.0.0/12 → 10.in-addr.arpa.).
func reverseZone(p netip.Prefix) string {
	return reversePrefix(p.Masked())
}

func reversePrefix(p netip.Prefix) string {
	a := p.Addr()
	var sb strings.Builder
	if a.Is4() {
		b := a.As4()
		for i := p.Bits()/8 - 1; i >= 0; i-- {
			sb.WriteString(strconv.Itoa(int(b[i])))
			sb.WriteByte('.')
		}
		sb.WriteString("in-addr.arpa.")
		return sb.String()
	}
	b := a.As16()
	const hex = "0123456789abcdef"
	for i := p.Bits()/4 - 1; i >= 0; i-- {
		v := b[i/2]
		if i%2 == 0 {
			v >>= 4
		}
		sb.WriteByte(hex[v&0xf])
		sb.WriteByte('.')
	}
	sb.WriteString("ip6.arpa.")
	return sb.String()
}

// inZone reports whether the lower-case fqdn name is zone or below it.
func inZone(name, zone string) bool {
	if len(name) == len(zone) {
		return name == zone
	}
	return len(name) > len(zone) && name[len(name)-len(zone)-1] == '.' && strings.HasSuffix(name, zone)
}

// lower is strings.ToLower for ASCII names, without allocating when the
// name is already lower case.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}
