package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Metric names both proxies serve.
const (
	metricLastSync     = "kubeproxy_sync_proxy_rules_last_timestamp_seconds"
	metricSyncDuration = "kubeproxy_sync_proxy_rules_duration_seconds"
	metricFullSync     = "kubeproxy_sync_full_proxy_rules_duration_seconds"
)

// parseMetrics reads the Prometheus text format into series → value; a
// series is the name with its label set as written ("a" or `a{x="1"}`).
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		// The value follows the series; a timestamp may follow the value.
		series, rest := line, ""
		if i := strings.LastIndexByte(line, '}'); i >= 0 {
			series, rest = line[:i+1], line[i+1:]
		} else if i := strings.IndexByte(line, ' '); i >= 0 {
			series, rest = line[:i], line[i:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return nil, fmt.Errorf("metric line without value: %q", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metric line %q: %w", line, err)
		}
		out[series] = v
	}
	return out, sc.Err()
}

// scrape GETs a metrics endpoint.
func scrape(ctx context.Context, hc *http.Client, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseMetrics(resp.Body)
}

// value is a metric's value: the series without labels, else the IPv4
// one (kube-proxy labels its sync metrics by ip_family; the benchmark's
// traffic is IPv4), else the largest of any label set.
func value(m map[string]float64, name string) float64 {
	if v, ok := m[name]; ok {
		return v
	}
	if v, ok := m[name+`{ip_family="IPv4"}`]; ok {
		return v
	}
	var best float64
	for series, v := range m {
		if strings.HasPrefix(series, name+"{") && v > best {
			best = v
		}
	}
	return best
}

// histogramMean is sum/count of a histogram, and its count.
func histogramMean(m map[string]float64, name string) (mean float64, count int) {
	c := value(m, name+"_count")
	if c == 0 {
		return 0, 0
	}
	return value(m, name+"_sum") / c, int(c)
}
