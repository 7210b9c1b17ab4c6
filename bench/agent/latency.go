package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/portal-net/portal/bench/internal/load"
	"github.com/portal-net/portal/bench/internal/report"
)

const (
	latencyGoalP50 = 200 * time.Millisecond
	latencyGoalP99 = time.Second
)

// latency creates -pods pods, -workers in flight, and measures from each
// create call's return to the watch event showing it Running and Ready.
// The pods stay for the memory step.
func (b *bench) latency(ctx context.Context) error {
	var err error
	if b.agentRSSBefore, err = b.agent.RSSMB(); err != nil {
		return err
	}
	var mu sync.Mutex
	var toRunning, toReady []time.Duration
	res, err := load.Throughput(ctx, b.o.pods, b.o.workers, b.o.limit, func(ctx context.Context, i int) error {
		name := fmt.Sprintf("lat-%d", i)
		created, err := b.createPod(ctx, name)
		if err != nil {
			return err
		}
		run, err := b.tracker.wait(ctx, name, running, b.o.limit)
		if err != nil {
			return err
		}
		rdy, err := b.tracker.wait(ctx, name, ready, b.o.limit)
		if err != nil {
			return err
		}
		mu.Lock()
		toRunning = append(toRunning, run.Sub(created))
		toReady = append(toReady, rdy.Sub(created))
		mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	var floor []time.Duration
	if _, err := load.Throughput(ctx, b.o.pods, b.o.workers, b.o.limit, func(ctx context.Context, i int) error {
		p, d, err := startBare(ctx, b.shim, b.o.limit)
		if err != nil {
			return err
		}
		p.Stop()
		mu.Lock()
		floor = append(floor, d)
		mu.Unlock()
		return nil
	}); err != nil {
		return err
	}
	slices.Sort(toRunning)
	slices.Sort(toReady)
	slices.Sort(floor)
	base := "exec of `portal-shim agnhost netexec` until /healthz answers: " + report.P50P99(floor)
	metric := func(what string) string {
		s := fmt.Sprintf("pod create → %s p50 / p99 (%d pods, %d in flight)", what, b.o.pods, b.o.workers)
		if res.Done < b.o.pods {
			s += fmt.Sprintf(" (time limit: %d of %d)", res.Done, b.o.pods)
		}
		return s
	}
	b.out.Add(metric("Running"), report.P50P99(toRunning), base, latencyGoal(toRunning))
	b.out.Add(metric("Ready"), report.P50P99(toReady), base, latencyGoal(toReady))
	return nil
}

func latencyGoal(sorted []time.Duration) string {
	ok := report.Percentile(sorted, 0.5) < latencyGoalP50 && report.Percentile(sorted, 0.99) < latencyGoalP99
	return "p50 < 200 ms, p99 < 1 s: " + report.Verdict(ok)
}
