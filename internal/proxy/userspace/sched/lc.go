package sched

import (
	"math/bits"
	"net/netip"
	"sync/atomic"
)

// snapshot holds a scheduler's current set; Pick reads it without a lock.
type snapshot struct{ p atomic.Pointer[set] }

func (s *snapshot) load() *set {
	if p := s.p.Load(); p != nil {
		return p
	}
	return emptySet
}

func (s *snapshot) store(backends []Backend) { s.p.Store(newSet(backends)) }

// The least-connection family picks the usable, weight>0 backend with the
// least cost computed from active(b); a tie goes to the lowest address
// (IPVS keeps the first in its list). Costs are compared by
// cross-multiplication in 128 bits, so there is neither rounding nor
// overflow. They keep no state besides the set, and their Pick takes no
// lock. IPVS adds inactive connections (active*256+inactive) to the cost of
// lc and wlc; the proxy counts only open connections, so ours uses active
// alone.

// LeastConn is IPVS's lc: fewest active connections; weights other than 0
// do not matter. The zero value is ready to use.
type LeastConn struct{ s snapshot }

// Update implements Scheduler.
func (l *LeastConn) Update(backends []Backend) { l.s.store(backends) }

// Pick implements Scheduler.
func (l *LeastConn) Pick(_ Conn, usable func(netip.AddrPort) bool, active func(netip.AddrPort) int) (netip.AddrPort, bool) {
	return pickMin(l.s.load(), usable, active, costActive)
}

// WeightedLeastConn is IPVS's wlc: least active/weight, compared as
// active1*weight2 < active2*weight1. The zero value is ready to use.
type WeightedLeastConn struct{ s snapshot }

// Update implements Scheduler.
func (l *WeightedLeastConn) Update(backends []Backend) { l.s.store(backends) }

// Pick implements Scheduler.
func (l *WeightedLeastConn) Pick(_ Conn, usable func(netip.AddrPort) bool, active func(netip.AddrPort) int) (netip.AddrPort, bool) {
	return pickMin(l.s.load(), usable, active, costPerWeight)
}

// ShortestExpectedDelay is IPVS's sed: least (active+1)/weight, the delay a
// new connection expects if each backend serves its connections in turn at
// a speed proportional to its weight. Unlike wlc it sends work to a heavy
// backend even when a light one is idle. The zero value is ready to use.
type ShortestExpectedDelay struct{ s snapshot }

// Update implements Scheduler.
func (l *ShortestExpectedDelay) Update(backends []Backend) { l.s.store(backends) }

// Pick implements Scheduler.
func (l *ShortestExpectedDelay) Pick(_ Conn, usable func(netip.AddrPort) bool, active func(netip.AddrPort) int) (netip.AddrPort, bool) {
	return pickMin(l.s.load(), usable, active, costDelay)
}

// NeverQueue is IPVS's nq: the first (lowest-address) idle backend —
// active 0 — whatever its weight, and sed when none is idle. The zero value
// is ready to use.
type NeverQueue struct{ s snapshot }

// Update implements Scheduler.
func (l *NeverQueue) Update(backends []Backend) { l.s.store(backends) }

// Pick implements Scheduler.
func (l *NeverQueue) Pick(_ Conn, usable func(netip.AddrPort) bool, active func(netip.AddrPort) int) (netip.AddrPort, bool) {
	return pickMin(l.s.load(), usable, active, costNeverQueue)
}

type cost int

const (
	costActive     cost = iota // lc: active
	costPerWeight              // wlc: active/weight
	costDelay                  // sed: (active+1)/weight
	costNeverQueue             // nq: 0 when idle, else as sed
)

// less reports whether (a1, w1) costs strictly less than (a2, w2).
func (c cost) less(a1, w1, a2, w2 uint64) bool {
	switch c {
	case costActive:
		return a1 < a2
	case costPerWeight:
		return mulLess(a1, w2, a2, w1)
	default:
		return mulLess(a1+1, w2, a2+1, w1)
	}
}

// pickMin returns the usable weight>0 backend of least cost, the first one
// on ties. For nq the first idle backend is returned at once.
func pickMin(s *set, usable func(netip.AddrPort) bool, active func(netip.AddrPort) int, c cost) (netip.AddrPort, bool) {
	best := -1
	var bestA, bestW uint64
	for i, b := range s.b {
		if b.Weight <= 0 || !isUsable(usable, b.Addr) {
			continue
		}
		a, w := uint64(activeOf(active, b.Addr)), uint64(b.Weight)
		if c == costNeverQueue && a == 0 {
			return b.Addr, true
		}
		if best < 0 || c.less(a, w, bestA, bestW) {
			best, bestA, bestW = i, a, w
		}
	}
	if best < 0 {
		return netip.AddrPort{}, false
	}
	return s.b[best].Addr, true
}

// mulLess reports whether a*b < c*d, exactly.
func mulLess(a, b, c, d uint64) bool {
	h1, l1 := bits.Mul64(a, b)
	h2, l2 := bits.Mul64(c, d)
	return h1 < h2 || h1 == h2 && l1 < l2
}
