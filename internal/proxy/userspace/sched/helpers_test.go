package sched_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/portal-net/portal/internal/proxy/userspace/sched"
)

// Backends are named by letter: A is 10.0.0.1:8080, B 10.0.0.2:8080...
func addr(letter byte) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, letter - 'A' + 1}), 8080)
}

func letter(a netip.AddrPort) string {
	b := a.Addr().As4()
	return string(rune('A' + b[3] - 1))
}

// set builds backends from "A4 B3 C2" (letter and weight).
func set(t testing.TB, spec string) []sched.Backend {
	t.Helper()
	var bs []sched.Backend
	for _, f := range strings.Fields(spec) {
		var w int
		if _, err := fmt.Sscanf(f[1:], "%d", &w); err != nil {
			t.Fatalf("bad spec %q: %v", f, err)
		}
		bs = append(bs, sched.Backend{Addr: addr(f[0]), Weight: w})
	}
	return bs
}

// except returns a usable func rejecting the given letters.
func except(letters string) func(netip.AddrPort) bool {
	return func(a netip.AddrPort) bool { return !strings.Contains(letters, letter(a)) }
}

// counts returns an active func from "A3 B0".
func counts(t testing.TB, spec string) func(netip.AddrPort) int {
	t.Helper()
	m := map[netip.AddrPort]int{}
	for _, f := range strings.Fields(spec) {
		var n int
		if _, err := fmt.Sscanf(f[1:], "%d", &n); err != nil {
			t.Fatalf("bad counts %q: %v", f, err)
		}
		m[addr(f[0])] = n
	}
	return func(a netip.AddrPort) int { return m[a] }
}

func mustNew(t testing.TB, name string) sched.Scheduler {
	t.Helper()
	s, err := sched.New(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seq picks n times and returns the letters, "-" for ok=false.
func seq(s sched.Scheduler, n int, usable func(netip.AddrPort) bool) string {
	var sb strings.Builder
	for range n {
		b, ok := s.Pick(sched.Conn{}, usable, nil)
		if !ok {
			sb.WriteString("-")
			continue
		}
		sb.WriteString(letter(b))
	}
	return sb.String()
}

func client(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{172, byte(16 + i>>16), byte(i >> 8), byte(i)}), uint16(30000+i%1000))
}
