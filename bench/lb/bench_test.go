package main

import (
	"strings"
	"testing"
	"time"
)

func TestFailover(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tests := []struct {
		name    string
		log     []sample
		outage  time.Duration
		failed  int
		sent    int
		resumed bool
	}{
		{"before the cut is ignored", []sample{{at(-40), false}, {at(-20), true}, {at(10), true}}, 0, 0, 1, true},
		{"one gap", []sample{{at(-20), true}, {at(300), false}, {at(620), false}, {at(700), true}, {at(720), true}},
			700 * time.Millisecond, 2, 4, true},
		{"a success between failures does not end the outage", []sample{
			{at(300), false}, {at(400), true}, {at(700), false}, {at(950), true}, {at(970), true}},
			950 * time.Millisecond, 2, 5, true},
		{"never resumed", []sample{{at(300), false}, {at(600), false}}, 0, 2, 2, false},
		{"nothing sent", nil, 0, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outage, failed, sent, resumed := failover(tt.log, t0)
			if outage != tt.outage || failed != tt.failed || sent != tt.sent || resumed != tt.resumed {
				t.Fatalf("failover = %v, %d, %d, %v; want %v, %d, %d, %v", outage, failed, sent, resumed, tt.outage, tt.failed, tt.sent, tt.resumed)
			}
		})
	}
}

func TestSteady(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	log := []sample{{at(-500), true}, {at(100), false}, {at(200), true}, {at(1000), true}, {at(2100), true}}
	if !steady(log, t0, at(2200), 2*time.Second) {
		t.Error("2 s of successes since 200 ms not seen at 2.2 s")
	}
	if steady(log, t0, at(2100), 2*time.Second) {
		t.Error("1.9 s of successes taken for 2 s")
	}
	// Successes before t0 do not count.
	if steady(log[:1], t0, at(5000), time.Second) {
		t.Error("a success before t0 counted")
	}
	if steady([]sample{{at(100), true}, {at(900), false}}, t0, at(5000), time.Second) {
		t.Error("a log ending in a failure is steady")
	}
}

func TestKlogTime(t *testing.T) {
	ref := time.Date(2026, 12, 1, 23, 7, 44, 0, time.UTC)
	line := `I1201 23:07:45.123456   25951 speaker.go:326] "Announcing a load-balancer address" address="198.18.0.241" interface="eth0" services=["default/web"]`
	got, ok := klogTime(line, ref)
	if want := time.Date(2026, 12, 1, 23, 7, 45, 123456000, time.UTC); !ok || !got.Equal(want) {
		t.Fatalf("klogTime = %v, %v; want %v", got, ok, want)
	}
	// A line written just before midnight of new year, read just after.
	got, ok = klogTime("W1231 23:59:59.500000 1 x.go:1] late", time.Date(2027, 1, 1, 0, 0, 1, 0, time.UTC))
	if want := time.Date(2026, 12, 31, 23, 59, 59, 500000000, time.UTC); !ok || !got.Equal(want) {
		t.Fatalf("across the year: %v, %v; want %v", got, ok, want)
	}
	for _, bad := range []string{"", "hello world, this is not klog", "I1301 25:00:00.000000 1 x.go:1] bad"} {
		if _, ok := klogTime(bad, ref); ok {
			t.Errorf("klogTime(%q) parsed", bad)
		}
	}
}

func TestFirstAnnounce(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 23, 10, 0, 0, time.UTC)
	log := strings.Join([]string{
		`I1201 23:09:50.000000 1 speaker.go:326] "Announcing a load-balancer address" address="198.18.0.241" interface="eth0"`,
		`I1201 23:10:00.400000 1 speaker.go:326] "Announcing a load-balancer address" address="198.18.0.242" interface="eth0"`,
		`E1201 23:10:00.500000 1 speaker.go:322] "Announcing a load-balancer address" err="boom" address="198.18.0.241"`,
		`I1201 23:10:00.912345 1 speaker.go:326] "Announcing a load-balancer address" address="198.18.0.241" interface="eth0"`,
	}, "\n")
	// Not the line from before t0, not another address, not the error
	// line of a failed attempt.
	got, ok := firstAnnounce(log, "198.18.0.241", t0)
	if want := t0.Add(912345 * time.Microsecond); !ok || !got.Equal(want) {
		t.Fatalf("firstAnnounce = %v, %v; want %v", got, ok, want)
	}
	if _, ok := firstAnnounce(log, "198.18.0.243", t0); ok {
		t.Error("found an address never announced")
	}
}

func TestMemberEvent(t *testing.T) {
	out := "2026/12/01 23:10:00 [DEBUG] memberlist: Stream connection\njoin node-2 1700000000000000000\nleave node-1 1700000006000000000\njoin node-10 5\n"
	if at, ok := memberEvent(out, "leave", "node-1"); !ok || at.UnixNano() != 1700000006000000000 {
		t.Fatalf("leave node-1 = %v, %v", at, ok)
	}
	if _, ok := memberEvent(out, "join", "node-1"); ok {
		t.Error("join node-1 found (only node-10 joined)")
	}
}

func TestFormatting(t *testing.T) {
	if got := durs([]time.Duration{3 * time.Second, time.Second, 2 * time.Second}); got != "2.00 s / 3.00 s" {
		t.Errorf("durs = %q", got)
	}
	if got := counts([]int{4, 3, 9, 3}); got != "3 / 9" {
		t.Errorf("counts = %q", got)
	}
	if durs(nil) != "" || counts(nil) != "" {
		t.Error("no samples should format as empty")
	}
}

func TestRows(t *testing.T) {
	o := options{interval: 20 * time.Millisecond, timeout: 300 * time.Millisecond}
	f := &figures{rounds: []roundResult{
		{outage: 900 * time.Millisecond, resumed: true, failed: 3, sent: 90, takeover: 800 * time.Millisecond, takeoverSeen: true, neighMoved: true, neighBack: true},
		{outage: 2100 * time.Millisecond, resumed: true, failed: 7, sent: 100, neighMoved: true},
	}}
	got := rows(f, o)
	if len(got) != 5 {
		t.Fatalf("%d rows, want 5: %v", len(got), got)
	}
	if r := got[0]; r.Portal != "0.90 s / 2.10 s" || r.Baseline != "not run (no -memberlist)" || !strings.HasSuffix(r.Goal, "MISSED") {
		t.Errorf("outage row %+v", r)
	}
	if r := got[2]; !strings.HasPrefix(r.Portal, "0.80 s / 0.80 s (1 of 2 rounds had no announce line") {
		t.Errorf("takeover row %+v", r)
	}
	f.rounds = f.rounds[:1]
	f.baseline = []time.Duration{6 * time.Second, 5 * time.Second}
	got = rows(f, o)
	if r := got[0]; r.Baseline != "≥ 5.00 s / 6.00 s (memberlist detection of 2)" || !strings.HasSuffix(r.Goal, ": met") {
		t.Errorf("outage row with baseline %+v", r)
	}
	// 3 failures in 0.9 s of outage, over the 5 s detection p50.
	if r := got[1]; !strings.Contains(r.Baseline, "≥ ~17 estimated") {
		t.Errorf("failed-requests row %+v", r)
	}
}
