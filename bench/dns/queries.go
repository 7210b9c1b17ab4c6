package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// kind is one query workload.
type kind int

const (
	kindClusterIP kind = iota
	kindSRV
	kindHeadless
	kindNXDomain
	kindExternal
	numKinds
)

func (k kind) String() string {
	return [...]string{
		kindClusterIP: "A of a ClusterIP service",
		kindSRV:       "SRV of a named port",
		kindHeadless:  "A of a headless service (3 endpoints)",
		kindNXDomain:  "NXDOMAIN in the zone",
		kindExternal:  "external name (forwarded, cached)",
	}[k]
}

// cluster reports whether the workload asks for a name in the cluster zone,
// where issue 7's goals apply.
func (k kind) cluster() bool { return k != kindExternal }

// want is a correct answer: its rcode and its answer records as rrKey
// strings, in any order.
type want struct {
	rcode int
	rrs   []string
}

// question is one query of a workload with the answer it must get.
type question struct {
	name  string
	qtype uint16
	want  want
}

// questions are every query of workload k over the benchmark's data; a
// load picks among them at random.
func questions(k kind, d *data) []question {
	var out []question
	switch k {
	case kindClusterIP:
		for i, ip := range d.clusterIPs {
			out = append(out, question{fqdn(serviceName(i)), dns.TypeA, want{dns.RcodeSuccess, []string{"A " + ip.String()}}})
		}
	case kindSRV:
		for i := range d.clusterIPs {
			name := fqdn(serviceName(i))
			out = append(out, question{"_" + portName + "._tcp." + name, dns.TypeSRV,
				want{dns.RcodeSuccess, []string{fmt.Sprintf("SRV %s %d", name, servicePort)}}})
		}
	case kindHeadless:
		for i := range d.headless {
			var rrs []string
			for _, a := range d.headlessAddrs(i) {
				rrs = append(rrs, "A "+a.String())
			}
			out = append(out, question{fqdn(headlessName(i)), dns.TypeA, want{dns.RcodeSuccess, rrs}})
		}
	case kindNXDomain:
		for i := range d.clusterIPs {
			out = append(out, question{fqdn(fmt.Sprintf("absent-%05d", i)), dns.TypeA, want{dns.RcodeNameError, nil}})
		}
	case kindExternal:
		for i := range externalNames {
			out = append(out, question{externalName(i), dns.TypeA, want{dns.RcodeSuccess, []string{"A " + externalAddr(i).String()}}})
		}
	}
	return out
}

// rrKey is what a check compares of a record: type and data, not TTL;
// SRV priority and weight are left out, servers choose them differently.
func rrKey(rr dns.RR) string {
	switch r := rr.(type) {
	case *dns.A:
		return "A " + r.A.String()
	case *dns.SRV:
		return fmt.Sprintf("SRV %s %d", dns.CanonicalName(r.Target), r.Port)
	default:
		return dns.TypeToString[rr.Header().Rrtype] + " " + strings.TrimPrefix(rr.String(), rr.Header().String())
	}
}

// check compares a whole answer with what the question must get.
func check(q question, m *dns.Msg) error {
	if m.Rcode != q.want.rcode {
		return fmt.Errorf("%s %s: rcode %s, want %s", q.name, dns.TypeToString[q.qtype], dns.RcodeToString[m.Rcode], dns.RcodeToString[q.want.rcode])
	}
	if m.Truncated {
		return fmt.Errorf("%s %s: truncated", q.name, dns.TypeToString[q.qtype])
	}
	got := make([]string, 0, len(m.Answer))
	for _, rr := range m.Answer {
		got = append(got, rrKey(rr))
	}
	slices.Sort(got)
	w := slices.Sorted(slices.Values(q.want.rrs))
	if !slices.Equal(got, w) {
		return fmt.Errorf("%s %s: answer %q, want %q", q.name, dns.TypeToString[q.qtype], got, w)
	}
	return nil
}

// wire is a question packed once, with the header fields a load checks on
// every answer.
type wire struct {
	msg     []byte
	rcode   int
	ancount uint16
}

func packQuestions(qs []question) ([]wire, error) {
	out := make([]wire, 0, len(qs))
	for _, q := range qs {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		b, err := m.Pack()
		if err != nil {
			return nil, fmt.Errorf("pack %s: %w", q.name, err)
		}
		out = append(out, wire{msg: b, rcode: q.want.rcode, ancount: uint16(len(q.want.rrs))})
	}
	return out, nil
}

// dnsHeader is the part of an answer's header a load checks.
type dnsHeader struct {
	id        uint16
	response  bool
	truncated bool
	rcode     int
	ancount   uint16
}

// parseHeader reads the fixed 12-byte DNS header (RFC 1035 4.1.1), so that
// a load does not unpack whole answers on the client's share of the CPU.
func parseHeader(b []byte) (dnsHeader, bool) {
	if len(b) < 12 {
		return dnsHeader{}, false
	}
	flags := uint16(b[2])<<8 | uint16(b[3])
	return dnsHeader{
		id:        uint16(b[0])<<8 | uint16(b[1]),
		response:  flags&0x8000 != 0,
		truncated: flags&0x0200 != 0,
		rcode:     int(flags & 0xf),
		ancount:   uint16(b[6])<<8 | uint16(b[7]),
	}, true
}
