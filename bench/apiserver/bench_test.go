package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		name, status string
		want         int64
		wantErr      string
	}{
		{name: "typical", status: "Name:\tportal\nVmPeak:\t  900000 kB\nVmRSS:\t  117412 kB\nRssAnon:\t 1 kB\n", want: 117412},
		{name: "missing", status: "Name:\tportal\n", wantErr: "no VmRSS line"},
		{name: "odd unit", status: "VmRSS:\t 12 MB\n", wantErr: `unexpected VmRSS line "VmRSS:\t 12 MB"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseVmRSS(tt.status)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.99, 0},
		{"one sample", []time.Duration{7}, 0.5, 7},
		{"p50 of 100", hundred, 0.5, 50 * time.Millisecond},
		{"p99 of 100", hundred, 0.99, 99 * time.Millisecond},
		{"p100 of 100", hundred, 1, 100 * time.Millisecond},
		{"p99 of 3 is the max", []time.Duration{1, 2, 3}, 0.99, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.q); got != tt.want {
				t.Fatalf("percentile(%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

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

func TestRenderTable(t *testing.T) {
	var buf bytes.Buffer
	renderTable(&buf, []row{{"idle RSS", "114 MB", "", "< 150 MB: met"}, {"a|b", "1", "2", "3"}})
	want := "| metric | portal | baseline (same run) | goal |\n|---|---|---|---|\n" +
		"| idle RSS | 114 MB | - | < 150 MB: met |\n| a\\|b | 1 | 2 | 3 |\n"
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
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
