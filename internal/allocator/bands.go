package allocator

// Random selection, shared by IP and port ranges. Values are identified by
// an offset from the start of their range.
//
// Following Kubernetes (KEP-3070 for ClusterIPs, KEP-3668 for NodePorts) a
// range large enough is split in two bands: random allocation prefers the
// upper band and only falls back to the lower one when the upper is full, so
// users who pick static values from the lower band rarely collide with
// random ones.

// span is the half-open offset interval [lo, hi).
type span struct{ lo, hi uint64 }

func (s span) len() uint64 {
	if s.hi <= s.lo {
		return 0
	}
	return s.hi - s.lo
}

func (s span) contains(off uint64) bool { return off >= s.lo && off < s.hi }

// bandPolicy sizes the lower (static) band: total/step clamped to
// [min, max]. Ranges with fewer than 2*min usable values are not split: a
// tiny range gains nothing from a band and would mostly be "lower band".
type bandPolicy struct{ min, max, step uint64 }

var (
	ipBands   = bandPolicy{min: 16, max: 256, step: 16}
	portBands = bandPolicy{min: 16, max: 128, step: 32}
)

// selector knows which offsets random allocation may return, in which order
// of preference. It holds no state about what is taken.
type selector struct {
	// bands in order of preference; they partition the usable span.
	bands []span
	// reserved offsets are never returned at random (only explicitly).
	reserved []uint64
}

// newSelector splits usable per the policy. total is the size the band is
// derived from (the whole CIDR for IPs, the port count for ports).
func newSelector(usable span, total uint64, p bandPolicy, reserved []uint64) selector {
	s := selector{}
	for _, r := range reserved {
		if usable.contains(r) {
			s.reserved = append(s.reserved, r)
		}
	}
	if usable.len() < 2*p.min {
		s.bands = []span{usable}
		return s
	}
	lower := min(max(total/p.step, p.min), p.max)
	split := usable.lo + lower
	s.bands = []span{{split, usable.hi}, {usable.lo, split}}
	return s
}

func (s selector) isReserved(off uint64) bool {
	for _, r := range s.reserved {
		if r == off {
			return true
		}
	}
	return false
}

// pick returns a free, non-reserved offset or false when none is left.
// randN(n) must return a uniform value in [0, n). taken reports whether an
// offset is in use and nTaken how many offsets are in use in total.
//
// Each band is scanned circularly from a random start. A window of k+1
// consecutive offsets in which at most k are unavailable contains a free
// one, so the scan is bounded by nTaken+len(reserved)+1 even for an IPv6
// range of 2^63 addresses; when the band is smaller than that bound the
// scan simply covers the whole band.
func (s selector) pick(randN func(uint64) uint64, taken func(uint64) bool, nTaken int) (uint64, bool) {
	limit := uint64(nTaken) + uint64(len(s.reserved)) + 1
	for _, b := range s.bands {
		n := b.len()
		if n == 0 {
			continue
		}
		start := randN(n)
		steps := min(n, limit)
		for i := uint64(0); i < steps; i++ {
			off := b.lo + (start+i)%n
			if s.isReserved(off) || taken(off) {
				continue
			}
			return off, true
		}
	}
	return 0, false
}
