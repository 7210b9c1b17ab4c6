// Package report formats benchmark results: one Markdown row per figure,
// our number beside the baseline measured in the same run and the goal.
package report

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Row is one line of the results table.
type Row struct{ Metric, Portal, Baseline, Goal string }

// Render writes rows as a Markdown table.
func Render(w io.Writer, rows []Row) {
	fmt.Fprintln(w, "| metric | portal | baseline (same run) | goal |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", Cell(r.Metric), Cell(r.Portal), Cell(r.Baseline), Cell(r.Goal))
	}
}

// Cell escapes a table cell; empty cells print as "-".
func Cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.ReplaceAll(s, "|", `\|`)
}

// MS formats a duration in milliseconds.
func MS(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }

// Secs formats a duration in seconds.
func Secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// MB formats mebibytes.
func MB(v float64) string { return fmt.Sprintf("%.0f MB", v) }

// Verdict marks a figure against its goal, so a reader of the table does
// not have to compare numbers by eye.
func Verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// Percentile returns the q-quantile (0..1) of sorted by the nearest-rank
// method, or 0 for no samples.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// The epsilon keeps q*n that is an integer in decimal (0.99*100) from
	// rounding up to the next rank in binary.
	rank := int(math.Ceil(q*float64(len(sorted)) - 1e-9))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// P50P99 formats the median and 99th percentile of sorted samples as
// "p50 / p99".
func P50P99(sorted []time.Duration) string {
	return MS(Percentile(sorted, 0.50)) + " / " + MS(Percentile(sorted, 0.99))
}

// Table collects rows and echoes each one to Live (if set) as it is added,
// so a long run shows progress.
type Table struct {
	Rows []Row
	Live io.Writer
}

// Add appends a row.
func (t *Table) Add(metric, portal, baseline, goal string) {
	t.Rows = append(t.Rows, Row{Metric: metric, Portal: portal, Baseline: baseline, Goal: goal})
	if t.Live != nil {
		fmt.Fprintf(t.Live, "  %s: %s | %s | %s\n", metric, portal, Cell(baseline), Cell(goal))
	}
}

// Main runs a benchmark until it ends or is interrupted (SIGINT, SIGTERM),
// prints its table to stdout — also the rows measured before a failure —
// and exits 1 if it failed.
func Main(run func(context.Context) ([]Row, error)) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	rows, err := run(ctx)
	stop()
	if len(rows) > 0 {
		fmt.Println()
		Render(os.Stdout, rows)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// Markdown writes a table with any columns: header, then one line per
// row; empty cells print as "-".
func Markdown(w io.Writer, header []string, rows [][]string) {
	line := func(cells []string) {
		fmt.Fprint(w, "|")
		for _, c := range cells {
			fmt.Fprintf(w, " %s |", Cell(c))
		}
		fmt.Fprintln(w)
	}
	line(header)
	fmt.Fprintln(w, "|"+strings.Repeat("---|", len(header)))
	for _, r := range rows {
		line(r)
	}
}
