package healthcheck

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/portal-net/portal/internal/netutil"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const subsystem = "kubeproxy"

// Metrics are the proxy's Prometheus metrics, named as kube-proxy names
// them so its dashboards and alerts apply. They live in a private registry:
// several proxies (tests, one process with several roles) must not clash
// in the global one.
type Metrics struct {
	reg *prometheus.Registry
	now func() time.Time

	syncDuration, fullSyncDuration, partialSyncDuration prometheus.Histogram
	programming                                         prometheus.Histogram
	lastSync, lastQueued                                prometheus.Gauge
	serviceChanges, endpointChanges                     prometheus.Counter
	healthz, livez                                      *prometheus.CounterVec
}

// syncBuckets: 1 ms to 16 s, doubling, as kube-proxy.
var syncBuckets = prometheus.ExponentialBuckets(0.001, 2, 15)

// programmingBuckets span a quarter second to five minutes, fine-grained
// around the seconds a user notices, as kube-proxy's.
func programmingBuckets() []float64 {
	b := []float64{0.25, 0.5}
	b = append(b, prometheus.LinearBuckets(1, 1, 59)...)
	b = append(b, prometheus.LinearBuckets(60, 5, 12)...)
	return append(b, prometheus.LinearBuckets(120, 30, 7)...)
}

// NewMetrics registers the proxy's metrics, and the Go runtime and process
// collectors, in a new registry.
func NewMetrics() *Metrics {
	hist := func(name, help string, b []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Subsystem: subsystem, Name: name, Help: help, Buckets: b})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Subsystem: subsystem, Name: name, Help: help})
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Subsystem: subsystem, Name: name, Help: help})
	}
	m := &Metrics{
		reg:                 prometheus.NewRegistry(),
		now:                 time.Now,
		syncDuration:        hist("sync_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds", syncBuckets),
		fullSyncDuration:    hist("sync_full_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds for full resyncs", syncBuckets),
		partialSyncDuration: hist("sync_partial_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds for partial resyncs", syncBuckets),
		programming:         hist("network_programming_duration_seconds", "In Cluster Network Programming Latency in seconds", programmingBuckets()),
		lastSync:            gauge("sync_proxy_rules_last_timestamp_seconds", "The last time proxy rules were successfully synced"),
		lastQueued:          gauge("sync_proxy_rules_last_queued_timestamp_seconds", "The last time a sync of proxy rules was queued"),
		serviceChanges:      counter("sync_proxy_rules_service_changes_total", "Cumulative proxy rules Service changes"),
		endpointChanges:     counter("sync_proxy_rules_endpoint_changes_total", "Cumulative proxy rules Endpoint changes"),
		healthz: prometheus.NewCounterVec(prometheus.CounterOpts{Subsystem: subsystem, Name: "proxy_healthz_total",
			Help: "Cumulative proxy healthz HTTP status"}, []string{"code"}),
		livez: prometheus.NewCounterVec(prometheus.CounterOpts{Subsystem: subsystem, Name: "proxy_livez_total",
			Help: "Cumulative proxy livez HTTP status"}, []string{"code"}),
	}
	m.reg.MustRegister(m.syncDuration, m.fullSyncDuration, m.partialSyncDuration, m.programming,
		m.lastSync, m.lastQueued, m.serviceChanges, m.endpointChanges, m.healthz, m.livez,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is where the metrics live, for callers adding their own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveSync records one successful sync of the rules that took d.
func (m *Metrics) ObserveSync(full bool, d time.Duration) {
	s := d.Seconds()
	m.syncDuration.Observe(s)
	if full {
		m.fullSyncDuration.Observe(s)
	} else {
		m.partialSyncDuration.Observe(s)
	}
	m.lastSync.Set(float64(m.now().UnixNano()) / 1e9)
}

// ObserveProgramming records the time from a change in the API (start) to
// its rules being live, which is now. A zero start is unknown and skipped.
func (m *Metrics) ObserveProgramming(start time.Time) {
	if start.IsZero() {
		return
	}
	d := m.now().Sub(start)
	if d < 0 {
		d = 0 // clocks of the API server and this node disagree
	}
	m.programming.Observe(d.Seconds())
}

// Queued records that a sync was queued.
func (m *Metrics) Queued() { m.lastQueued.Set(float64(m.now().UnixNano()) / 1e9) }

// ServiceChanges adds n to the count of service changes programmed.
func (m *Metrics) ServiceChanges(n int) { m.serviceChanges.Add(float64(n)) }

// EndpointChanges adds n to the count of endpoint changes programmed.
func (m *Metrics) EndpointChanges(n int) { m.endpointChanges.Add(float64(n)) }

func (m *Metrics) probe(healthz bool, code int) {
	v := m.livez
	if healthz {
		v = m.healthz
	}
	v.WithLabelValues(strconv.Itoa(code)).Inc()
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	return mux
}

// Run serves /metrics on address (DefaultMetricsBindAddress when empty)
// until ctx ends.
func (m *Metrics) Run(ctx context.Context, address string) error {
	if address == "" {
		address = DefaultMetricsBindAddress
	}
	// Go profiles too, but only where nobody else can reach them.
	h := netutil.WithProfiles(address, m.Handler())
	return Serve(ctx, address, h)
}
