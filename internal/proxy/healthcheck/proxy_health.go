package healthcheck

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// ProxyHealthConfig configures a ProxyHealth.
type ProxyHealthConfig struct {
	// SyncPeriod is the proxy's full-sync period; a queued change not
	// programmed within twice that makes the proxy unhealthy.
	SyncPeriod time.Duration
	// Clock defaults to the real clock.
	Clock clock.PassiveClock
	// Metrics, when set, counts answers by status code
	// (kubeproxy_proxy_healthz_total, kubeproxy_proxy_livez_total).
	Metrics *Metrics
}

// ProxyHealth tracks whether the proxy keeps its rules current and serves
// /healthz and /livez from that. The proxy calls QueuedUpdate when a change
// is waiting to be programmed and Updated after each successful sync.
type ProxyHealth struct {
	clock   clock.PassiveClock
	timeout time.Duration
	metrics *Metrics

	mu            sync.Mutex
	lastUpdated   time.Time
	oldestPending time.Time // zero: nothing waiting
	nodeEligible  bool
}

// NewProxyHealth returns a healthy ProxyHealth on an eligible node.
func NewProxyHealth(cfg ProxyHealthConfig) *ProxyHealth {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	return &ProxyHealth{clock: cfg.Clock, timeout: 2 * cfg.SyncPeriod, metrics: cfg.Metrics, nodeEligible: true}
}

// QueuedUpdate records that a change waits to be programmed; only the
// oldest waiting change counts.
func (h *ProxyHealth) QueuedUpdate() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.oldestPending.IsZero() {
		h.oldestPending = h.clock.Now()
	}
}

// Updated records a successful sync: nothing waits any more.
func (h *ProxyHealth) Updated() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.oldestPending = time.Time{}
	h.lastUpdated = h.clock.Now()
}

// SetNodeEligible marks whether this node should receive load-balancer
// traffic; a node being deleted is not. Only /healthz reports it.
func (h *ProxyHealth) SetNodeEligible(ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nodeEligible = ok
}

// IsHealthy reports whether the proxy's rules are current: nothing waits,
// or the oldest waiting change is younger than twice the sync period. A
// proxy that has not synced yet is healthy while it starts.
func (h *ProxyHealth) IsHealthy() bool {
	ok, _, _, _ := h.status()
	return ok
}

func (h *ProxyHealth) status() (healthy bool, lastUpdated, now time.Time, eligible bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now = h.clock.Now()
	healthy = h.oldestPending.IsZero() || now.Sub(h.oldestPending) < h.timeout
	return healthy, h.lastUpdated, now, h.nodeEligible
}

type proxyHealthBody struct {
	LastUpdated  time.Time `json:"lastUpdated"`
	CurrentTime  time.Time `json:"currentTime"`
	NodeEligible bool      `json:"nodeEligible"`
}

// Handler serves /healthz (proxy healthy and node eligible) and /livez
// (proxy healthy).
func (h *ProxyHealth) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { h.answer(w, true) })
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { h.answer(w, false) })
	return mux
}

func (h *ProxyHealth) answer(w http.ResponseWriter, healthz bool) {
	ok, last, now, eligible := h.status()
	if healthz {
		ok = ok && eligible
	}
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	if h.metrics != nil {
		h.metrics.probe(healthz, code)
	}
	body, _ := json.Marshal(proxyHealthBody{LastUpdated: last, CurrentTime: now, NodeEligible: eligible})
	writeJSON(w, code, body)
}

// Run serves the handler on address (DefaultHealthzBindAddress when
// empty) until ctx ends.
func (h *ProxyHealth) Run(ctx context.Context, address string) error {
	if address == "" {
		address = DefaultHealthzBindAddress
	}
	return Serve(ctx, address, h.Handler())
}
