package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

func TestFindKey(t *testing.T) {
	keys := []string{
		"/bench/raw/services/00000",
		"/registry/configmaps/tp/tp-00000",
		"/registry/services/endpoints/tp/tp-00000",
		"/registry/services/specs/tp/tp-00000",
		"/registry/services/specs/tp/tp-000001",
	}
	tests := []struct{ resource, ns, name, want string }{
		{"configmaps", "tp", "tp-00000", "/registry/configmaps/tp/tp-00000"},
		// Not the Endpoints object of the same name, stored beside it.
		{"services", "tp", "tp-00000", "/registry/services/specs/tp/tp-00000"},
		{"services", "tp", "tp-1", ""},
		{"tp", "tp", "tp-00000", ""},
		{"secrets", "tp", "tp-00000", ""},
	}
	for _, tt := range tests {
		if got := findKey(keys, tt.resource, tt.ns, tt.name); got != tt.want {
			t.Errorf("findKey(%s %s/%s) = %q, want %q", tt.resource, tt.ns, tt.name, got, tt.want)
		}
	}
}

func TestManifest(t *testing.T) {
	for _, kind := range []string{"Service", "ConfigMap"} {
		docs := strings.Split(manifest(kind, 3), "---\n")[1:]
		if len(docs) != 3 {
			t.Fatalf("%s: %d documents, want 3", kind, len(docs))
		}
		for i, d := range docs {
			var obj struct {
				Kind     string
				Metadata struct{ Name string }
			}
			if err := yaml.Unmarshal([]byte(d), &obj); err != nil {
				t.Fatalf("%s doc %d: %v", kind, i, err)
			}
			if want := []string{"bench-0000", "bench-0001", "bench-0002"}[i]; obj.Kind != kind || obj.Metadata.Name != want {
				t.Errorf("%s doc %d = %s %s, want %s %s", kind, i, obj.Kind, obj.Metadata.Name, kind, want)
			}
		}
	}
}

func TestThroughputBaselineAndGoal(t *testing.T) {
	got := throughputBaseline(1000, 4000, 612)
	want := "raw etcd Put (612 B values): 4000/s, portal = 0.25×; upstream kube-apiserver 1.37 (reference, not measured): 240–276/s, portal = 3.6–4.2×"
	if got != want {
		t.Errorf("baseline = %q, want %q", got, want)
	}
	if got := throughputGoal(552); got != "≥ 2× upstream (≥ 552/s): met" {
		t.Errorf("goal(552) = %q", got)
	}
	if got := throughputGoal(500); got != "≥ 2× upstream (≥ 552/s): MISSED" {
		t.Errorf("goal(500) = %q", got)
	}
	if got := rateCell(throughputResult{done: 50, elapsed: time.Second}, 100); got != "50/s (time limit: 50 of 100)" {
		t.Errorf("rateCell = %q", got)
	}
}

func TestThroughputRunsEveryIndexOnce(t *testing.T) {
	seen := make([]int32, 100)
	r, err := throughput(context.Background(), 100, 8, time.Minute, func(_ context.Context, i int) error {
		seen[i]++ // each index is handed to exactly one worker
		return nil
	})
	if err != nil || r.done != 100 {
		t.Fatalf("done %d, err %v; want 100, nil", r.done, err)
	}
	for i, n := range seen {
		if n != 1 {
			t.Fatalf("index %d ran %d times", i, n)
		}
	}
}

func TestThroughputStopsAtTimeLimit(t *testing.T) {
	r, err := throughput(context.Background(), 1_000_000, 4, 50*time.Millisecond, func(ctx context.Context, _ int) error {
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
	if r.done == 0 || r.done >= 1_000_000 || r.elapsed > 5*time.Second {
		t.Fatalf("done %d in %v; want a partial run cut at the limit", r.done, r.elapsed)
	}
}

func TestThroughputReportsFirstError(t *testing.T) {
	boom := errors.New("boom")
	_, err := throughput(context.Background(), 100, 4, time.Minute, func(_ context.Context, i int) error {
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
	lat, err := latency(context.Background(), 5, 4, time.Minute, func(context.Context, int, int) error { return nil })
	if err != nil || len(lat) != 20 {
		t.Fatalf("got %d samples, err %v; want 20, nil", len(lat), err)
	}
	for i := 1; i < len(lat); i++ {
		if lat[i] < lat[i-1] {
			t.Fatal("samples not sorted")
		}
	}
	boom := errors.New("boom")
	_, err = latency(context.Background(), 3, 4, time.Minute, func(_ context.Context, c, i int) error {
		if c == 2 && i == 1 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "client 2 op 1: boom") {
		t.Fatalf("err = %v, want client 2 op 1: boom", err)
	}
}
