package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/portal-net/portal/internal/testutil/portalproc"
)

// perfResult is what dnsperf reports of one run.
type perfResult struct {
	sent, completed, lost int
	qps                   float64
	avgLatency            time.Duration
	rcodes                map[string]int // "NOERROR" → count
}

// runDNSPerf runs Debian's dnsperf against addr for dur with the questions
// of qs (each "name TYPE" line once, dnsperf cycles through them), clients
// sockets and at most outstanding queries in flight, in one thread.
func runDNSPerf(ctx context.Context, bin, dir, addr string, qs []question, clients, outstanding int, dur, timeout time.Duration) (perfResult, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return perfResult{}, err
	}
	f, err := os.CreateTemp(dir, "dnsperf-*.txt")
	if err != nil {
		return perfResult{}, err
	}
	defer os.Remove(f.Name())
	w := bufio.NewWriter(f)
	for _, q := range qs {
		fmt.Fprintf(w, "%s %s\n", q.name, dns.TypeToString[q.qtype])
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return perfResult{}, err
	}
	f.Close()
	secs := max(1, int(dur.Seconds()))
	ctx, cancel := context.WithTimeout(ctx, dur+timeout+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-s", host, "-p", port, "-d", filepath.Clean(f.Name()),
		"-l", strconv.Itoa(secs), "-c", strconv.Itoa(clients), "-T", "1", "-q", strconv.Itoa(outstanding),
		"-t", strconv.Itoa(max(1, int(timeout.Seconds()))))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return perfResult{}, fmt.Errorf("dnsperf: %w\n%s", err, portalproc.LastLines(string(out), 5))
	}
	return parseDNSPerf(string(out))
}

// parseDNSPerf reads dnsperf 2.x's statistics block.
func parseDNSPerf(out string) (perfResult, error) {
	r := perfResult{rcodes: map[string]int{}}
	seen := 0
	for _, line := range strings.Split(out, "\n") {
		key, val, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(val)
		first := func() string {
			if len(fields) == 0 {
				return ""
			}
			return fields[0]
		}
		var err error
		switch key {
		case "Queries sent":
			r.sent, err = strconv.Atoi(first())
			seen++
		case "Queries completed":
			r.completed, err = strconv.Atoi(first())
			seen++
		case "Queries lost":
			r.lost, err = strconv.Atoi(first())
		case "Queries per second":
			r.qps, err = strconv.ParseFloat(first(), 64)
			seen++
		case "Average Latency (s)":
			var s float64
			s, err = strconv.ParseFloat(first(), 64)
			r.avgLatency = time.Duration(s * float64(time.Second))
		case "Response codes":
			// "NOERROR 1234 (100.00%), NXDOMAIN 5 (0.01%)"
			for _, part := range strings.Split(val, ",") {
				f := strings.Fields(part)
				if len(f) >= 2 {
					n, perr := strconv.Atoi(f[1])
					if perr != nil {
						return r, fmt.Errorf("dnsperf response codes %q: %w", val, perr)
					}
					r.rcodes[f[0]] = n
				}
			}
		}
		if err != nil {
			return r, fmt.Errorf("dnsperf line %q: %w", line, err)
		}
	}
	if seen < 3 {
		return r, fmt.Errorf("no statistics in dnsperf's output:\n%s", portalproc.LastLines(out, 5))
	}
	return r, nil
}

// check is an error unless every completed query got the rcode the
// workload must get (dnsperf sees rcodes, not records: the Go load checks
// those).
func (r perfResult) check(want int) error {
	name := dns.RcodeToString[want]
	if r.completed == 0 {
		return fmt.Errorf("dnsperf: no query answered (%d sent, %d lost)", r.sent, r.lost)
	}
	if r.rcodes[name] != r.completed {
		return fmt.Errorf("dnsperf: %v answers for %d completed queries, want all %s", r.rcodes, r.completed, name)
	}
	return nil
}
