package main

import (
	"bufio"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portal-net/portal/bench/internal/report"
)

// sample is one request of the client: when it ended and whether it got
// an answer.
type sample struct {
	at time.Time
	ok bool
}

// failover sums up the requests that ended at or after t0 (the cut): how
// many were sent and failed, and when traffic flowed again — the first
// success after the last failure, as a duration since t0. resumed is false
// when no success followed the last failure. With no failure at all the
// outage is 0.
func failover(log []sample, t0 time.Time) (outage time.Duration, failed, sent int, resumed bool) {
	var back time.Time
	sawFail := false
	for _, s := range log {
		if s.at.Before(t0) {
			continue
		}
		sent++
		if !s.ok {
			failed++
			sawFail = true
			back = time.Time{}
		} else if back.IsZero() {
			back = s.at
		}
	}
	if !sawFail {
		return 0, failed, sent, sent > failed
	}
	if back.IsZero() {
		return 0, failed, sent, false
	}
	return back.Sub(t0), failed, sent, true
}

// steady reports whether the log, since t0, ends in at least quiet of
// uninterrupted successes (measured from the first of them to now).
func steady(log []sample, t0, now time.Time, quiet time.Duration) bool {
	var first time.Time
	for i := len(log) - 1; i >= 0 && !log[i].at.Before(t0); i-- {
		if !log[i].ok {
			break
		}
		first = log[i].at
	}
	return !first.IsZero() && now.Sub(first) >= quiet
}

// klogTime parses the header of a klog line ("I1201 23:07:44.123456 ...")
// as a time on ref's date in ref's location (klog writes the local time of
// day without a year); a result more than 12 h after ref is taken as the
// day before (a run across midnight).
func klogTime(line string, ref time.Time) (time.Time, bool) {
	if len(line) < 21 || !strings.ContainsRune("IWEF", rune(line[0])) {
		return time.Time{}, false
	}
	t, err := time.ParseInLocation("0102 15:04:05.000000", line[1:21], ref.Location())
	if err != nil {
		return time.Time{}, false
	}
	t = time.Date(ref.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), ref.Location())
	if t.Sub(ref) > 12*time.Hour {
		t = t.AddDate(-1, 0, 0)
	} else if ref.Sub(t) > 180*24*time.Hour {
		t = t.AddDate(1, 0, 0)
	}
	return t, true
}

// firstAnnounce is the time of the first "Announcing a load-balancer
// address" info line for addr in an agent's log at or after t0 (the error
// line of a failed attempt carries the same message and does not count).
func firstAnnounce(log, addr string, t0 time.Time) (time.Time, bool) {
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "I") || !strings.Contains(l, `"Announcing a load-balancer address"`) || !strings.Contains(l, `address="`+addr+`"`) {
			continue
		}
		if t, ok := klogTime(l, t0); ok && !t.Before(t0) {
			return t, true
		}
	}
	return time.Time{}, false
}

// memberEvent finds the first "KIND NAME UNIXNANO" line of a
// memberlist-node's output.
func memberEvent(out, kind, name string) (time.Time, bool) {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != kind || f[1] != name {
			continue
		}
		if ns, err := strconv.ParseInt(f[2], 10, 64); err == nil {
			return time.Unix(0, ns), true
		}
	}
	return time.Time{}, false
}

// durs formats "p50 / max" of samples, in seconds.
func durs(d []time.Duration) string {
	if len(d) == 0 {
		return ""
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return report.Secs(report.Percentile(s, 0.5)) + " / " + report.Secs(s[len(s)-1])
}

// counts formats "p50 / max" of counts.
func counts(n []int) string {
	if len(n) == 0 {
		return ""
	}
	s := slices.Clone(n)
	slices.Sort(s)
	return fmt.Sprintf("%d / %d", s[(len(s)-1)/2], s[len(s)-1])
}
