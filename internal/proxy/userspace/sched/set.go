package sched

import (
	"net/netip"
	"slices"
)

// set is an immutable, normalised backend set shared by the schedulers.
//
// Backends are kept sorted by address (netip.AddrPort.Compare) so that the
// result of every scheduler depends on the set only, never on the order the
// caller listed it in; "first" in the docs below means lowest address. A
// repeated address keeps its first entry; a negative weight counts as 0.
type set struct {
	b []Backend
	// gcd and max of the positive weights (0 when none is positive).
	gcd, max int
}

var emptySet = &set{}

func newSet(in []Backend) *set {
	b := make([]Backend, len(in))
	copy(b, in)
	for i := range b {
		if b[i].Weight < 0 {
			b[i].Weight = 0
		}
	}
	// Stable so that among duplicates the caller's first entry survives.
	slices.SortStableFunc(b, func(x, y Backend) int { return x.Addr.Compare(y.Addr) })
	b = slices.CompactFunc(b, func(x, y Backend) bool { return x.Addr == y.Addr })
	s := &set{b: b}
	for _, be := range b {
		if be.Weight > 0 {
			s.gcd = gcd(s.gcd, be.Weight)
			s.max = max(s.max, be.Weight)
		}
	}
	return s
}

// after returns the index of the first backend whose address sorts after a
// (len when none does). It is how rr and wrr resume after the backend they
// picked last, even when that backend has left the set since.
func (s *set) after(a netip.AddrPort) int {
	i, found := slices.BinarySearchFunc(s.b, a, func(x Backend, t netip.AddrPort) int { return x.Addr.Compare(t) })
	if found {
		i++
	}
	return i
}

func (s *set) equal(o *set) bool {
	return slices.Equal(s.b, o.b)
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
