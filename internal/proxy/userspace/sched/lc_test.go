package sched_test

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/portal-net/portal/internal/proxy/userspace/sched"
)

func TestLeastConnFamilyChoice(t *testing.T) {
	for _, tc := range []struct {
		name     string
		backends string // letter+weight
		active   string // letter+count
		down     string
		want     map[string]string // scheduler -> letter, "-" for none
	}{
		{"all idle: lowest address", "A1 B1 C1", "", "",
			map[string]string{"lc": "A", "wlc": "A", "sed": "A", "nq": "A"}},
		{"fewest active", "A1 B1 C1", "A3 B1 C2", "",
			map[string]string{"lc": "B", "wlc": "B", "sed": "B", "nq": "B"}},
		{"tie goes to lowest address", "A1 B1 C1", "A2 B1 C1", "",
			map[string]string{"lc": "B", "wlc": "B", "sed": "B", "nq": "B"}},
		// lc ignores weights; wlc: A 2/10 < B 1/1.
		{"lc ignores weight", "A10 B1", "A2 B1", "",
			map[string]string{"lc": "B", "wlc": "A", "sed": "A", "nq": "A"}},
		// wlc: A 4/4=1, B 1/1=1, C 1/2: C. sed: A 5/4, B 2, C 1: C.
		{"active over weight", "A4 B1 C2", "A4 B1 C1", "",
			map[string]string{"lc": "B", "wlc": "C", "sed": "C", "nq": "C"}},
		// wlc: A 2/2 = B 1/1, tie to A. sed: A 3/2 < B 2/1.
		{"wlc tie", "A2 B1", "A2 B1", "",
			map[string]string{"lc": "B", "wlc": "A", "sed": "A", "nq": "A"}},
		// The case that tells sed from nq: sed A (0+1)/1=1 vs
		// B (1+1)/3=0.67 takes busy B; nq takes idle A. wlc: A 0.
		{"sed prefers heavy busy, nq the idle", "A1 B3", "B1", "",
			map[string]string{"lc": "A", "wlc": "A", "sed": "B", "nq": "A"}},
		// Idle ones all weighted low: nq still takes the first idle.
		{"nq first idle whatever its weight", "A9 B1 C1", "A1 C0 B0", "",
			map[string]string{"lc": "B", "wlc": "B", "sed": "A", "nq": "B"}},
		// None idle: nq is sed. sed A 4/9, B 3/1, C 2/2=1: A.
		{"nq without idle is sed", "A9 B1 C2", "A3 B2 C1", "",
			map[string]string{"lc": "C", "wlc": "A", "sed": "A", "nq": "A"}},
		{"weight 0 never picked even idle", "A0 B1", "B50", "",
			map[string]string{"lc": "B", "wlc": "B", "sed": "B", "nq": "B"}},
		{"unusable skipped even idle", "A1 B1", "B50", "A",
			map[string]string{"lc": "B", "wlc": "B", "sed": "B", "nq": "B"}},
		{"none usable", "A1 B1", "", "AB",
			map[string]string{"lc": "-", "wlc": "-", "sed": "-", "nq": "-"}},
		// Products beyond 64 bits still compare exactly: wlc
		// A huge/65535 vs B (huge-1)/65535.
		{"no overflow", "A65535 B65535", "A9223372036854775807 B9223372036854775806", "",
			map[string]string{"lc": "B", "wlc": "B", "sed": "B", "nq": "B"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for name, want := range tc.want {
				s := mustNew(t, name)
				s.Update(set(t, tc.backends))
				got := "-"
				if b, ok := s.Pick(sched.Conn{}, except(tc.down), counts(t, tc.active)); ok {
					got = letter(b)
				}
				if got != want {
					t.Errorf("%s picked %s, want %s", name, got, want)
				}
			}
		})
	}
}

// A seeded random search: over many backend sets, each of lc, wlc, sed
// and nq picks an eligible (usable, weight > 0) backend of least cost, and
// lc and nq never pick a busy backend while an eligible one is idle.
func TestLeastConnProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 2026))
	cost := map[string]func(a, w int) float64{
		"lc":  func(a, _ int) float64 { return float64(a) },
		"wlc": func(a, w int) float64 { return float64(a) / float64(w) },
		"sed": func(a, w int) float64 { return float64(a+1) / float64(w) },
	}
	for iter := range 5000 {
		n := 1 + rng.IntN(8)
		var bs []sched.Backend
		active := map[netip.AddrPort]int{}
		down := map[netip.AddrPort]bool{}
		idle := false
		for i := range n {
			b := sched.Backend{Addr: addr(byte('A' + i)), Weight: rng.IntN(5)}
			bs = append(bs, b)
			if rng.IntN(3) > 0 {
				active[b.Addr] = rng.IntN(5)
			}
			down[b.Addr] = rng.IntN(4) == 0
			if b.Weight > 0 && !down[b.Addr] && active[b.Addr] == 0 {
				idle = true
			}
		}
		usable := func(a netip.AddrPort) bool { return !down[a] }
		act := func(a netip.AddrPort) int { return active[a] }
		weight := map[netip.AddrPort]int{}
		anyEligible := false
		for _, b := range bs {
			weight[b.Addr] = b.Weight
			anyEligible = anyEligible || b.Weight > 0 && !down[b.Addr]
		}
		for _, name := range []string{"lc", "wlc", "sed", "nq"} {
			s := mustNew(t, name)
			s.Update(bs)
			got, ok := s.Pick(sched.Conn{}, usable, act)
			if ok != anyEligible {
				t.Fatalf("iter %d %s: ok=%v with eligible=%v (%v)", iter, name, ok, anyEligible, bs)
			}
			if !ok {
				continue
			}
			if weight[got] == 0 || down[got] {
				t.Fatalf("iter %d %s picked ineligible %v", iter, name, got)
			}
			if (name == "lc" || name == "nq") && idle && active[got] != 0 {
				t.Fatalf("iter %d %s picked %v with %d active while an idle backend exists (%v, active %v, down %v)",
					iter, name, got, active[got], bs, active, down)
			}
			c := cost[name]
			if name == "nq" {
				if idle {
					continue
				}
				c = cost["sed"]
			}
			for _, b := range bs {
				if b.Weight > 0 && !down[b.Addr] && c(active[b.Addr], b.Weight) < c(active[got], weight[got]) {
					t.Fatalf("iter %d %s picked %v (cost %v) over %v (cost %v)", iter, name,
						got, c(active[got], weight[got]), b.Addr, c(active[b.Addr], b.Weight))
				}
			}
		}
	}
}
