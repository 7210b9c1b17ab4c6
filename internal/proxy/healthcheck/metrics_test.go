package healthcheck

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics %d: %s", resp.StatusCode, b)
	}
	return string(b)
}

// A Prometheus scrape of /metrics shows kube-proxy's metric names with the
// observed values.
func TestMetricsScrape(t *testing.T) {
	m := NewMetrics()
	now := time.Unix(1_800_000_000, 0)
	m.now = func() time.Time { return now }

	m.ObserveSync(true, 1500*time.Millisecond)
	m.ObserveSync(false, 3*time.Millisecond)
	m.ObserveSync(false, 5*time.Millisecond)
	m.ObserveProgramming(now.Add(-2 * time.Second))
	m.ObserveProgramming(time.Time{}) // unknown start: not observed
	m.ServiceChanges(3)
	m.EndpointChanges(7)
	m.EndpointChanges(1)
	m.Queued()

	body := scrape(t, m)
	for _, want := range []string{
		"# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram",
		"kubeproxy_sync_proxy_rules_duration_seconds_count 3",
		"kubeproxy_sync_full_proxy_rules_duration_seconds_count 1",
		`kubeproxy_sync_full_proxy_rules_duration_seconds_bucket{le="1.024"} 0`,
		`kubeproxy_sync_full_proxy_rules_duration_seconds_bucket{le="2.048"} 1`,
		"kubeproxy_sync_partial_proxy_rules_duration_seconds_count 2",
		`kubeproxy_sync_partial_proxy_rules_duration_seconds_bucket{le="0.004"} 1`,
		"# TYPE kubeproxy_network_programming_duration_seconds histogram",
		"kubeproxy_network_programming_duration_seconds_count 1",
		`kubeproxy_network_programming_duration_seconds_bucket{le="2"} 1`,
		`kubeproxy_network_programming_duration_seconds_bucket{le="1"} 0`,
		"# TYPE kubeproxy_sync_proxy_rules_last_timestamp_seconds gauge",
		"kubeproxy_sync_proxy_rules_last_timestamp_seconds 1.8e+09",
		"kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds 1.8e+09",
		"# TYPE kubeproxy_sync_proxy_rules_service_changes_total counter",
		"kubeproxy_sync_proxy_rules_service_changes_total 3",
		"kubeproxy_sync_proxy_rules_endpoint_changes_total 8",
		"process_resident_memory_bytes",
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

// Each Metrics has its own registry: two proxies in one process do not
// clash or see each other's values.
func TestMetricsPrivateRegistry(t *testing.T) {
	a, b := NewMetrics(), NewMetrics()
	a.ServiceChanges(5)
	if body := scrape(t, b); !strings.Contains(body, "kubeproxy_sync_proxy_rules_service_changes_total 0") {
		t.Error("second Metrics sees the first one's changes")
	}
}
