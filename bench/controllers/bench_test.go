package main

import (
	"strings"
	"testing"
)

func TestParseMetricsAndQueue(t *testing.T) {
	text := `# HELP workqueue_depth Current depth of workqueue
# TYPE workqueue_depth gauge
workqueue_depth{name="endpointslice"} 3
workqueue_depth{name="endpoints"} 0
workqueue_adds_total{name="endpointslice"} 1.0001e+04
workqueue_unfinished_work_seconds{name="endpointslice"} 0.25
garbage line
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if got := queue(m, "endpointslice"); got != (queueState{adds: 10001, depth: 3, unfinished: 0.25}) {
		t.Errorf("endpointslice queue %+v", got)
	}
	if got := queue(m, "endpoints"); got != (queueState{}) {
		t.Errorf("endpoints queue %+v, want zero adds and depth", got)
	}
	if got := queue(m, "missing"); got != (queueState{}) {
		t.Errorf("missing queue %+v", got)
	}
}

func TestPodIPsAreDistinctAndOutsidePortalRanges(t *testing.T) {
	seen := map[string]bool{}
	for i := range 200000 {
		ip := podIP(i)
		if seen[ip] {
			t.Fatalf("podIP(%d) = %s repeats", i, ip)
		}
		seen[ip] = true
		if strings.HasPrefix(ip, "10.0.") || strings.HasPrefix(ip, "10.42.") {
			t.Fatalf("podIP(%d) = %s inside a portal range", i, ip)
		}
	}
}
