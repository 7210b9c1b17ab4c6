package compat

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// deviation is one known, deliberate difference between portal's answers
// and CoreDNS's. Each is documented in the doc comment of
// records.Cluster.Resolve (internal/dns/records/resolve.go), which its
// reason quotes; its match is as narrow as that sentence, so that any
// other difference still fails the test.
type deviation struct {
	name   string
	reason string
	match  func(q query, ours, theirs *reply) bool
}

var allowList = []deviation{
	{
		name: "empty names are NODATA for every type",
		reason: "resolve.go: a name that exists without records of any type (the apex, svc.<zone>, pod.<zone>, " +
			"<ns>.svc.<zone>, ns.dns.<zone> for other types) is NODATA for every type: CoreDNS says NXDOMAIN " +
			"for some types (TXT, PTR) while NODATA for A at the same name",
		match: func(q query, ours, theirs *reply) bool {
			rel, ok := relName(q.name)
			if !ok || (q.qtype != dns.TypeTXT && q.qtype != dns.TypePTR) {
				return false
			}
			labels := strings.Split(rel, ".")
			empty := rel == "" || rel == "svc" || rel == "pod" || rel == "ns.dns" ||
				(len(labels) == 2 && labels[1] == "svc")
			return empty && ours.rcode == "NOERROR" && theirs.rcode == "NXDOMAIN" &&
				len(ours.answer) == 0 && len(theirs.answer) == 0 && slices.Equal(ours.ns, theirs.ns)
		},
	},
	{
		name: "only PTR is ours under the reverse zones",
		reason: "resolve.go: only PTR questions are ours under in-addr.arpa and ip6.arpa; other types there " +
			"are forwarded (CoreDNS, when configured for the reverse zones, answers them with its in-addr.arpa SOA)",
		match: func(q query, ours, theirs *reply) bool {
			name := strings.ToLower(q.name)
			return q.qtype != dns.TypePTR && (strings.HasSuffix(name, ".in-addr.arpa.") || strings.HasSuffix(name, ".ip6.arpa.")) &&
				len(theirs.answer) == 0 && len(ours.answer) == 0
		},
	},
	{
		name: "structural names exist",
		reason: "resolve.go: dns-version.<zone>, dns.<zone> and _proto.svc.ns.svc.<zone> (when the service has a named " +
			"port of that protocol) exist, so other types get NODATA where CoreDNS says NXDOMAIN",
		match: func(q query, ours, theirs *reply) bool {
			return structuralName(q.name) && ours.rcode == "NOERROR" && theirs.rcode == "NXDOMAIN" &&
				len(ours.answer) == 0 && len(theirs.answer) == 0 && len(ours.extra) == 0 && len(theirs.extra) == 0 &&
				slices.Equal(ours.ns, theirs.ns) && len(ours.ns) == 1
		},
	},
	{
		name:   "SOA below the apex",
		reason: "resolve.go: SOA questions below the apex get NXDOMAIN for names that do not exist (CoreDNS always says NODATA)",
		match: func(q query, ours, theirs *reply) bool {
			rel, ok := relName(q.name)
			return ok && rel != "" && q.qtype == dns.TypeSOA && ours.rcode == "NXDOMAIN" && theirs.rcode == "NOERROR" &&
				len(ours.answer) == 0 && len(theirs.answer) == 0 && slices.Equal(ours.ns, theirs.ns)
		},
	},
	{
		name:   "labels below a pod name",
		reason: "resolve.go: names below <pod>.<ns>.pod.<zone> do not exist (CoreDNS ignores the extra label)",
		match: func(q query, ours, theirs *reply) bool {
			rel, ok := relName(q.name)
			labels := strings.Split(rel, ".")
			return ok && len(labels) > 3 && labels[len(labels)-1] == "pod" &&
				ours.rcode == "NXDOMAIN" && len(ours.answer) == 0 && theirs.rcode == "NOERROR"
		},
	},
	{
		name: "CNAME out of the zone answered alone",
		reason: "resolve.go: a CNAME to a name outside the zone is answered alone: the server may chase it " +
			"(CoreDNS drops the CNAME when its upstream cannot answer)",
		match: func(q query, ours, theirs *reply) bool {
			if (q.qtype != dns.TypeA && q.qtype != dns.TypeAAAA) || ours.rcode != "NOERROR" || theirs.rcode != "NOERROR" ||
				len(theirs.answer) != 0 || len(ours.answer) == 0 {
				return false
			}
			for _, rr := range ours.msg.Answer {
				c, ok := rr.(*dns.CNAME)
				if !ok {
					return false
				}
				if _, in := relName(c.Target); in {
					return false
				}
			}
			return true
		},
	},
	{
		name:   "PTR of a pod address",
		reason: "resolve.go: PTR for a pod address that is no endpoint answers the pod's dashed name",
		match: func(q query, ours, theirs *reply) bool {
			if q.qtype != dns.TypePTR || ours.rcode != "NOERROR" || theirs.rcode != "NXDOMAIN" || len(ours.msg.Answer) == 0 {
				return false
			}
			for _, rr := range ours.msg.Answer {
				p, ok := rr.(*dns.PTR)
				if !ok {
					return false
				}
				rel, in := relName(p.Ptr)
				if l := strings.Split(rel, "."); !in || len(l) != 3 || l[2] != "pod" {
					return false
				}
			}
			return true
		},
	},
	{
		name: "PTR in a ServiceCIDR without a record",
		reason: "resolve.go: PTR inside ServiceCIDRs with no record is NXDOMAIN here rather than forwarded " +
			"(the test's upstream says NXDOMAIN with no authority)",
		match: func(q query, ours, theirs *reply) bool {
			a, ok := reverseAddr(q.name)
			return ok && serviceCIDR.Contains(a) && q.qtype == dns.TypePTR && ours.rcode == "NXDOMAIN" && theirs.rcode == "NXDOMAIN" &&
				len(ours.answer) == 0 && len(theirs.answer) == 0 && len(theirs.ns) == 0 && len(ours.msg.Ns) == 1 &&
				ours.msg.Ns[0].Header().Rrtype == dns.TypeSOA
		},
	},
	// Not listed: "until SetSynced every question of ours is SERVFAIL" —
	// the test asks only after both servers answer, so it never shows.
}

func allowedBy(q query, ours, theirs *reply) *deviation {
	for i := range allowList {
		if allowList[i].match(q, ours, theirs) {
			return &allowList[i]
		}
	}
	return nil
}

// reverseAddr is the IPv4 address of a full in-addr.arpa name.
func reverseAddr(name string) (netip.Addr, bool) {
	rest, ok := strings.CutSuffix(strings.ToLower(dns.Fqdn(name)), ".in-addr.arpa.")
	l := strings.Split(rest, ".")
	if !ok || len(l) != 4 {
		return netip.Addr{}, false
	}
	slices.Reverse(l)
	a, err := netip.ParseAddr(strings.Join(l, "."))
	return a, err == nil
}

// relName is name, lower case, relative to the cluster zone ("" for the
// apex); false when it is outside the zone.
func relName(name string) (string, bool) {
	n := strings.ToLower(dns.Fqdn(name))
	if n == zone+"." {
		return "", true
	}
	rel, ok := strings.CutSuffix(n, "."+zone+".")
	return rel, ok
}

// structuralName reports whether name is one of the names portal holds to
// exist without records of most types: dns-version.<zone>, dns.<zone>, or
// _proto.<svc>.<ns>.svc.<zone> where the service (of the test's state) has
// a named port of that protocol.
func structuralName(name string) bool {
	rel, ok := relName(name)
	if !ok {
		return false
	}
	if rel == "dns-version" || rel == "dns" {
		return true
	}
	l := strings.Split(rel, ".")
	if len(l) != 4 || l[3] != "svc" || !strings.HasPrefix(l[0], "_") {
		return false
	}
	svcs, _ := clusterState()
	for _, s := range svcs {
		if s.ns != l[2] || s.name != l[1] {
			continue
		}
		ports := slices.Clone(s.ports)
		if s.headless {
			for _, sl := range s.slices {
				ports = append(ports, sl.ports...)
			}
		}
		for _, p := range ports {
			if p.name != "" && strings.EqualFold(string(p.proto), l[0][1:]) {
				return true
			}
		}
	}
	return false
}
