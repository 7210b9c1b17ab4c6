package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/portal-net/portal/bench/internal/report"
)

type options struct {
	portal     string
	kubeProxy  string
	kpFlags    []string
	ptFlags    []string
	logs       string
	profiles   string
	modes      []string
	services   int
	endpoints  int
	nodes      int
	adds       int
	addGap     time.Duration
	levels     []int
	duration   time.Duration
	conc       int
	bulkMB     int
	connects   int
	workers    int
	minSync    time.Duration
	limit      time.Duration
	startLimit time.Duration
}

func main() {
	var o options
	var modes, levels, kpFlags, ptFlags string
	flag.StringVar(&o.portal, "portal", "bin/portal", "portal binary")
	flag.StringVar(&o.kubeProxy, "kube-proxy", "", "upstream kube-proxy binary (make bench-compare builds bin/kube-proxy); without it its column says not built")
	flag.StringVar(&kpFlags, "kube-proxy-flags", "", "extra kube-proxy flags, space-separated (e.g. --v=2)")
	flag.StringVar(&ptFlags, "portal-flags", "", "extra flags of portal's proxy, space-separated (e.g. --v=4)")
	flag.StringVar(&o.logs, "logs", "", "directory to keep each proxy run's log in (default: not kept)")
	flag.StringVar(&o.profiles, "profiles", "", "directory to write portal's heap profile (after the full sync) and CPU profile (during the adds) to (default: not taken)")
	flag.StringVar(&modes, "modes", "nftables", "proxy modes to measure, comma-separated: nftables,iptables,userspace (kube-proxy has no userspace mode any more)")
	flag.IntVar(&o.bulkMB, "bulk-mb", 256, "MiB of one bulk download, through the ClusterIP and direct")
	flag.IntVar(&o.services, "services", 1000, "services programmed when one more is added and the full sync is timed")
	flag.IntVar(&o.endpoints, "endpoints", 10, "endpoints per service")
	flag.IntVar(&o.nodes, "nodes", 1, "nodes the bulk services' endpoints are spread over (EndpointSlice nodeName); one in -nodes is the proxy's own")
	flag.IntVar(&o.adds, "adds", 50, "services added one at a time, each timed until a packet gets through")
	flag.DurationVar(&o.addGap, "add-gap", 2*time.Second, "pause after each added service is live: each add then meets a settled proxy whose sync rate limiter has its burst back (kube-proxy's --min-sync-period is 1 s with a burst of 2), so the figure is one service's programming latency, not the rate limit of back-to-back changes")
	flag.StringVar(&levels, "connect-levels", "0,1000,3000", "service counts at which connect latency through a ClusterIP is measured")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each requests/s run")
	flag.IntVar(&o.conc, "concurrency", 8, "concurrent HTTP clients of the requests/s runs")
	flag.IntVar(&o.connects, "connects", 2000, "sequential connects per connect-latency run")
	flag.IntVar(&o.workers, "workers", 32, "concurrent API clients writing services")
	flag.DurationVar(&o.minSync, "min-sync-period", 0, "--min-sync-period for both proxies (0: each proxy's default)")
	flag.DurationVar(&o.limit, "limit", 5*time.Minute, "time limit of each load, sync or wait")
	flag.DurationVar(&o.startLimit, "start-limit", time.Minute, "time limit for the server to become ready")
	flag.Parse()
	o.kpFlags = strings.Fields(kpFlags)
	o.ptFlags = strings.Fields(ptFlags)
	var err error
	if o.modes, err = parseModes(modes); err == nil {
		o.levels, err = parseLevels(levels)
	}
	if err == nil && (o.services < 1 || o.endpoints < 1 || o.adds < 1 || o.nodes < 1 || o.conc < 1 || o.bulkMB < 1 || o.connects < 1 || o.workers < 1 || o.duration <= 0) {
		err = errors.New("-services, -endpoints, -nodes, -adds, -concurrency, -connects, -workers and -duration must be positive")
	}
	if err == nil && o.services+o.adds+1 > 60000 {
		err = errors.New("-services too large for the 10.0.0.0/16 service CIDR")
	}
	if err == nil && len(o.levels) > 0 && o.levels[len(o.levels)-1]+1 > 60000 {
		err = errors.New("-connect-levels too large for the 10.0.0.0/16 service CIDR")
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	rows, err := run(ctx, o)
	stop()
	if len(rows) > 0 {
		fmt.Println()
		report.Markdown(os.Stdout, header, rows)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

var header = []string{"metric", "portal", "kube-proxy (same run)", "portal ÷ kube-proxy", "direct (same run)", "goal"}

func parseModes(s string) ([]string, error) {
	var out []string
	for _, m := range strings.Split(s, ",") {
		m = strings.TrimSpace(m)
		if m != "nftables" && m != "iptables" && m != "userspace" {
			return nil, fmt.Errorf("-modes: %q is not nftables, iptables or userspace", m)
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, nil
}

func parseLevels(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("-connect-levels: %q is not a service count", f)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// steps are the service counts the run visits in rising order (services
// are only ever added) and what is measured at each.
type step struct {
	services         int
	traffic, program bool
	connect          bool
}

func plan(services int, levels []int) []step {
	counts := append([]int{0, services}, levels...)
	slices.Sort(counts)
	counts = slices.Compact(counts)
	out := make([]step, 0, len(counts))
	for _, n := range counts {
		out = append(out, step{services: n, traffic: n == 0, program: n == services, connect: slices.Contains(levels, n)})
	}
	return out
}

func binPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(abs); err != nil {
		return "", err
	}
	return abs, nil
}
