package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/portal-net/portal/bench/internal/load"
	"github.com/portal-net/portal/bench/internal/report"
)

// createDelete creates -pods pods at once (-workers clients) until all are
// Running, then deletes them all until all are gone from the API; beside
// starting and stopping as many bare processes.
func (b *bench) createDelete(ctx context.Context) error {
	n, w := b.o.pods, b.o.workers
	name := func(i int) string { return fmt.Sprintf("cd-%d", i) }
	created, err := b.allReach(ctx, n, name, running, func(ctx context.Context, i int) error {
		_, err := b.createPod(ctx, name(i))
		return err
	})
	if err != nil {
		return err
	}
	deleted, err := b.allReach(ctx, n, name, gone, func(ctx context.Context, i int) error {
		return b.deletePod(ctx, name(i))
	})
	if err != nil {
		return err
	}
	for i := range n {
		b.tracker.forget(name(i))
	}

	procs := make([]*bare, n)
	t0 := time.Now()
	if _, err := load.Throughput(ctx, n, w, b.o.limit, func(ctx context.Context, i int) error {
		p, _, err := startBare(ctx, b.shim, b.o.limit)
		procs[i] = p
		return err
	}); err != nil {
		for _, p := range procs {
			if p != nil {
				p.Kill()
			}
		}
		return err
	}
	bareStart := time.Since(t0)
	t0 = time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, w)
	for _, p := range procs {
		if p == nil { // the time limit cut the starts short
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() { defer wg.Done(); p.Stop(); <-sem }()
	}
	wg.Wait()
	bareStop := time.Since(t0)

	b.out.Add(fmt.Sprintf("create %d pods (%d clients) → all Running", n, w), report.Secs(created),
		fmt.Sprintf("%d bare agnhost netexec started, %d at a time, until /healthz answers: %s", n, w, report.Secs(bareStart)), "")
	b.out.Add(fmt.Sprintf("delete %d pods (default grace) → all gone from the API", n), report.Secs(deleted),
		fmt.Sprintf("SIGTERM to the %d bare processes, %d at a time, until exited: %s", n, w, report.Secs(bareStop)), "")
	return nil
}

// allReach runs op for every pod on -workers clients and returns the wall
// time from the start until the watch showed milestone m of all of them.
func (b *bench) allReach(ctx context.Context, n int, name func(int) string, m milestone, op func(context.Context, int) error) (time.Duration, error) {
	t0 := time.Now()
	res, err := load.Throughput(ctx, n, b.o.workers, b.o.limit, op)
	if err != nil {
		return 0, err
	}
	if res.Done < n {
		return 0, fmt.Errorf("time limit: %d of %d requests done", res.Done, n)
	}
	for i := range n {
		if _, err := b.tracker.wait(ctx, name(i), m, b.o.limit-time.Since(t0)); err != nil {
			return 0, err
		}
	}
	return time.Since(t0), nil
}

// leakCheck runs -cycles create → Running → delete → gone cycles with
// -workers in flight and then counts what they left behind.
func (b *bench) leakCheck(ctx context.Context) error {
	before, err := b.agent.countLeaks()
	if err != nil {
		return err
	}
	res, err := load.Throughput(ctx, b.o.cycles, b.o.workers, b.o.limit, func(ctx context.Context, i int) error {
		name := fmt.Sprintf("cyc-%d", i)
		if _, err := b.createPod(ctx, name); err != nil {
			return err
		}
		if _, err := b.tracker.wait(ctx, name, running, b.o.limit); err != nil {
			return err
		}
		if err := b.deletePod(ctx, name); err != nil {
			return err
		}
		if _, err := b.tracker.wait(ctx, name, gone, b.o.limit); err != nil {
			return err
		}
		b.tracker.forget(name)
		if i > 0 && i%100 == 0 {
			fmt.Fprintf(b.out.Live, "  %d cycles\n", i)
		}
		return nil
	})
	if err != nil {
		return err
	}
	cycles := fmt.Sprintf("%.1f/s (%d cycles in %s)", res.Rate(), res.Done, report.Secs(res.Elapsed))
	if res.Done < b.o.cycles {
		cycles += fmt.Sprintf(" (time limit: %d of %d)", res.Done, b.o.cycles)
	}
	b.out.Add(fmt.Sprintf("pod create → Running → delete → gone cycles, %d in flight", b.o.workers), cycles, "", "")

	// A pod gone from the API may still be being torn down on the node:
	// give the agent a moment before calling what is left a leak.
	const settle = 30 * time.Second
	t0 := time.Now()
	var after leaks
	for {
		if after, err = b.agent.countLeaks(); err != nil {
			return err
		}
		if after.total() == 0 || time.Since(t0) > settle {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	got := after.String()
	if after.total() == 0 {
		got += fmt.Sprintf(" (%s after the last pod was gone)", report.MS(time.Since(t0)))
	} else {
		got += fmt.Sprintf(" (still after %s)", settle)
	}
	b.out.Add(fmt.Sprintf("leaked after %d cycles: netns files, veths, IPAM records, pod dirs, processes, mounts", res.Done),
		got, "before the cycles: "+before.String(), "0: "+report.Verdict(after.total() == 0))
	return nil
}
