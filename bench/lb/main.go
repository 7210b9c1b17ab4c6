package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/portal-net/portal/bench/internal/report"
)

type options struct {
	portal, memberlist string
	rounds             int
	interval, timeout  time.Duration
	limit              time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.portal, "portal", "bin/portal", "portal binary")
	flag.StringVar(&o.memberlist, "memberlist", "", "memberlist-node binary (make bench-lb builds bin/memberlist-node); without it the baseline says not run")
	flag.IntVar(&o.rounds, "rounds", 5, "failovers of portal, and memberlist detections")
	flag.DurationVar(&o.interval, "interval", 20*time.Millisecond, "pause between the client's requests")
	flag.DurationVar(&o.timeout, "timeout", 300*time.Millisecond, "time-out of one request (connect and answer)")
	flag.DurationVar(&o.limit, "limit", 10*time.Minute, "time limit of the whole run")
	flag.Parse()
	if o.rounds < 1 || o.interval <= 0 || o.timeout <= 0 || o.limit <= 0 {
		fmt.Fprintln(os.Stderr, "bench: -rounds, -interval, -timeout and -limit must be positive")
		os.Exit(2)
	}
	report.Main(func(ctx context.Context) ([]report.Row, error) {
		ctx, cancel := context.WithTimeout(ctx, o.limit)
		defer cancel()
		return runBench(ctx, o)
	})
}

// figures collects what the rounds measured.
type figures struct {
	rounds   []roundResult
	baseline []time.Duration
	mlErr    error
}

func runBench(ctx context.Context, o options) ([]report.Row, error) {
	if os.Getenv("PORTAL_NETNS_ISOLATED") == "" {
		return nil, errors.New("run through hack/bench.sh lb: the lab needs the benchmark's own network namespace")
	}
	portal, err := filepath.Abs(o.portal)
	if err == nil {
		_, err = os.Stat(portal)
	}
	if err != nil {
		return nil, fmt.Errorf("portal binary: %w (run make build)", err)
	}
	ml := ""
	if o.memberlist != "" {
		if ml, err = filepath.Abs(o.memberlist); err == nil {
			_, err = os.Stat(ml)
		}
		if err != nil {
			return nil, fmt.Errorf("memberlist-node binary: %w (make bench-lb builds it)", err)
		}
	}
	dir, err := os.MkdirTemp("", "portal-bench-lb-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	l, err := newLab(filepath.Join(dir, "ns"))
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	defer l.close()

	f := &figures{}
	c, err := startCluster(ctx, portal, dir, l)
	if err == nil {
		for k := 1; k <= o.rounds; k++ {
			r, rerr := failoverRound(ctx, c, l, o)
			if rerr != nil {
				err = fmt.Errorf("portal round %d: %w", k, rerr)
				break
			}
			f.rounds = append(f.rounds, r)
			take := "not in the log"
			if r.takeoverSeen {
				take = r.takeover.Round(time.Millisecond).String()
			}
			fmt.Fprintf(os.Stderr, "portal round %d/%d: flowing again after %s (%d of %d requests failed), takeover logged after %s; failback: %d of %d failed\n",
				k, o.rounds, r.outage.Round(time.Millisecond), r.failed, r.sent, take, r.failbackFailed, r.failbackSent)
		}
	}
	fmt.Fprintln(os.Stderr, "stopping the agents and the server")
	c.stop()
	if err != nil {
		if ml != "" {
			f.mlErr = errors.New("not run (the portal rounds failed)")
		}
		return rows(f, o), err
	}
	if ml != "" {
		f.baseline, f.mlErr = runBaseline(ctx, ml, l, o.rounds)
		if ctx.Err() != nil {
			return rows(f, o), f.mlErr
		}
	}
	return rows(f, o), nil
}
