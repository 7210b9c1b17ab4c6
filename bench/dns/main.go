package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/portal-net/portal/bench/internal/report"
)

type options struct {
	portal, coredns string
	logs, profiles  string
	services        int
	headless        int
	concurrency     int
	duration        time.Duration
	warmup          time.Duration
	timeout         time.Duration
	maxQueries      int
	workers         int
	limit           time.Duration
	startLimit      time.Duration
	dnsperf         string
	perfOutstanding int
}

// parseOptions reads the command line; it is pure so that tests can pin
// defaults and validation.
func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench-dns", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.portal, "portal", "bin/portal", "portal binary")
	fs.StringVar(&o.coredns, "coredns", "", "upstream CoreDNS binary (built from bench/tools/coredns); without it its column says not built")
	fs.StringVar(&o.dnsperf, "dnsperf", "", "Debian's dnsperf binary: each workload is also run through it (open loop, -perf-outstanding queries in flight); without it those rows say not run")
	fs.IntVar(&o.perfOutstanding, "perf-outstanding", 100, "dnsperf's -q: queries in flight")
	fs.StringVar(&o.logs, "logs", "", "directory to keep each DNS server's log in (default: not kept)")
	fs.StringVar(&o.profiles, "profiles", "", "directory to write portal's heap profile to, taken when the RSS is read after the loads (default: not taken)")
	fs.IntVar(&o.services, "services", 1000, "ClusterIP services (each with a named port and a 3-endpoint EndpointSlice)")
	fs.IntVar(&o.headless, "headless", 100, "headless services (each with a 3-endpoint EndpointSlice)")
	fs.IntVar(&o.concurrency, "concurrency", 16, "concurrent UDP clients of each load, one socket each, one query in flight each")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "length of each measured load")
	fs.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "unmeasured load before each measured one (fills caches)")
	fs.DurationVar(&o.timeout, "timeout", time.Second, "time a client waits for one answer before it counts a time-out and asks again")
	fs.IntVar(&o.maxQueries, "max-queries", 3_000_000, "cap on queries of one measured load, whatever -duration says")
	fs.IntVar(&o.workers, "workers", 32, "concurrent API clients writing services")
	fs.DurationVar(&o.limit, "limit", 2*time.Minute, "time limit of writing the services and of each wait")
	fs.DurationVar(&o.startLimit, "start-limit", time.Minute, "time limit for a server to become ready (API) or answer correctly (DNS)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case o.services < 1 || o.headless < 1:
		return o, errors.New("-services and -headless must be positive")
	case o.services+o.headless > 60000:
		return o, errors.New("-services too large for the 10.0.0.0/16 service CIDR")
	case o.concurrency < 1 || o.workers < 1 || o.maxQueries < 1 || o.perfOutstanding < 1:
		return o, errors.New("-concurrency, -workers, -max-queries and -perf-outstanding must be positive")
	case o.duration <= 0 || o.timeout <= 0 || o.limit <= 0 || o.startLimit <= 0 || o.warmup < 0:
		return o, errors.New("-duration, -timeout, -limit and -start-limit must be positive, -warmup not negative")
	}
	return o, nil
}

func main() {
	o, err := parseOptions(os.Args[1:], os.Stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	rows, err := run(ctx, o)
	stop()
	if len(rows) > 0 {
		fmt.Println()
		report.Markdown(os.Stdout, tableHeader, rows)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

var tableHeader = []string{"metric", "portal", "CoreDNS (same run)", "portal ÷ CoreDNS", "goal"}

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
