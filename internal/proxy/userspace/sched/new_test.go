package sched_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/portal-net/portal/internal/proxy/userspace/sched"
)

func TestNew(t *testing.T) {
	want := map[string]string{
		"rr": "*sched.RoundRobin", "wrr": "*sched.WeightedRoundRobin",
		"lc": "*sched.LeastConn", "wlc": "*sched.WeightedLeastConn",
		"dh": "*sched.DestinationHash", "sh": "*sched.SourceHash",
		"sed": "*sched.ShortestExpectedDelay", "nq": "*sched.NeverQueue",
		"random": "*sched.Random",
	}
	if len(sched.Names) != len(want) {
		t.Fatalf("Names = %v, want the %d schedulers", sched.Names, len(want))
	}
	for _, name := range sched.Names {
		s, err := sched.New(name)
		if err != nil {
			t.Fatalf("New(%q): %v", name, err)
		}
		if got := fmt.Sprintf("%T", s); got != want[name] {
			t.Errorf("New(%q) is %s, want %s", name, got, want[name])
		}
		if s2, _ := sched.New(name); s2 == s {
			t.Errorf("New(%q) returned the same instance twice", name)
		}
	}
	if _, err := sched.New(sched.Default); err != nil {
		t.Errorf("New(Default): %v", err)
	}
	for _, name := range []string{"", "RR", "lblc", "round-robin", " rr"} {
		s, err := sched.New(name)
		if err == nil || s != nil {
			t.Errorf("New(%q) = %v, %v; want an error", name, s, err)
			continue
		}
		if !errors.Is(err, sched.ErrUnknownScheduler) {
			t.Errorf("New(%q) error %v does not wrap ErrUnknownScheduler", name, err)
		}
		for _, n := range sched.Names {
			if !strings.Contains(err.Error(), n) {
				t.Errorf("New(%q) error %q does not name %q", name, err, n)
			}
		}
	}
}

func TestParseWeight(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true},
		{"1", 1, true},
		{"007", 7, true},
		{"65535", 65535, true},
		{"65536", 0, false},
		{"4294967296", 0, false},
		{"99999999999999999999", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"1.5", 0, false},
		{"0x10", 0, false},
		{"ten", 0, false},
	} {
		got, err := sched.ParseWeight(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("ParseWeight(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, sched.ErrInvalidWeight) {
			t.Errorf("ParseWeight(%q) error %v does not wrap ErrInvalidWeight", tc.in, err)
		}
	}
}
