package report

import (
	"bytes"
	"testing"
	"time"
)

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
			if got := Percentile(tt.sorted, tt.q); got != tt.want {
				t.Fatalf("Percentile(%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

func TestRenderTable(t *testing.T) {
	var buf bytes.Buffer
	Render(&buf, []Row{{"idle RSS", "114 MB", "", "< 150 MB: met"}, {"a|b", "1", "2", "3"}})
	want := "| metric | portal | baseline (same run) | goal |\n|---|---|---|---|\n" +
		"| idle RSS | 114 MB | - | < 150 MB: met |\n| a\\|b | 1 | 2 | 3 |\n"
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestMarkdownAnyColumns(t *testing.T) {
	var buf bytes.Buffer
	Markdown(&buf, []string{"metric", "portal", "peer"}, [][]string{{"sync", "1 s", ""}, {"a|b", "2", "3"}})
	want := "| metric | portal | peer |\n|---|---|---|\n| sync | 1 s | - |\n| a\\|b | 2 | 3 |\n"
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
	}
}
