package compat

import (
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// reply is the part of an answer the test compares: the rcode and each
// section as a sorted set of records without TTLs. SOAs keep only their
// owner, MNAME and RNAME (the serial is each server's change time).
type reply struct {
	msg               *dns.Msg
	rcode             string
	answer, ns, extra []string
}

func rrKey(rr dns.RR) string {
	if soa, ok := rr.(*dns.SOA); ok {
		return fmt.Sprintf("%s SOA %s %s", soa.Hdr.Name, soa.Ns, soa.Mbox)
	}
	c := dns.Copy(rr)
	c.Header().Ttl = 0
	return strings.ReplaceAll(c.String(), "\t", " ")
}

func section(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, rrKey(rr))
	}
	slices.Sort(out)
	return out
}

func newReply(m *dns.Msg) *reply {
	return &reply{msg: m, rcode: dns.RcodeToString[m.Rcode], answer: section(m.Answer), ns: section(m.Ns), extra: section(m.Extra)}
}

func (r *reply) equal(o *reply) bool {
	return r.rcode == o.rcode && slices.Equal(r.answer, o.answer) && slices.Equal(r.ns, o.ns) && slices.Equal(r.extra, o.extra)
}

func (r *reply) String() string {
	var b strings.Builder
	b.WriteString(r.rcode)
	for _, s := range []struct {
		name string
		rrs  []string
	}{{"answer", r.answer}, {"authority", r.ns}, {"additional", r.extra}} {
		if len(s.rrs) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n      %s:", s.name)
		for _, rr := range s.rrs {
			b.WriteString("\n        " + rr)
		}
	}
	return b.String()
}

// diff is a readable account of how ours differs from CoreDNS's reply.
func diff(q query, ours, theirs *reply) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n", q)
	if ours.rcode != theirs.rcode {
		fmt.Fprintf(&b, "    rcode: ours %s, CoreDNS %s\n", ours.rcode, theirs.rcode)
	}
	for _, s := range []struct {
		name string
		a, b []string
	}{{"answer", ours.answer, theirs.answer}, {"authority", ours.ns, theirs.ns}, {"additional", ours.extra, theirs.extra}} {
		onlyOurs, onlyTheirs := minus(s.a, s.b), minus(s.b, s.a)
		for _, rr := range onlyOurs {
			fmt.Fprintf(&b, "    %s only ours:    %s\n", s.name, rr)
		}
		for _, rr := range onlyTheirs {
			fmt.Fprintf(&b, "    %s only CoreDNS: %s\n", s.name, rr)
		}
	}
	return b.String()
}

// minus is a without the elements of b (both sorted; multisets).
func minus(a, b []string) []string {
	var out []string
	i := 0
	for _, x := range a {
		for i < len(b) && b[i] < x {
			i++
		}
		if i < len(b) && b[i] == x {
			i++
			continue
		}
		out = append(out, x)
	}
	return out
}
