package compat

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// query is one question asked of both servers.
type query struct {
	name  string
	qtype uint16
}

func (q query) String() string { return q.name + " " + dns.TypeToString[q.qtype] }

// allTypes are the types asked of every name: the ones a cluster answers
// and a sample of the others (NODATA/NXDOMAIN). ANY is left out: servers
// may refuse it (RFC 8482).
var allTypes = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeTXT, dns.TypeCNAME, dns.TypeMX, dns.TypeSOA, dns.TypeNS, dns.TypePTR}

// addrTypes are the types asked of names that are mostly variants.
var addrTypes = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV}

func svcName(ns, name string) string { return name + "." + ns + ".svc." + zone + "." }

func dashed(a netip.Addr) string {
	if a.Is4() {
		return strings.ReplaceAll(a.String(), ".", "-")
	}
	return strings.ReplaceAll(a.StringExpanded(), ":", "-")
}

// reverse is a's full in-addr.arpa or ip6.arpa name.
func reverse(a netip.Addr) string {
	r, err := dns.ReverseAddr(a.String())
	if err != nil {
		panic(err)
	}
	return r
}

// mixedCase upper-cases every other letter of name.
func mixedCase(name string) string {
	b := []byte(name)
	up := true
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			if up {
				b[i] = c - 'a' + 'A'
			}
			up = !up
		}
	}
	return string(b)
}

// queries are the questions of the differential test over the state.
func queries(svcs []*svcSpec, pods []podSpec) []query {
	var out []query
	add := func(name string, types ...uint16) {
		for _, t := range types {
			out = append(out, query{name, t})
		}
	}

	// The apex and the structure above services and pods.
	add(zone+".", allTypes...)
	for _, rel := range []string{"svc", "pod", "dns", "ns.dns", "dns-version"} {
		add(rel+"."+zone+".", allTypes...)
	}
	add("DNS-VERSION."+zone+".", dns.TypeTXT)
	for _, ns := range append(slices.Clone(namespaces), "missing-ns") {
		add(ns+".svc."+zone+".", dns.TypeA, dns.TypeSRV, dns.TypeTXT, dns.TypeSOA)
		add(ns+".pod."+zone+".", dns.TypeA, dns.TypeSOA)
	}

	for _, s := range svcs {
		name := svcName(s.ns, s.name)
		add(name, allTypes...)
		add(mixedCase(name), addrTypes...)
		add(strings.ToUpper(name), dns.TypeA)
		// Ports: named ones by name and protocol, both protocols for each,
		// and the protocol alone (an empty non-terminal or nothing).
		for _, p := range s.ports {
			if p.name == "" {
				continue
			}
			proto := strings.ToLower(string(p.proto))
			add("_"+p.name+"._"+proto+"."+name, dns.TypeSRV, dns.TypeA, dns.TypeTXT)
			other := map[string]string{"tcp": "udp", "udp": "tcp"}[proto]
			add("_"+p.name+"._"+other+"."+name, dns.TypeSRV)
			add(strings.ToUpper("_"+p.name+"._"+proto+"."+name), dns.TypeSRV)
		}
		add("_tcp."+name, dns.TypeSRV, dns.TypeA, dns.TypeTXT)
		add("_udp."+name, dns.TypeSRV, dns.TypeA)
		add("_missing._tcp."+name, dns.TypeSRV, dns.TypeA)
		add("_http._sctp."+name, dns.TypeSRV)
		// A label below the service, then two.
		add("extra."+name, dns.TypeA, dns.TypeSRV)
		add("a.b."+name, dns.TypeA)
		// Endpoint names: hostnames, else the dashed address.
		seen := map[string]bool{}
		for _, sl := range s.slices {
			for _, e := range sl.eps {
				a := netip.MustParseAddr(e.addr)
				label := e.hostname
				if label == "" {
					label = dashed(a)
				}
				if !seen[label] {
					seen[label] = true
					add(label+"."+name, allTypes...)
					add(strings.ToUpper(label+"."+name), dns.TypeA, dns.TypeAAAA)
					add("x."+label+"."+name, dns.TypeA)
					for _, p := range sl.ports {
						if p.name != "" {
							add("_"+p.name+"._"+strings.ToLower(string(p.proto))+"."+label+"."+name, dns.TypeSRV, dns.TypeA)
						}
					}
				}
				add(reverse(a), dns.TypePTR)
			}
		}
		if s.clusterIP != "" {
			a := netip.MustParseAddr(s.clusterIP)
			add(reverse(a), dns.TypePTR, dns.TypeA)
			add(strings.ToUpper(reverse(a)), dns.TypePTR)
			add(dashed(a)+"."+name, dns.TypeA) // a ClusterIP is no endpoint name
		}
	}

	// Services and namespaces that do not exist, and wrong structures.
	for _, ns := range []string{"compat-a", "compat-empty", "missing-ns"} {
		add(svcName(ns, "absent"), dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeTXT)
		add("_http._tcp."+svcName(ns, "absent"), dns.TypeSRV)
	}
	add(svcName("missing-ns", "web"), dns.TypeA, dns.TypeSRV)
	add("web.compat-a."+zone+".", dns.TypeA)
	add("web.compat-a.svc.other.local.", dns.TypeA) // forwarded: NXDOMAIN upstream
	add("a.b.c.d.e.f.web.compat-a.svc."+zone+".", dns.TypeA)
	add("*.compat-a.svc."+zone+".", dns.TypeA)
	add("web.*.svc."+zone+".", dns.TypeA)
	add("any."+zone+".", dns.TypeA, dns.TypeSOA)
	add("x.dns-version."+zone+".", dns.TypeTXT)

	// Pods: addresses of pods, addresses of none (pods insecure answers
	// any), v6, bad labels, missing namespaces, extra labels.
	podAddrs := []string{"10.9.8.7", "fd00:10::99"}
	for _, p := range pods {
		podAddrs = append(podAddrs, p.ip)
	}
	for _, ip := range podAddrs {
		a := netip.MustParseAddr(ip)
		for _, ns := range []string{"compat-a", "compat-b", "compat-empty", "missing-ns"} {
			name := dashed(a) + "." + ns + ".pod." + zone + "."
			add(name, dns.TypeA, dns.TypeAAAA, dns.TypeTXT)
		}
		name := dashed(a) + ".compat-a.pod." + zone + "."
		add(strings.ToUpper(name), dns.TypeA)
		add("x."+name, dns.TypeA)
		add(reverse(a), dns.TypePTR)
	}
	add("not-an-ip.compat-a.pod."+zone+".", dns.TypeA)
	add("10-0-0-256.compat-a.pod."+zone+".", dns.TypeA)
	add("10.0.0.1.compat-a.pod."+zone+".", dns.TypeA)

	// Reverse names inside the service CIDR and outside it, and partial.
	add(reverse(netip.MustParseAddr("10.0.250.250")), dns.TypePTR)
	add(reverse(netip.MustParseAddr("192.0.2.1")), dns.TypePTR)
	add("10.in-addr.arpa.", dns.TypePTR)
	add("0.10.in-addr.arpa.", dns.TypePTR, dns.TypeSOA)
	return out
}
