package runner

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/portal-net/portal/internal/proxy/healthcheck"
)

// A LoadBalancer service with externalTrafficPolicy Local gets its
// healthCheckNodePort served with this node's endpoint count; syncs show in
// /healthz and the kube-proxy metrics.
func TestRunnerFeedsHealthAndMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	addrs := map[string]string{} // requested → real 127.0.0.1 address
	listen := func(network, address string) (net.Listener, error) {
		ln, err := net.Listen(network, "127.0.0.1:0")
		if err == nil {
			mu.Lock()
			addrs[address] = ln.Addr().String()
			mu.Unlock()
		}
		return ln, err
	}
	probe := func() (int, map[string]any) {
		mu.Lock()
		a := addrs[":30555"]
		mu.Unlock()
		if a == "" {
			return 0, nil
		}
		resp, err := http.Get("http://" + a + "/")
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}

	lb := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "lb"},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeLoadBalancer, ClusterIP: "10.96.0.20", ClusterIPs: []string{"10.96.0.20"},
			ExternalTrafficPolicy: v1.ServiceExternalTrafficPolicyLocal, HealthCheckNodePort: 30555,
			Ports: []v1.ServicePort{{Port: 80, Protocol: v1.ProtocolTCP, NodePort: 31080}}},
	}
	onNodes := func(nodes ...string) *discoveryv1.EndpointSlice {
		s := slice("lb", v1.ProtocolTCP, 8080)
		for i, n := range nodes {
			s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.42.0." + string(rune('2'+i))},
				NodeName: ptr.To(n), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
		}
		return s
	}
	cs := fake.NewSimpleClientset(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}, lb, onNodes("node-1", "node-2", "node-1"))
	f := informers.NewSharedInformerFactory(cs, 0)
	m := healthcheck.NewMetrics()
	ph := healthcheck.NewProxyHealth(healthcheck.ProxyHealthConfig{SyncPeriod: time.Hour, Metrics: m})
	sh := healthcheck.NewServiceHealthServer(healthcheck.ServiceHealthConfig{Listen: listen, Proxy: ph})
	defer sh.Close()
	rec := &recorder{}
	r, err := New(Config{NodeName: "node-1", SyncPeriod: time.Hour, MinSyncPeriod: 10 * time.Millisecond,
		Datapath: rec, Health: ph, ServiceHealth: sh, Metrics: m}, f)
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	go r.Run(ctx)

	waitProbe := func(what string, code int, local float64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, body := probe()
			if c == code && body["localEndpoints"] == local {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: health check answered %d %v, want %d with %v local endpoints", what, c, body, code, local)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitProbe("two endpoints here", 200, 2)

	if _, err := cs.DiscoveryV1().EndpointSlices("default").Update(ctx, onNodes("node-2"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitProbe("endpoints only elsewhere", 503, 0)

	rr := httptest.NewRecorder()
	ph.Handler().ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rr.Code != 200 {
		t.Errorf("/healthz %d after successful syncs", rr.Code)
	}

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"kubeproxy_sync_full_proxy_rules_duration_seconds_count 1",
		"kubeproxy_sync_proxy_rules_service_changes_total 1",
		"kubeproxy_network_programming_duration_seconds_count",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(string(b), "kubeproxy_sync_partial_proxy_rules_duration_seconds_count 0") {
		t.Error("no partial sync counted after the endpoint update")
	}
	if strings.Contains(string(b), "kubeproxy_sync_proxy_rules_endpoint_changes_total 0") {
		t.Error("endpoint changes not counted")
	}

	// The service stops being Local: its health check port closes.
	lb2 := lb.DeepCopy()
	lb2.Spec.ExternalTrafficPolicy, lb2.Spec.HealthCheckNodePort = v1.ServiceExternalTrafficPolicyCluster, 0
	if _, err := cs.CoreV1().Services("default").Update(ctx, lb2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, _ := probe(); c == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("health check port still open after the service left externalTrafficPolicy Local")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
