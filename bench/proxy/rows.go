package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/portal-net/portal/bench/internal/report"
)

// Goals of issue 6 (and issue 8's for the userspace mode).
const (
	goalAddP99       = 50 * time.Millisecond
	goalRSSMB        = 150
	goalOfDirect     = 0.95
	goalConnectFlat  = 1.05
	goalBulkOfDirect = 0.80 // userspace, with splice
)

// goalOfDirectFor is the share of direct requests/s a mode must keep.
func goalOfDirectFor(mode string, keepAlive bool) float64 {
	switch {
	case mode != "userspace":
		return goalOfDirect
	case keepAlive:
		return 0.70
	}
	return 0.50
}

func goalFullSync(mode string) time.Duration {
	if mode == "iptables" {
		return 10 * time.Second
	}
	return 2 * time.Second
}

func sortedCopy(d []time.Duration) []time.Duration {
	out := slices.Clone(d)
	slices.Sort(out)
	return out
}

// rows lays out the table: per mode, portal's figure, kube-proxy's, their
// ratio, the direct baseline where there is one, and the goal's verdict
// on portal's figure.
func (b *bench) rows() [][]string {
	var out [][]string
	for _, mode := range b.o.modes {
		var ours, peer *figures
		for _, px := range b.proxies {
			if px.mode != mode {
				continue
			}
			if px.name == "portal" {
				ours = b.figs[px]
			} else {
				peer = b.figs[px]
			}
		}
		if ours == nil {
			continue
		}
		out = append(out, modeRows(mode, b.o, ours, peer)...)
	}
	return out
}

// modeRows is pure: figures in, table cells out. peer is nil when
// kube-proxy was not built.
func modeRows(mode string, o options, ours, peer *figures) [][]string {
	var out [][]string
	add := func(metric, portal, kp, ratio, direct, goal string) {
		out = append(out, []string{"[" + mode + "] " + metric, portal, kp, ratio, direct, goal})
	}
	kp := func(cell func(*figures) string) string {
		if peer == nil {
			return "not built"
		}
		return cell(peer)
	}
	ratio := func(a, b float64) string {
		if peer == nil || a <= 0 || b <= 0 {
			return ""
		}
		return fmt.Sprintf("%.2f×", a/b)
	}
	progFailed := func(f *figures) bool { return f == nil || f.firstSync == 0 }
	progCell := func(f *figures, cell func(*figures) string) string {
		if f.programErr != nil && f.firstSync == 0 {
			return failed(f.programErr)
		}
		return cell(f)
	}
	size := fmt.Sprintf("%d svc × %d ep", o.services, o.endpoints)

	// Programming.
	first := func(f *figures) string { return report.Secs(f.firstSync) }
	g := goalFullSync(mode)
	add("first full sync (exec → sync metric set), "+size,
		progCell(ours, first), kp(func(f *figures) string { return progCell(f, first) }),
		ratioIf(!progFailed(ours) && !progFailed(peer), ratio, ours.firstSync.Seconds(), peerVal(peer, func(f *figures) float64 { return f.firstSync.Seconds() })),
		"", goalCell(fmt.Sprintf("< %s", report.Secs(g)), !progFailed(ours), ours.firstSync < g))
	full := func(f *figures) string {
		if f.fullSync == 0 {
			return "no metric"
		}
		return ms(f.fullSync)
	}
	add("full sync duration (proxy's own histogram), "+size,
		progCell(ours, full), kp(func(f *figures) string { return progCell(f, full) }),
		ratioIf(ours.fullSync > 0 && peer != nil && peer.fullSync > 0, ratio, ours.fullSync.Seconds(), peerVal(peer, func(f *figures) float64 { return f.fullSync.Seconds() })),
		"", goalCell(fmt.Sprintf("< %s", report.Secs(g)), ours.fullSync > 0, ours.fullSync < g))
	rss := func(f *figures) string { return report.MB(f.rss) }
	add("RSS after the full sync, "+size,
		progCell(ours, rss), kp(func(f *figures) string { return progCell(f, rss) }),
		ratioIf(ours.rss > 0 && peer != nil && peer.rss > 0, ratio, ours.rss, peerVal(peer, func(f *figures) float64 { return f.rss })),
		"", goalCell(fmt.Sprintf("< %d MB", goalRSSMB), ours.rss > 0, ours.rss < goalRSSMB))
	rssAdds := func(f *figures) string {
		if f.anonAdds == 0 && f.fileAdds == 0 {
			return report.MB(f.rssAdds)
		}
		return fmt.Sprintf("%s (anonymous %s, file %s)", report.MB(f.rssAdds), report.MB(f.anonAdds), report.MB(f.fileAdds))
	}
	add(fmt.Sprintf("RSS after the %d adds, %s", o.adds, size),
		progCell(ours, rssAdds), kp(func(f *figures) string { return progCell(f, rssAdds) }),
		ratioIf(ours.rssAdds > 0 && peer != nil && peer.rssAdds > 0, ratio, ours.rssAdds, peerVal(peer, func(f *figures) float64 { return f.rssAdds })),
		"", goalCell(fmt.Sprintf("< %d MB", goalRSSMB), ours.rssAdds > 0, ours.rssAdds < goalRSSMB))
	addCell := func(f *figures) string {
		if f.programErr != nil {
			return failed(f.programErr)
		}
		return p50p99(f.adds)
	}
	p99 := func(f *figures) float64 { return report.Percentile(f.adds, 0.99).Seconds() }
	floor := ""
	if len(ours.ruleFloor) > 0 {
		floor = "one rule by `iptables -A` into the same nat table: " + p50p99(ours.ruleFloor)
	}
	add(fmt.Sprintf("one more service: API create → first packet through, p50 / p99 (%d adds at %d svc)", o.adds, o.services),
		addCell(ours), kp(addCell),
		ratioIf(len(ours.adds) > 0 && peer != nil && len(peer.adds) > 0, ratio, p99(ours), peerVal(peer, p99)),
		floor, goalCell("p99 < "+ms(goalAddP99), ours.programErr == nil && len(ours.adds) > 0, report.Percentile(ours.adds, 0.99) < goalAddP99))

	// Traffic through the ClusterIP.
	for _, t := range []struct {
		name      string
		keepAlive bool
		get       func(*figures) (via, direct httpResult)
	}{
		{"keep-alive", true, func(f *figures) (httpResult, httpResult) { return f.ka, f.kaDirect }},
		{"new connection per request", false, func(f *figures) (httpResult, httpResult) { return f.nc, f.ncDirect }},
	} {
		goalShare := goalOfDirectFor(mode, t.keepAlive)
		rate := func(f *figures) string {
			if f.trafficErr != nil {
				return failed(f.trafficErr)
			}
			via, direct := t.get(f)
			return fmt.Sprintf("%.0f req/s (%.0f%% of direct)", via.rate(), 100*share(via, direct))
		}
		lat := func(f *figures) string {
			if f.trafficErr != nil {
				return failed(f.trafficErr)
			}
			via, _ := t.get(f)
			return p50p99(via.latencies)
		}
		ov, od := t.get(ours)
		ok := ours.trafficErr == nil && od.requests > 0
		var pv, pd httpResult
		if peer != nil {
			pv, pd = t.get(peer)
		}
		add(fmt.Sprintf("requests/s through a ClusterIP, %s (%d clients, %s)", t.name, o.conc, o.duration),
			rate(ours), kp(rate), ratioIf(ok && peer != nil && peer.trafficErr == nil, ratio, ov.rate(), pv.rate()),
			directRate(ours, od, peer, pd), goalCell(fmt.Sprintf("≥ %.0f%% of direct", 100*goalShare), ok, share(ov, od) >= goalShare))
		add(fmt.Sprintf("request latency through a ClusterIP, %s, p50 / p99", t.name),
			lat(ours), kp(lat), "", directLatency(ours, od), "")
		// The proxy's own CPU time per request (user and system time of
		// its process; packets the kernel forwards in softirq are
		// charged to whichever process they interrupt, so the kernel
		// modes show little here).
		cpu := func(f *figures) string {
			via, _ := t.get(f)
			if f.trafficErr != nil || via.cpuPerRequest() <= 0 {
				return "not measured"
			}
			return fmt.Sprintf("%.1f µs", float64(via.cpuPerRequest())/float64(time.Microsecond))
		}
		add(fmt.Sprintf("proxy process CPU per request through a ClusterIP, %s", t.name),
			cpu(ours), kp(cpu), "", "", "")
	}

	// One bulk download.
	mbps := func(d time.Duration) float64 { return float64(o.bulkMB) * (1 << 20) / 1e6 / d.Seconds() }
	bulk := func(f *figures) string {
		switch {
		case f.trafficErr != nil:
			return failed(f.trafficErr)
		case f.bulk <= 0 || f.bulkDirect <= 0:
			return "not measured"
		}
		return fmt.Sprintf("%.0f MB/s (%.0f%% of direct)", mbps(f.bulk), 100*float64(f.bulkDirect)/float64(f.bulk))
	}
	bulkOK := ours.trafficErr == nil && ours.bulk > 0 && ours.bulkDirect > 0
	bulkDirect, bulkGoal := "", ""
	if bulkOK {
		bulkDirect = fmt.Sprintf("%.0f MB/s", mbps(ours.bulkDirect))
	}
	if mode == "userspace" {
		bulkGoal = goalCell(fmt.Sprintf("≥ %.0f%% of direct", 100*goalBulkOfDirect), bulkOK, float64(ours.bulkDirect) >= goalBulkOfDirect*float64(ours.bulk))
	}
	pb := func(f *figures) float64 {
		if f.bulk <= 0 {
			return 0
		}
		return mbps(f.bulk)
	}
	add(fmt.Sprintf("bulk TCP download through a ClusterIP, one connection (%d MiB)", o.bulkMB),
		bulk(ours), kp(bulk), ratioIf(bulkOK && peer != nil && peer.bulk > 0, ratio, pb(ours), peerVal(peer, pb)), bulkDirect, bulkGoal)

	// Connect latency as services grow.
	var base time.Duration
	if l := ours.connect[0]; len(l) > 0 {
		base = report.Percentile(l, 0.99)
	}
	for _, level := range o.levels {
		cell := func(f *figures) string {
			if err := f.connectErr[level]; err != nil {
				return failed(err)
			}
			return p50p99(f.connect[level])
		}
		direct := ""
		if d := ours.connectDirect[level]; len(d) > 0 {
			direct = p50p99(d)
		}
		goal := ""
		if level > 0 {
			p := report.Percentile(ours.connect[level], 0.99)
			ok := base > 0 && len(ours.connect[level]) > 0
			goal = goalCell(fmt.Sprintf("p99 ≤ %.0f%% of at 0", 100*goalConnectFlat), ok, float64(p) <= goalConnectFlat*float64(base))
			if ok {
				goal += fmt.Sprintf(" (%.0f%%)", 100*float64(p)/float64(base))
			}
		}
		pv := func(f *figures) float64 { return report.Percentile(f.connect[level], 0.99).Seconds() }
		add(fmt.Sprintf("connect through a ClusterIP at %d services, p50 / p99 (%d connects)", level, o.connects),
			cell(ours), kp(cell), ratioIf(len(ours.connect[level]) > 0 && peer != nil && len(peer.connect[level]) > 0, ratio, pv(ours), peerVal(peer, pv)),
			direct, goal)
	}
	return out
}

func peerVal(peer *figures, v func(*figures) float64) float64 {
	if peer == nil {
		return 0
	}
	return v(peer)
}

func ratioIf(ok bool, ratio func(a, b float64) string, a, b float64) string {
	if !ok {
		return ""
	}
	return ratio(a, b)
}

// share is via's rate as a fraction of direct's.
func share(via, direct httpResult) float64 {
	if direct.rate() == 0 {
		return 0
	}
	return via.rate() / direct.rate()
}

func directRate(ours *figures, od httpResult, peer *figures, pd httpResult) string {
	if od.requests == 0 {
		if peer != nil && pd.requests > 0 {
			return fmt.Sprintf("%.0f req/s (kube-proxy's run)", pd.rate())
		}
		return ""
	}
	s := fmt.Sprintf("%.0f req/s", od.rate())
	if peer != nil && pd.requests > 0 {
		s += fmt.Sprintf(" (%.0f in kube-proxy's run)", pd.rate())
	}
	return s
}

func directLatency(ours *figures, od httpResult) string {
	if ours.trafficErr != nil || len(od.latencies) == 0 {
		return ""
	}
	return p50p99(od.latencies)
}

// goalCell says met or MISSED after the goal, or nothing to judge.
func goalCell(goal string, measured, ok bool) string {
	if !measured {
		return goal
	}
	return goal + ": " + report.Verdict(ok)
}

func failed(err error) string {
	s := err.Error()
	if i := indexNewline(s); i >= 0 {
		s = s[:i]
	}
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return "failed: " + s
}

func indexNewline(s string) int {
	for i := range len(s) {
		if s[i] == '\n' {
			return i
		}
	}
	return -1
}

// ms formats a duration in milliseconds, with two decimals below 10 ms:
// connects and requests on one machine take tens of microseconds.
func ms(d time.Duration) string {
	v := float64(d.Microseconds()) / 1000
	if v < 10 {
		return fmt.Sprintf("%.2f ms", v)
	}
	return fmt.Sprintf("%.0f ms", v)
}

func p50p99(sorted []time.Duration) string {
	return ms(report.Percentile(sorted, 0.50)) + " / " + ms(report.Percentile(sorted, 0.99))
}
