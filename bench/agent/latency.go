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

// latency measures, from each create call's return to the watch event
// showing the pod Running and Ready, two ways:
//
//   - one at a time: -pods pods created one after the other onto the node,
//     each once the one before is Ready, so the node fills up to -pods
//     pods. This is a pod's own start latency, and the one the goal is
//     judged on. The pods are deleted afterwards.
//   - -workers in flight: the same number of pods in a burst. On a small
//     machine this measures queueing behind the other starts as much as a
//     start (the bare baseline beside it slows down just as much), so it
//     is shown without a verdict. These pods stay for the memory step.
func (b *bench) latency(ctx context.Context) error {
	var err error
	if b.agentRSSBefore, err = b.agent.RSSMB(); err != nil {
		return err
	}
	if err := b.latencyPass(ctx, 1); err != nil {
		return err
	}
	if b.o.workers == 1 {
		return nil // a burst of one is the pass above
	}
	fmt.Fprintln(b.out.Live, "deleting the one-at-a-time pods")
	if err := b.deletePods(ctx); err != nil {
		return err
	}
	return b.latencyPass(ctx, b.o.workers)
}

// latencyPass creates -pods pods with workers in flight and adds a Running
// and a Ready row, each beside starting as many bare netexec processes
// with the same concurrency. Only the one-at-a-time rows carry the goal's
// verdict. The pods stay.
func (b *bench) latencyPass(ctx context.Context, workers int) error {
	var mu sync.Mutex
	var toRunning, toReady []time.Duration
	res, err := load.Throughput(ctx, b.o.pods, workers, b.o.limit, func(ctx context.Context, i int) error {
		name := latencyPod(i)
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
	if _, err := load.Throughput(ctx, b.o.pods, workers, b.o.limit, func(ctx context.Context, i int) error {
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
	how, baseHow := fmt.Sprintf("%d in flight", workers), fmt.Sprintf("%d in flight", workers)
	if workers == 1 {
		how, baseHow = "one at a time, the node filling up", "one at a time"
	}
	base := fmt.Sprintf("exec of `portal-shim agnhost netexec` until /healthz answers, %s: %s", baseHow, report.P50P99(floor))
	metric := func(what string) string {
		s := fmt.Sprintf("pod create → %s p50 / p99 (%d pods, %s)", what, b.o.pods, how)
		if res.Done < b.o.pods {
			s += fmt.Sprintf(" (time limit: %d of %d)", res.Done, b.o.pods)
		}
		return s
	}
	verdict := func(sorted []time.Duration) string {
		if workers != 1 {
			return "- (load; see bench/README.md)"
		}
		return latencyGoal(sorted)
	}
	b.out.Add(metric("Running"), report.P50P99(toRunning), base, verdict(toRunning))
	b.out.Add(metric("Ready"), report.P50P99(toReady), base, verdict(toReady))
	return nil
}

// latencyPod names the i-th pod of a latency pass.
func latencyPod(i int) string { return fmt.Sprintf("lat-%d", i) }

func latencyGoal(sorted []time.Duration) string {
	ok := report.Percentile(sorted, 0.5) < latencyGoalP50 && report.Percentile(sorted, 0.99) < latencyGoalP99
	return "p50 < 200 ms, p99 < 1 s: " + report.Verdict(ok)
}
