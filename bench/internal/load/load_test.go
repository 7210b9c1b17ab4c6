package load

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestThroughputRunsEveryIndexOnce(t *testing.T) {
	seen := make([]int32, 100)
	r, err := Throughput(context.Background(), 100, 8, time.Minute, func(_ context.Context, i int) error {
		seen[i]++ // each index is handed to exactly one worker
		return nil
	})
	if err != nil || r.Done != 100 {
		t.Fatalf("done %d, err %v; want 100, nil", r.Done, err)
	}
	for i, n := range seen {
		if n != 1 {
			t.Fatalf("index %d ran %d times", i, n)
		}
	}
}

func TestThroughputStopsAtTimeLimit(t *testing.T) {
	r, err := Throughput(context.Background(), 1_000_000, 4, 50*time.Millisecond, func(ctx context.Context, _ int) error {
		select {
		case <-time.After(time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	if err != nil {
		t.Fatalf("time limit reported as error: %v", err)
	}
	if r.Done == 0 || r.Done >= 1_000_000 || r.Elapsed > 5*time.Second {
		t.Fatalf("done %d in %v; want a partial run cut at the limit", r.Done, r.Elapsed)
	}
}

func TestThroughputReportsFirstError(t *testing.T) {
	boom := errors.New("boom")
	_, err := Throughput(context.Background(), 100, 4, time.Minute, func(_ context.Context, i int) error {
		if i == 10 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "operation 10: boom") {
		t.Fatalf("err = %v, want operation 10: boom", err)
	}
}

func TestLatencyCountsAndErrors(t *testing.T) {
	lat, err := Latency(context.Background(), 5, 4, time.Minute, func(context.Context, int, int) error { return nil })
	if err != nil || len(lat) != 20 {
		t.Fatalf("got %d samples, err %v; want 20, nil", len(lat), err)
	}
	for i := 1; i < len(lat); i++ {
		if lat[i] < lat[i-1] {
			t.Fatal("samples not sorted")
		}
	}
	boom := errors.New("boom")
	_, err = Latency(context.Background(), 3, 4, time.Minute, func(_ context.Context, c, i int) error {
		if c == 2 && i == 1 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "client 2 op 1: boom") {
		t.Fatalf("err = %v, want client 2 op 1: boom", err)
	}
}
