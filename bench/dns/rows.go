package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/portal-net/portal/bench/internal/report"
)

// Goals of issue 7, as ratios to CoreDNS in the same run.
const (
	goalQPSRatio = 2.0
	goalRSSRatio = 0.5
)

func pct(sorted []time.Duration, q float64) time.Duration { return report.Percentile(sorted, q) }

// latency formats sub-millisecond latencies readably.
func latency(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d.Nanoseconds())/1e6)
}

func failed(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return "failed: " + s
}

// rows lays the figures out: portal's, CoreDNS's, their ratio and the goal
// judged on the ratio. It is pure; peer is nil when CoreDNS did not start
// or was not built (built says which).
func rows(o options, ours, peer *figures, built bool) [][]string {
	if ours == nil {
		return nil
	}
	var out [][]string
	add := func(metric, p, c, ratio, goal string) { out = append(out, []string{metric, p, c, ratio, goal}) }
	peerCell := func(cell func(*figures) string) string {
		if !built || peer == nil {
			return "not built"
		}
		return cell(peer)
	}
	ratio := func(a, b float64, ok bool) (string, float64) {
		if !ok || a <= 0 || b <= 0 {
			return "", 0
		}
		return fmt.Sprintf("%.2f×", a/b), a / b
	}
	goal := func(text string, r float64, ok func(float64) bool) string {
		if r == 0 {
			return text + " (not judged)"
		}
		return text + ": " + report.Verdict(ok(r))
	}
	size := fmt.Sprintf("%d svc + %d headless", o.services, o.headless)

	startCell := func(f *figures) string {
		if f.startErr != nil {
			return failed(f.startErr)
		}
		return report.MS(f.start)
	}
	peerOK := built && peer != nil && peer.startErr == nil
	r, _ := ratio(ours.start.Seconds(), peerStart(peer), ours.startErr == nil && peerOK)
	add("start → first correct answer (exec → A of a ClusterIP service), "+size, startCell(ours), peerCell(startCell), r, "")

	for k := range numKinds {
		kf, pk := ours.loads[k], (*kindFigures)(nil)
		if peer != nil {
			pk = peer.loads[k]
		}
		loadCell := func(f *kindFigures, cell func(loadResult) string) string {
			switch {
			case f == nil:
				return "not run"
			case f.err != nil:
				return failed(f.err)
			}
			return cell(f.res)
		}
		both := kf != nil && kf.err == nil && pk != nil && pk.err == nil
		qps := func(r loadResult) string {
			s := fmt.Sprintf("%.0f/s", r.qps())
			if r.timeouts > 0 {
				s += fmt.Sprintf(" (%d timeouts)", r.timeouts)
			}
			return s
		}
		var a, b loadResult
		if kf != nil {
			a = kf.res
		}
		if pk != nil {
			b = pk.res
		}
		rq, vq := ratio(a.qps(), b.qps(), both)
		g := ""
		if k.cluster() {
			g = goal(fmt.Sprintf("≥ %.0f× CoreDNS", goalQPSRatio), vq, func(v float64) bool { return v >= goalQPSRatio })
		}
		add(fmt.Sprintf("queries/s, %s (UDP, %d clients, %s)", k, o.concurrency, o.duration),
			loadCell(kf, qps), peerCell(func(*figures) string { return loadCell(pk, qps) }), rq, g)

		if o.dnsperf != "" {
			perfCell := func(f *kindFigures) string {
				switch {
				case f == nil:
					return "not run"
				case f.err != nil:
					return "not run: the load failed"
				case f.perfErr != nil:
					return failed(f.perfErr)
				}
				s := fmt.Sprintf("%.0f/s", f.perf.qps)
				if f.perf.lost > 0 {
					s += fmt.Sprintf(" (%d lost)", f.perf.lost)
				}
				return s
			}
			perfOK := func(f *kindFigures) bool { return f != nil && f.err == nil && f.perfErr == nil && f.perf != nil }
			var a, b float64
			if perfOK(kf) {
				a = kf.perf.qps
			}
			if perfOK(pk) {
				b = pk.perf.qps
			}
			rp, vp := ratio(a, b, perfOK(kf) && perfOK(pk))
			g := ""
			if k.cluster() {
				g = goal(fmt.Sprintf("≥ %.0f× CoreDNS", goalQPSRatio), vp, func(v float64) bool { return v >= goalQPSRatio })
			}
			add(fmt.Sprintf("queries/s with dnsperf, %s (%d clients, %d in flight, %s)", k, o.concurrency, o.perfOutstanding, o.duration),
				perfCell(kf), peerCell(func(*figures) string { return perfCell(pk) }), rp, g)
		}

		lat := func(r loadResult) string { return latency(pct(r.lat, 0.5)) + " / " + latency(pct(r.lat, 0.99)) }
		rl, vl := ratio(pct(a.lat, 0.99).Seconds(), pct(b.lat, 0.99).Seconds(), both)
		g = ""
		if k.cluster() {
			g = goal("p99 ≤ CoreDNS's", vl, func(v float64) bool { return v <= 1 })
		}
		add(fmt.Sprintf("latency p50 / p99, %s", k), loadCell(kf, lat),
			peerCell(func(*figures) string { return loadCell(pk, lat) }), rl, g)

		cpuOK := both && kf.cpu > 0 && pk.cpu > 0
		var rc string
		if cpuOK {
			rc, _ = ratio(perAnswer(kf), perAnswer(pk), true)
		}
		add(fmt.Sprintf("server CPU per answer (cores busy), %s", k), kfCell(kf, cpuCell),
			peerCell(func(*figures) string { return kfCell(pk, cpuCell) }), rc, "")

		if k == kindExternal {
			up := func(f *kindFigures) string {
				if f == nil || f.err != nil {
					return loadCell(f, nil)
				}
				return fmt.Sprintf("%d", f.upstream)
			}
			add("upstream queries during the measured external run (after warm-up; 0 = all from the cache)",
				up(kf), peerCell(func(*figures) string { return up(pk) }), "", "")
		}
	}

	rssCell := func(f *figures) string {
		switch {
		case f.startErr != nil:
			return "not started"
		case f.rssErr != nil:
			return failed(f.rssErr)
		case f.rss == 0:
			return "not measured"
		}
		return report.MB(f.rss)
	}
	rssOK := ours.rssErr == nil && peerOK && peer.rssErr == nil
	rr, vr := ratio(ours.rss, peerRSS(peer), rssOK)
	add("RSS after the loads, "+size, rssCell(ours), peerCell(rssCell), rr,
		goal("≤ ½ CoreDNS's (issue: at 10,000 svc)", vr, func(v float64) bool { return v <= goalRSSRatio }))
	part := func(v func(*figures) float64) func(*figures) string {
		return func(f *figures) string {
			if f.startErr != nil || f.rssErr != nil || f.rss == 0 {
				return rssCell(f)
			}
			return report.MB(v(f))
		}
	}
	anon, file := func(f *figures) float64 { return f.anon }, func(f *figures) float64 { return f.file }
	var pa, pf float64
	if peer != nil {
		pa, pf = peer.anon, peer.file
	}
	ra, _ := ratio(ours.anon, pa, rssOK)
	add("  of it anonymous (heap, stacks)", part(anon)(ours), peerCell(part(anon)), ra, "")
	rf, _ := ratio(ours.file, pf, rssOK)
	add("  of it file pages (the binary's code and data touched)", part(file)(ours), peerCell(part(file)), rf, "")
	return out
}

// perAnswer is the server's CPU time per correct answer in µs.
func perAnswer(f *kindFigures) float64 {
	if f.res.answered == 0 {
		return 0
	}
	return float64(f.cpu.Microseconds()) / float64(f.res.answered)
}

// cpuCell shows what a load cost the server: the queries/s of a load
// generator sharing the machine's cores can hide it.
func cpuCell(f *kindFigures) string {
	if f.cpu <= 0 || f.res.answered == 0 || f.res.elapsed <= 0 {
		return "not measured"
	}
	return fmt.Sprintf("%.1f µs (%.2f cores)", perAnswer(f), f.cpu.Seconds()/f.res.elapsed.Seconds())
}

func kfCell(f *kindFigures, cell func(*kindFigures) string) string {
	switch {
	case f == nil:
		return "not run"
	case f.err != nil:
		return failed(f.err)
	}
	return cell(f)
}

func peerStart(f *figures) float64 {
	if f == nil {
		return 0
	}
	return f.start.Seconds()
}

func peerRSS(f *figures) float64 {
	if f == nil {
		return 0
	}
	return f.rss
}
