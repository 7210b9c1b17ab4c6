package sched

import (
	"net/netip"
	"sync"
)

// RoundRobin is IPVS's rr: backends in turn, in address order, skipping
// those with weight 0 and those usable rejects. After an Update it resumes
// after the backend it picked last, even if that one has gone (as IPVS
// steps back when the current server is deleted). The zero value is ready
// to use.
type RoundRobin struct {
	mu     sync.Mutex
	set    *set
	last   netip.AddrPort // the backend picked last, valid if picked
	picked bool
	next   int // index in set.b to try first
}

// Update implements Scheduler.
func (r *RoundRobin) Update(backends []Backend) {
	s := newSet(backends)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.set = s
	r.next = 0
	if r.picked {
		r.next = s.after(r.last)
	}
}

// Pick implements Scheduler. usable is called with r's lock held and must
// not call back into r.
func (r *RoundRobin) Pick(_ Conn, usable func(netip.AddrPort) bool, _ func(netip.AddrPort) int) (netip.AddrPort, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.set == nil {
		return netip.AddrPort{}, false
	}
	b := r.set.b
	for k := range len(b) {
		i := (r.next + k) % len(b)
		if b[i].Weight > 0 && isUsable(usable, b[i].Addr) {
			r.last, r.picked, r.next = b[i].Addr, true, i+1
			return b[i].Addr, true
		}
	}
	return netip.AddrPort{}, false
}

// WeightedRoundRobin is IPVS's wrr: a current weight cw starts at the
// largest weight and steps down by the gcd of the weights each time the
// list is exhausted, wrapping back to the largest; at each step every
// backend whose weight is at least cw is picked once, in address order. So
// weights 4,3,2 give A A B A B C A B C (interleaved), not A A A A B B B C C.
// Weight-0 backends are never picked. A backend usable rejects is passed
// over as IPVS passes over an overloaded one, and levels at which no usable
// backend qualifies are skipped, so a Pick costs at most two scans of the
// set whatever the weights. After an Update, cw is clamped to the new
// weights (rounded up to a multiple of their gcd) and the scan resumes
// after the backend picked last. The zero value is ready to use.
type WeightedRoundRobin struct {
	mu     sync.Mutex
	set    *set
	last   netip.AddrPort
	picked bool
	next   int
	cw     int
}

// Update implements Scheduler.
func (w *WeightedRoundRobin) Update(backends []Backend) {
	s := newSet(backends)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.set = s
	w.next = 0
	if w.picked {
		w.next = s.after(w.last)
	}
	w.cw = clampLevel(w.cw, s)
}

// clampLevel fits a current weight to s: the largest weight when unset or
// too big, else rounded up to a multiple of the gcd (IPVS rounds the same
// way so that no backend is picked twice at one level).
func clampLevel(cw int, s *set) int {
	if s.max == 0 {
		return 0
	}
	if cw <= 0 || cw > s.max {
		return s.max
	}
	return (cw + s.gcd - 1) / s.gcd * s.gcd
}

// Pick implements Scheduler. usable is called with w's lock held and must
// not call back into w.
func (w *WeightedRoundRobin) Pick(_ Conn, usable func(netip.AddrPort) bool, _ func(netip.AddrPort) int) (netip.AddrPort, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.set
	if s == nil || s.max == 0 {
		return netip.AddrPort{}, false
	}
	b := s.b
	cw := clampLevel(w.cw, s)
	// The rest of the current level.
	for i := w.next; i < len(b); i++ {
		if b[i].Weight >= cw && isUsable(usable, b[i].Addr) {
			w.last, w.picked, w.next, w.cw = b[i].Addr, true, i+1, cw
			return b[i].Addr, true
		}
	}
	// Level exhausted: go down one step, or wrap to the top, then skip the
	// levels above the heaviest usable backend (they would be empty
	// passes in IPVS). usable is asked once per backend here and the
	// answers reused.
	var buf [64]bool
	ok := buf[:0]
	if len(b) > len(buf) {
		ok = make([]bool, 0, len(b))
	}
	maxUsable := 0
	for _, be := range b {
		u := be.Weight > 0 && isUsable(usable, be.Addr)
		ok = append(ok, u)
		if u {
			maxUsable = max(maxUsable, be.Weight)
		}
	}
	if maxUsable == 0 {
		return netip.AddrPort{}, false
	}
	level := cw - s.gcd
	if level <= 0 || level > maxUsable {
		level = maxUsable
	}
	for i, be := range b {
		if ok[i] && be.Weight >= level {
			w.last, w.picked, w.next, w.cw = be.Addr, true, i+1, level
			return be.Addr, true
		}
	}
	return netip.AddrPort{}, false // unreachable: maxUsable's backend qualifies
}

func isUsable(usable func(netip.AddrPort) bool, a netip.AddrPort) bool {
	return usable == nil || usable(a)
}

func activeOf(active func(netip.AddrPort) int, a netip.AddrPort) int {
	if active == nil {
		return 0
	}
	return max(active(a), 0)
}
