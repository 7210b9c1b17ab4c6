package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// throughputResult is one bounded throughput run.
type throughputResult struct {
	done    int // operations that succeeded
	elapsed time.Duration
}

func (r throughputResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.done) / r.elapsed.Seconds()
}

// throughput runs op for i in [0,n) on w workers until all are done or
// limit has passed, whichever comes first. The first error stops the run
// and is returned, so a broken server is reported rather than timed.
func throughput(ctx context.Context, n, w int, limit time.Duration, op func(ctx context.Context, i int) error) (throughputResult, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var (
		next     atomic.Int64
		done     atomic.Int64
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	t0 := time.Now()
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := op(ctx, i); err != nil {
					if ctx.Err() == nil { // not just the time limit cutting a request short
						errOnce.Do(func() { firstErr = fmt.Errorf("operation %d: %w", i, err); cancel() })
					}
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	return throughputResult{done: int(done.Load()), elapsed: time.Since(t0)}, firstErr
}

// latency runs, on each of c concurrent clients, ops sequential calls of
// op (or fewer if limit passes) and returns every call's latency, sorted.
func latency(ctx context.Context, c, ops int, limit time.Duration, op func(ctx context.Context, client, i int) error) ([]time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var (
		mu       sync.Mutex
		all      = make([]time.Duration, 0, c*ops)
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	for k := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, ops)
			defer func() {
				mu.Lock()
				all = append(all, mine...)
				mu.Unlock()
			}()
			for i := 0; i < ops && ctx.Err() == nil; i++ {
				t0 := time.Now()
				if err := op(ctx, k, i); err != nil {
					if ctx.Err() == nil {
						errOnce.Do(func() { firstErr = fmt.Errorf("client %d op %d: %w", k, i, err); cancel() })
					}
					return
				}
				mine = append(mine, time.Since(t0))
			}
		}()
	}
	wg.Wait()
	slices.Sort(all)
	return all, firstErr
}
