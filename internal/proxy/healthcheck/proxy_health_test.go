package healthcheck

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func probeProxy(t *testing.T, h http.Handler, path string) (int, proxyHealthBody, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	var b proxyHealthBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("%s: body %q: %v", path, rec.Body.String(), err)
	}
	return rec.Code, b, rec.Header()
}

// /healthz and /livez go 503 once a queued change has waited twice the
// sync period without a successful sync, and back to 200 after one;
// /healthz also reports a node that should not get traffic.
func TestProxyHealthTransitions(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakePassiveClock(start)
	m := NewMetrics()
	h := NewProxyHealth(ProxyHealthConfig{SyncPeriod: 30 * time.Second, Clock: clk, Metrics: m})
	srv := h.Handler()

	step := func(what string, healthz, livez int) {
		t.Helper()
		if c, _, _ := probeProxy(t, srv, "/healthz"); c != healthz {
			t.Errorf("%s: /healthz %d, want %d", what, c, healthz)
		}
		if c, _, _ := probeProxy(t, srv, "/livez"); c != livez {
			t.Errorf("%s: /livez %d, want %d", what, c, livez)
		}
	}

	step("starting, nothing synced", 200, 200)
	h.QueuedUpdate()
	clk.SetTime(start.Add(59 * time.Second))
	step("change queued 59s ago", 200, 200)
	h.QueuedUpdate() // a newer change does not reset the clock
	clk.SetTime(start.Add(60 * time.Second))
	step("change queued 60s ago", 503, 503)
	if h.IsHealthy() {
		t.Error("IsHealthy with a change pending for 2×SyncPeriod")
	}

	h.Updated()
	step("synced", 200, 200)
	c, b, hdr := probeProxy(t, srv, "/healthz")
	if c != 200 || !b.LastUpdated.Equal(start.Add(60*time.Second)) || !b.CurrentTime.Equal(start.Add(60*time.Second)) || !b.NodeEligible {
		t.Errorf("body after sync: %d %+v", c, b)
	}
	if hdr.Get("Content-Type") != "application/json" || hdr.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v", hdr)
	}

	clk.SetTime(start.Add(time.Hour))
	step("idle for an hour, nothing queued", 200, 200)

	h.SetNodeEligible(false)
	step("node being deleted", 503, 200)
	if _, b, _ := probeProxy(t, srv, "/livez"); b.NodeEligible {
		t.Error("nodeEligible true for a node being deleted")
	}
	h.SetNodeEligible(true)
	step("node eligible again", 200, 200)

	body := scrape(t, m)
	for _, want := range []string{`kubeproxy_proxy_healthz_total{code="503"} 2`, `kubeproxy_proxy_livez_total{code="503"} 1`} {
		if !contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// Run serves /healthz on the address given and stops with its context.
func TestProxyHealthRun(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := NewProxyHealth(ProxyHealthConfig{SyncPeriod: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, addr) }()

	var resp *http.Response
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err = http.Get("http://" + addr + "/healthz")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop with its context")
	}
}
