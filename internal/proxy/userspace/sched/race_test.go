package sched_test

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/portal-net/portal/internal/proxy/userspace/sched"
)

// Concurrent Pick and Update (run with -race): every pick is a backend of
// one of the two sets the updater alternates between, and never fails as
// both sets have usable backends.
func TestConcurrentPickUpdate(t *testing.T) {
	setA := set(t, "A1 B2 C3")
	setB := set(t, "B1 C1 D4 E1")
	valid := map[netip.AddrPort]bool{}
	for _, b := range append(setA, setB...) {
		valid[b.Addr] = true
	}
	var counts [8]atomic.Int64 // active connections per letter A..H
	idx := func(a netip.AddrPort) int { return int(a.Addr().As4()[3] - 1) }
	active := func(a netip.AddrPort) int { return int(counts[idx(a)].Load()) }
	for _, name := range sched.Names {
		t.Run(name, func(t *testing.T) {
			s := mustNew(t, name)
			s.Update(setA)
			var wg sync.WaitGroup
			stop := make(chan struct{})
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if i%2 == 0 {
						s.Update(setB)
					} else {
						s.Update(setA)
					}
				}
			})
			var bad atomic.Int64
			var pickers sync.WaitGroup
			for g := range 8 {
				pickers.Go(func() {
					for i := range 2000 {
						c := sched.Conn{Client: client(g*2000 + i), Dest: client(i)}
						b, ok := s.Pick(c, nil, active)
						if !ok || !valid[b] {
							bad.Add(1)
							continue
						}
						counts[idx(b)].Add(1)
						counts[idx(b)].Add(-1)
					}
				})
			}
			pickers.Wait()
			close(stop)
			wg.Wait()
			if n := bad.Load(); n != 0 {
				t.Errorf("%d of 16000 concurrent picks failed or returned a stranger", n)
			}
		})
	}
}
