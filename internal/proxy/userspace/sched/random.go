package sched

import (
	"math/rand/v2"
	"net/netip"
)

// Random picks uniformly among the usable backends with weight > 0 (the
// weight's size does not matter). It has no IPVS counterpart. It draws from
// math/rand/v2's global generator, which is safe for concurrent use, and
// takes no lock. The zero value is ready to use.
type Random struct{ s snapshot }

// Update implements Scheduler.
func (r *Random) Update(backends []Backend) { r.s.store(backends) }

// Pick implements Scheduler.
func (r *Random) Pick(_ Conn, usable func(netip.AddrPort) bool, _ func(netip.AddrPort) int) (netip.AddrPort, bool) {
	b := r.s.load().b
	if len(b) == 0 {
		return netip.AddrPort{}, false
	}
	// A few draws over the whole set first: when most backends are
	// eligible this ends at once, and each accepted draw is uniform over
	// the eligible ones, as is the collection below.
	for range 3 {
		if be := b[rand.IntN(len(b))]; be.Weight > 0 && isUsable(usable, be.Addr) {
			return be.Addr, true
		}
	}
	var buf [64]int32
	ok := buf[:0]
	for i, be := range b {
		if be.Weight > 0 && isUsable(usable, be.Addr) {
			ok = append(ok, int32(i))
		}
	}
	if len(ok) == 0 {
		return netip.AddrPort{}, false
	}
	return b[ok[rand.IntN(len(ok))]].Addr, true
}
