package sched_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/portal-net/portal/internal/proxy/userspace/sched"
)

// random is uniform over usable weight>0 backends, whatever the weights.
// 30,000 picks over 3 backends: each count has a standard deviation of
// about 82, so ±1,000 around 10,000 is a >12σ bound.
func TestRandomUniform(t *testing.T) {
	s := mustNew(t, "random")
	s.Update(set(t, "A1 B5 C0 D2 E1"))
	g := seq(s, 30000, except("E"))
	for _, l := range []string{"A", "B", "D"} {
		if n := strings.Count(g, l); n < 9000 || n > 11000 {
			t.Errorf("%s picked %d times of 30000, want about 10000", l, n)
		}
	}
	if n := strings.Count(g, "C") + strings.Count(g, "E") + strings.Count(g, "-"); n != 0 {
		t.Errorf("weight-0 C, unusable E or none picked %d times", n)
	}
	// More backends than the stack buffer.
	s.Update(backendsN(100))
	seen := map[string]bool{}
	for range 5000 {
		b, ok := s.Pick(sched.Conn{}, nil, nil)
		if !ok {
			t.Fatal("no pick from 100 backends")
		}
		seen[b.String()] = true
	}
	if len(seen) != 100 {
		t.Errorf("5000 picks reached %d of 100 backends", len(seen))
	}
	// 100 eligible of 150: some picks fall back to collecting them all.
	s.Update(backendsN(150))
	clear(seen)
	for range 5000 {
		b, ok := s.Pick(sched.Conn{}, func(a netip.AddrPort) bool { return a.Addr().As4()[3] < 100 }, nil)
		if !ok || b.Addr().As4()[3] >= 100 {
			t.Fatalf("picked %v, %v; want one of the first 100", b, ok)
		}
		seen[b.String()] = true
	}
	if len(seen) != 100 {
		t.Errorf("5000 picks reached %d of 100 usable backends", len(seen))
	}
}
