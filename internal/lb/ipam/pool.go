package ipam

import (
	"fmt"
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
)

// Range is an inclusive span of addresses of one IP family.
type Range struct {
	First, Last netip.Addr
	// prefix is set when the range was written as a CIDR, so the network
	// and broadcast addresses of an IPv4 subnet can be held back.
	prefix netip.Prefix
}

// RangeFromPrefix is the range of every address in p.
func RangeFromPrefix(p netip.Prefix) Range {
	p = p.Masked()
	return Range{First: p.Addr(), Last: lastOf(p), prefix: p}
}

// ParseRange parses "10.0.0.0/24", "10.0.0.10-10.0.0.20", "fd00::/120",
// "fd00::10-fd00::20" or a single address.
func ParseRange(s string) (Range, error) {
	s = strings.TrimSpace(s)
	switch {
	case strings.Contains(s, "/"):
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Range{}, fmt.Errorf("invalid address range %q: not a CIDR", s)
		}
		if p.Addr().Zone() != "" {
			return Range{}, fmt.Errorf("invalid address range %q: zones are not allowed", s)
		}
		if p.Masked() != p {
			return Range{}, fmt.Errorf("invalid address range %q: host bits set, did you mean %s?", s, p.Masked())
		}
		return RangeFromPrefix(p), nil
	case strings.Contains(s, "-"):
		a, b, _ := strings.Cut(s, "-")
		first, err1 := parseAddr(a)
		last, err2 := parseAddr(b)
		if err1 != nil || err2 != nil {
			return Range{}, fmt.Errorf("invalid address range %q: want first-last, both IP addresses", s)
		}
		r := Range{First: first, Last: last}
		if err := r.validate(); err != nil {
			return Range{}, fmt.Errorf("invalid address range %q: %v", s, err)
		}
		return r, nil
	default:
		a, err := parseAddr(s)
		if err != nil {
			return Range{}, fmt.Errorf("invalid address range %q: want a CIDR, first-last or an IP address", s)
		}
		return Range{First: a, Last: a}, nil
	}
}

// ParseRanges parses each of ss with ParseRange.
func ParseRanges(ss ...string) ([]Range, error) {
	out := make([]Range, 0, len(ss))
	for _, s := range ss {
		r, err := ParseRange(s)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}, err
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("zones are not allowed")
	}
	return a.Unmap(), nil
}

func (r Range) validate() error {
	switch {
	case !r.First.IsValid() || !r.Last.IsValid():
		return fmt.Errorf("missing first or last address")
	case r.First.Is4() != r.Last.Is4():
		return fmt.Errorf("%s and %s are of different IP families", r.First, r.Last)
	case r.Last.Less(r.First):
		return fmt.Errorf("%s is after %s", r.First, r.Last)
	}
	return nil
}

func (r Range) String() string {
	if r.prefix.IsValid() {
		return r.prefix.String()
	}
	if r.First == r.Last {
		return r.First.String()
	}
	return r.First.String() + "-" + r.Last.String()
}

// Contains reports whether a is in r, reserved addresses included.
func (r Range) Contains(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && a.Is4() == r.First.Is4() && !a.Less(r.First) && !r.Last.Less(a)
}

// reserved reports whether a is the network or broadcast address of an
// IPv4 CIDR range shorter than /31, and which one.
func (r Range) reserved(a netip.Addr) (string, bool) {
	if !r.prefix.IsValid() || !r.First.Is4() || r.prefix.Bits() >= 31 {
		return "", false
	}
	switch a {
	case r.First:
		return "network", true
	case r.Last:
		return "broadcast", true
	}
	return "", false
}

func lastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Pool is a named set of addresses LoadBalancer Services may draw from.
type Pool struct {
	Name   string
	Ranges []Range
	// AutoAssign nil or true: any admitted Service without a request may
	// get an address. False: only Services naming this pool or one of its
	// addresses do. Turning it off does not move Services already in it.
	AutoAssign *bool
	// NamespaceSelector and ServiceSelector (nil: everything) restrict the
	// Services admitted, matched against their namespace's labels
	// (kubernetes.io/metadata.name included, so a namespace can be named)
	// and their own labels.
	NamespaceSelector labels.Selector
	ServiceSelector   labels.Selector
	// IncludeNetworkBroadcast lets the first and last address of IPv4
	// CIDR ranges shorter than /31 be handed out; they are held back by
	// default because some clients treat them as special.
	IncludeNetworkBroadcast bool
}

func (p *Pool) autoAssign() bool { return p.AutoAssign == nil || *p.AutoAssign }

// admits explains why p refuses req, or returns "" when it admits it.
func (p *Pool) admits(req *Request) string {
	if p.NamespaceSelector != nil && !p.NamespaceSelector.Matches(labels.Set(req.NamespaceLabels)) {
		return fmt.Sprintf("pool %s does not admit namespace %s (namespace selector %q)", p.Name, req.Service.Namespace, p.NamespaceSelector.String())
	}
	if p.ServiceSelector != nil && !p.ServiceSelector.Matches(labels.Set(req.ServiceLabels)) {
		return fmt.Sprintf("pool %s does not admit service %s (service selector %q)", p.Name, req.Service, p.ServiceSelector.String())
	}
	return ""
}

// usable reports whether p may hand out a; if a is in p but held back, why
// explains it.
func (p *Pool) usable(a netip.Addr) (ok bool, why string) {
	for _, r := range p.Ranges {
		if !r.Contains(a) {
			continue
		}
		if kind, res := r.reserved(a); res && !p.IncludeNetworkBroadcast {
			why = fmt.Sprintf("%s is the %s address of %s in pool %s, which is not handed out", a, kind, r, p.Name)
			continue
		}
		return true, ""
	}
	return false, why
}

func (p *Pool) hasFamily(v4 bool) bool {
	for _, r := range p.Ranges {
		if r.First.Is4() == v4 {
			return true
		}
	}
	return false
}

func (p *Pool) validate() error {
	if p.Name == "" {
		return fmt.Errorf("address pool without a name")
	}
	if len(p.Ranges) == 0 {
		return fmt.Errorf("address pool %s has no address ranges", p.Name)
	}
	for _, r := range p.Ranges {
		if err := r.validate(); err != nil {
			return fmt.Errorf("address pool %s: range %s: %v", p.Name, r, err)
		}
	}
	return nil
}
