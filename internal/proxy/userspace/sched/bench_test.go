package sched_test

import (
	"net/netip"
	"strconv"
	"testing"

	"github.com/portal-net/portal/internal/proxy/userspace/sched"
)

// BenchmarkPick measures one Pick over 10 and 100 equal-weight (wrr:
// weights 1..4) backends, all usable. The callbacks are as cheap as can be
// (no map lookup), so the figure is the scheduler's own cost; a caller's
// usable/active lookups add to it once per backend for lc, wlc, sed and
// nq.
func BenchmarkPick(b *testing.B) {
	for _, n := range []int{10, 100} {
		bs := backendsN(n)
		active := func(a netip.AddrPort) int { return int(a.Addr().As4()[3]%7) + 1 }
		usable := func(netip.AddrPort) bool { return true }
		for _, name := range sched.Names {
			b.Run(name+"/"+strconv.Itoa(n), func(b *testing.B) {
				s := mustNew(b, name)
				ws := make([]sched.Backend, len(bs))
				copy(ws, bs)
				if name == "wrr" {
					for i := range ws {
						ws[i].Weight = 1 + i%4
					}
				}
				s.Update(ws)
				i := 0
				for b.Loop() {
					i++
					if _, ok := s.Pick(sched.Conn{Client: client(i & 0xffff), Dest: client(i & 0xff)}, usable, active); !ok {
						b.Fatal("no pick")
					}
				}
			})
		}
	}
}

// BenchmarkUpdate measures rebuilding a set (for dh and sh, the bucket
// table) over 100 backends, alternating two sets so each Update changes it.
func BenchmarkUpdate(b *testing.B) {
	for _, name := range []string{"rr", "sh"} {
		for _, weighted := range []bool{false, true} {
			x, y := backendsN(100), backendsN(101)[1:]
			if weighted {
				for i := range x {
					x[i].Weight, y[i].Weight = 1+i%3, 1+i%3
				}
			}
			label := name + "/equal"
			if weighted {
				label = name + "/weighted"
			}
			b.Run(label, func(b *testing.B) {
				s := mustNew(b, name)
				i := 0
				for b.Loop() {
					i++
					if i%2 == 0 {
						s.Update(x)
					} else {
						s.Update(y)
					}
				}
			})
		}
	}
}
