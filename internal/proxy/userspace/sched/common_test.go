package sched_test

import (
	"net/netip"
	"testing"

	"github.com/portal-net/portal/internal/proxy/userspace/sched"
)

// Whatever the algorithm, clients and load: weight-0 and unusable backends
// are never picked.
func TestNeverPicksQuiescedOrUnusable(t *testing.T) {
	bs := set(t, "A1 B0 C3 D2 E1")
	usable := except("D")
	for _, name := range sched.Names {
		t.Run(name, func(t *testing.T) {
			s := mustNew(t, name)
			s.Update(bs)
			active := map[netip.AddrPort]int{}
			seen := map[string]int{}
			for i := range 3000 {
				c := sched.Conn{Client: client(i), Dest: client(i * 7)}
				b, ok := s.Pick(c, usable, func(a netip.AddrPort) int { return active[a] })
				if !ok {
					t.Fatalf("pick %d: ok=false with A, C, E usable", i)
				}
				seen[letter(b)]++
				active[b]++
				if i%3 == 0 { // some connections end
					for a := range active {
						if active[a] > 0 {
							active[a]--
						}
					}
				}
			}
			if seen["B"] != 0 || seen["D"] != 0 {
				t.Errorf("picked weight-0 B %d times, unusable D %d times", seen["B"], seen["D"])
			}
			if seen["A"]+seen["C"]+seen["E"] != 3000 {
				t.Errorf("picks %v do not add up", seen)
			}
		})
	}
}

func TestNoBackendLeft(t *testing.T) {
	for _, tc := range []struct {
		name     string
		update   bool
		backends string
		down     string
	}{
		{name: "never updated"},
		{name: "empty set", update: true},
		{name: "all weight 0", update: true, backends: "A0 B0 C0"},
		{name: "all unusable", update: true, backends: "A1 B2 C3", down: "ABC"},
		{name: "rest unusable", update: true, backends: "A0 B2 C3", down: "BC"},
	} {
		for _, name := range sched.Names {
			s := mustNew(t, name)
			if tc.update {
				s.Update(set(t, tc.backends))
			}
			for i := range 5 {
				if b, ok := s.Pick(sched.Conn{Client: client(i), Dest: client(i)}, except(tc.down), nil); ok {
					t.Errorf("%s, %s: picked %v, want ok=false", tc.name, name, b)
				}
			}
		}
	}
}

// A set shrinking to nothing and growing again works for every scheduler.
func TestUpdateToEmptyAndBack(t *testing.T) {
	for _, name := range sched.Names {
		s := mustNew(t, name)
		s.Update(set(t, "A1 B1"))
		s.Update(nil)
		if b, ok := s.Pick(sched.Conn{}, nil, nil); ok {
			t.Errorf("%s: picked %v from an empty set", name, b)
		}
		s.Update(set(t, "C2"))
		if b, ok := s.Pick(sched.Conn{}, nil, nil); !ok || letter(b) != "C" {
			t.Errorf("%s: picked %v, %v; want C", name, b, ok)
		}
	}
}
