package sched_test

import (
	"strings"
	"testing"
)

// step is one phase of a sequence test: an optional Update, then picks.
type step struct {
	update string // backend spec; "" keeps the set
	down   string // letters usable rejects
	want   string // letters picked, "-" for ok=false
}

func runSteps(t *testing.T, name string, steps []step) {
	t.Helper()
	s := mustNew(t, name)
	for i, st := range steps {
		if st.update != "" {
			s.Update(set(t, st.update))
		}
		if got := seq(s, len(st.want), except(st.down)); got != st.want {
			t.Errorf("step %d (update %q, down %q): picks %s, want %s", i, st.update, st.down, got, st.want)
		}
	}
}

func TestRoundRobinSequence(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"equal", []step{{update: "A1 B1 C1", want: "ABCABCABCA"}}},
		{"weights ignored", []step{{update: "A5 B1 C9", want: "ABCABC"}}},
		{"listed order ignored", []step{{update: "C1 A1 B1", want: "ABCABC"}}},
		{"weight 0 skipped", []step{{update: "A1 B0 C1", want: "ACACAC"}}},
		{"unusable skipped", []step{{update: "A1 B1 C1", down: "B", want: "ACACA"}, {want: "BCAB"}}},
		{"all unusable", []step{{update: "A1 B1", down: "AB", want: "--"}, {want: "AB"}}},
		{"resume after kept backend", []step{{update: "A1 B1 C1", want: "AB"}, {update: "C1 B1 A1 D1", want: "CDAB"}}},
		{"resume after removed backend", []step{{update: "A1 B1 C1 D1", want: "AB"}, {update: "A1 C1 D1", want: "CDAC"}}},
		{"removed last wraps", []step{{update: "A1 B1 C1", want: "ABC"}, {update: "A1 B1", want: "ABAB"}}},
		{"added backend joins in address order", []step{{update: "A1 C1", want: "A"}, {update: "A1 B1 C1", want: "BCAB"}}},
		{"empty", []step{{update: "", want: "--"}}},
	} {
		t.Run(tc.name, func(t *testing.T) { runSteps(t, "rr", tc.steps) })
	}
}

func TestWeightedRoundRobinSequence(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		// cw 4: A; 3: A B; 2: A B C; 1: A B C; then again.
		{"4,3,2 interleaved", []step{{update: "A4 B3 C2", want: strings.Repeat("AABABCABC", 3)}}},
		{"listed order ignored", []step{{update: "C2 A4 B3", want: strings.Repeat("AABABCABC", 2)}}},
		{"equal weights are rr", []step{{update: "A2 B2 C2", want: "ABCABCABC"}}},
		{"2,1", []step{{update: "A2 B1", want: "AABAABAAB"}}},
		{"5,1,1", []step{{update: "A5 B1 C1", want: strings.Repeat("AAAAABC", 2)}}},
		// gcd 2: cw steps 4, 2 — one round is 4/2 + 2/2 = 3 picks.
		{"gcd stepping", []step{{update: "A4 B2", want: "AABAABAAB"}}},
		{"gcd 3", []step{{update: "A9 B6 C3", want: "AABABCAABABC"}}},
		{"weight 0 skipped", []step{{update: "A3 B0 C1", want: "AAACAAAC"}}},
		// A overloaded: level 4 is empty and skipped, B and C share
		// 3:2 in their own interleaved order.
		{"unusable skipped", []step{{update: "A4 B3 C2", down: "A", want: "BBCBCBBCBC"}, {want: "AABABCABC"}}},
		{"all unusable", []step{{update: "A4 B3", down: "AB", want: "---"}}},
		{"all weight 0", []step{{update: "A0 B0", want: "--"}}},
		{"huge weight only light usable", []step{{update: "A65535 B1", down: "A", want: "BBBB"}}},
		{"same set again keeps place", []step{{update: "A4 B3 C2", want: "AABA"}, {update: "B3 C2 A4", want: "BCABCAABA"}}},
		// After A A B (cw 3), B goes: {A4 C2} has gcd 2 so cw rounds
		// up to 4, C at 4 misses, cw 2 gives A C, then 4: A, 2: A C.
		{"removed last picked", []step{{update: "A4 B3 C2", want: "AAB"}, {update: "A4 C2", want: "ACAACAAC"}}},
		// cw 3 is above the new top weight 2 and becomes 2; C misses
		// at 2, then 1: A B C, then 2: A B.
		{"weights lowered", []step{{update: "A4 B3 C2", want: "AAB"}, {update: "A2 B2 C1", want: "ABCABABC"}}},
		{"repeated address keeps its first entry", []step{{update: "A4 B3 C2 A0 B9", want: "AABABCABC"}}},
		{"negative weight is 0", []step{{update: "A-3 B2 C1", want: "BBCBBC"}}},
		{"empty", []step{{update: "", want: "--"}}},
	} {
		t.Run(tc.name, func(t *testing.T) { runSteps(t, "wrr", tc.steps) })
	}
}

// Over whole rounds wrr gives each backend exactly its weight's share.
func TestWeightedRoundRobinShares(t *testing.T) {
	for _, spec := range []string{"A4 B3 C2", "A65535 B1", "A7 B5 C3 D1", "A10 B10 C5"} {
		s := mustNew(t, "wrr")
		bs := set(t, spec)
		s.Update(bs)
		total := 0
		for _, b := range bs {
			total += b.Weight
		}
		g := seq(s, 2*total, nil)
		for _, b := range bs {
			l := letter(b.Addr)
			if got := strings.Count(g, l); got != 2*b.Weight {
				t.Errorf("%s: %s picked %d times in two rounds, want %d", spec, l, got, 2*b.Weight)
			}
		}
	}
}
