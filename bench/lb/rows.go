package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/portal-net/portal/bench/internal/report"
)

// goal is issue 9's: traffic flowing again within 2 s of a node's loss.
const goal = 2 * time.Second

func rows(f *figures, o options) []report.Row {
	var t report.Table
	n := len(f.rounds)
	var outages, takeovers []time.Duration
	var failed, failback []int
	unresumed, moved, back, sent := 0, 0, 0, 0
	// Failed requests per second of outage: how fast the client's
	// requests fail while no node answers.
	var outFailed int
	var outTotal time.Duration
	for _, r := range f.rounds {
		if r.resumed {
			outages = append(outages, r.outage)
		} else {
			unresumed++
		}
		if r.takeoverSeen {
			takeovers = append(takeovers, r.takeover)
		}
		failed = append(failed, r.failed)
		failback = append(failback, r.failbackFailed)
		sent += r.sent
		if r.resumed {
			outFailed += r.failed
			outTotal += r.outage
		}
		if r.neighMoved {
			moved++
		}
		if r.neighBack {
			back++
		}
	}
	base := "not run (no -memberlist)"
	baseDet := base
	if m := len(f.baseline); m > 0 {
		of := fmt.Sprintf(" of %d", m)
		if f.mlErr != nil {
			of += fmt.Sprintf("; then cut short: %v", f.mlErr)
		}
		base = "≥ " + durs(f.baseline) + " (memberlist detection" + of + ")"
		baseDet = durs(f.baseline) + " (memberlist: both others saw NodeLeave" + of + ")"
	} else if f.mlErr != nil {
		base, baseDet = "memberlist: "+f.mlErr.Error(), "memberlist: "+f.mlErr.Error()
	}
	if n == 0 {
		t.Add("node link down → traffic flowing again", "not measured (no round completed)", base, "< 2 s")
		return t.Rows
	}

	portal := durs(outages)
	if unresumed > 0 {
		portal += fmt.Sprintf("; %d of %d rounds did not resume within 20 s", unresumed, n)
	}
	if len(outages) == 0 {
		portal = fmt.Sprintf("never resumed within 20 s (%d rounds)", n)
	}
	met := unresumed == 0 && len(outages) > 0 && maxDur(outages) < goal
	t.Add(fmt.Sprintf("node link down → traffic flowing again (p50 / max of %d)", n), portal, base, "< 2 s (every round): "+report.Verdict(met))

	est := "not measured (MetalLB's data path not run)"
	if len(f.baseline) > 0 && outTotal > 0 {
		// Requests fail at least while no node answers for the address:
		// at the rate they failed during portal's outages, over the
		// memberlist detection time.
		rate := float64(outFailed) / outTotal.Seconds()
		est = fmt.Sprintf("not measured; ≥ ~%.0f estimated (%.1f failures/s as in portal's outages × memberlist detection p50)", rate*durMedian(f.baseline).Seconds(), rate)
	}
	t.Add(fmt.Sprintf("failed requests per failover (p50 / max; one every %s, %s time-out)", o.interval, o.timeout),
		counts(failed)+fmt.Sprintf(" (of %d sent in a round on average)", sent/n), est, "")

	take := durs(takeovers)
	if len(takeovers) < n {
		take += fmt.Sprintf(" (%d of %d rounds had no announce line after the cut)", n-len(takeovers), n)
	}
	t.Add("node loss detected and address taken over (p50 / max; the new announcer's log line)", take, baseDet, "")
	t.Add("client's ARP entry moved to the new announcer", fmt.Sprintf("%d of %d rounds", moved, n), "not measured", "")
	t.Add("failback (link up again): failed requests (p50 / max)",
		counts(failback)+fmt.Sprintf("; ARP entry back on node-1 in %d of %d rounds", back, n), "not measured", "")
	return t.Rows
}

func maxDur(d []time.Duration) time.Duration {
	var m time.Duration
	for _, x := range d {
		m = max(m, x)
	}
	return m
}

func durMedian(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return report.Percentile(s, 0.5)
}
