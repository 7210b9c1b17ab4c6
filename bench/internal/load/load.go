// Package load runs bounded benchmark loads: a fixed number of operations
// on concurrent workers, stopped by a time limit and by the first error.
package load

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Result is one bounded throughput run.
type Result struct {
	Done    int // operations that succeeded
	Elapsed time.Duration
}

// Rate is successful operations per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Done) / r.Elapsed.Seconds()
}

// Throughput runs op for i in [0,n) on w workers until all are done or
// limit has passed, whichever comes first. The first error stops the run
// and is returned, so a broken server is reported rather than timed.
func Throughput(ctx context.Context, n, w int, limit time.Duration, op func(ctx context.Context, i int) error) (Result, error) {
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
	return Result{Done: int(done.Load()), Elapsed: time.Since(t0)}, firstErr
}

// Latency runs, on each of c concurrent clients, ops sequential calls of
// op (or fewer if limit passes) and returns every call's latency, sorted.
func Latency(ctx context.Context, c, ops int, limit time.Duration, op func(ctx context.Context, client, i int) error) ([]time.Duration, error) {
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
