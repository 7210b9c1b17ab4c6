package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/portal-net/portal/internal/testutil/netnstest"
)

// Seed 001's service through the node's proxy: the ClusterIP spreads
// requests over the pods, from the node and from a pod; the NodePort
// answers on the node address; a service without endpoints and an
// unallocated address in the service range are refused at once.
func TestProxySeed001ClusterIP(t *testing.T) {
	s := startUp(t)
	c := s.client()
	waitNodeReady(t, c, "node-1", s.log.String)
	s.mustKubectl("apply", "-f", examples("seed001-services.yaml"))
	s.mustKubectl("apply", "-f", examples("seed001-deployment.yaml"))
	if out, errOut, err := s.kubectl("rollout", "status", "deployment/example-app-deployment", "--timeout=60s"); err != nil {
		t.Fatalf("rollout status: %v\n%s%s", err, out, errOut)
	}
	pods := runningPods(t, c, "default", "app=example-app")
	names := map[string]bool{}
	for _, p := range pods {
		names[p.Name] = true
	}
	ip := strings.TrimSpace(s.mustKubectl("get", "svc", "example-app", "-o", "jsonpath={.spec.clusterIP}"))
	nodePort := strings.TrimSpace(s.mustKubectl("get", "svc", "example-app", "-o", "jsonpath={.spec.ports[0].nodePort}"))
	url := "http://" + net.JoinHostPort(ip, "3000") + "/hostname"

	seen := map[string]int{}
	waitFor(t, 10*time.Second, "ClusterIP answers from the node", func() bool {
		got, err := httpGet(url)
		return err == nil && names[got]
	})
	for i := 0; i < 60; i++ {
		got, err := httpGet(url)
		if err != nil || !names[got] {
			t.Fatalf("request %d through %s: %q %v\n%s", i, url, got, err, s.log.String())
		}
		seen[got]++
	}
	if len(seen) != 3 {
		t.Errorf("60 requests reached %d of 3 pods: %v", len(seen), seen)
	}
	// From a pod.
	got, errOut, err := s.kubectl("exec", pods[0].Name, "--", "busybox", "wget", "-qO-", url)
	if err != nil || !names[strings.TrimSpace(got)] {
		t.Errorf("pod → ClusterIP: %q %v %s", got, err, errOut)
	}
	// NodePort on the node's address (192.0.2.10, see hack/in-netns.sh).
	if got, err := httpGet("http://" + net.JoinHostPort("192.0.2.10", nodePort) + "/hostname"); err != nil || !names[got] {
		t.Errorf("NodePort %s: %q %v", nodePort, got, err)
	}
	// sessionAffinity ClientIP pins this client to one pod.
	s.mustKubectl("patch", "svc", "example-app", "-p", `{"spec":{"sessionAffinity":"ClientIP","sessionAffinityConfig":{"clientIP":{"timeoutSeconds":60}}}}`)
	waitFor(t, 10*time.Second, "affinity pins the node to one pod", func() bool {
		first, err := httpGet(url)
		if err != nil {
			return false
		}
		for i := 0; i < 20; i++ {
			if got, err := httpGet(url); err != nil || got != first {
				return false
			}
		}
		return true
	})
	// The proxy's health and metrics endpoints, as kube-proxy's.
	if got, err := httpGet("http://127.0.0.1:10256/healthz"); err != nil || !strings.Contains(got, "lastUpdated") {
		t.Errorf("/healthz: %q %v", got, err)
	}
	if got, err := httpGet("http://127.0.0.1:10249/metrics"); err != nil || !strings.Contains(got, "kubeproxy_sync_proxy_rules_duration_seconds") ||
		!strings.Contains(got, "kubeproxy_network_programming_duration_seconds") {
		t.Errorf("/metrics: %v\n%.500s", err, got)
	}
	// Refused at once, not a time-out: a service without endpoints, and
	// an address of the service range that is no service.
	mysql := strings.TrimSpace(s.mustKubectl("get", "svc", "mysql-service", "-o", "jsonpath={.spec.clusterIP}"))
	used := s.mustKubectl("get", "svc", "-A", "-o", "jsonpath={.items[*].spec.clusterIP}")
	free := "10.0.0.250"
	for i := 250; strings.Contains(" "+used+" ", " "+free+" "); i-- {
		free = "10.0.0." + strconv.Itoa(i-1)
	}
	for _, addr := range []string{net.JoinHostPort(mysql, "3306"), net.JoinHostPort(free, "80")} {
		start := time.Now()
		conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err == nil {
			conn.Close()
			t.Errorf("%s: connected, want refused", addr)
			continue
		}
		if took := time.Since(start); took > 500*time.Millisecond || !strings.Contains(err.Error(), "refused") {
			t.Errorf("%s: %v after %v, want connection refused at once", addr, err, took)
		}
	}
}

// `portal agent --proxy-only` is a drop-in kube-proxy for any API: it
// registers no node and runs no pods, and programs a selector-less
// service whose EndpointSlice points at a server of the test.
func TestProxyOnly(t *testing.T) {
	netnstest.Require(t)
	s := startServer(t)
	ln, err := net.Listen("tcp", "192.0.2.10:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("outside-pod")) })}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port

	// The node's own route to the service range (a real node's default
	// route; here loopback, inside the test's namespace).
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	_, svcNet, _ := net.ParseCIDR("10.0.0.0/24")
	route := &netlink.Route{LinkIndex: lo.Attrs().Index, Dst: svcNet, Scope: netlink.SCOPE_LINK}
	if err := netlink.RouteReplace(route); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netlink.RouteDel(route) })

	a := startAgent(t, s, "proxy-node", "", "--kubeconfig", s.kubeconfig(), "--proxy-only")
	manifest := func(topologyKeys string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: outside}
spec:
  ports: [{name: web, port: 80, targetPort: %d}]
  topologyKeys: %s
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: outside-1
  labels: {kubernetes.io/service-name: outside, endpointslice.kubernetes.io/managed-by: test}
addressType: IPv4
ports: [{name: web, port: %d, protocol: TCP}]
endpoints: [{addresses: ["192.0.2.10"], nodeName: proxy-node, conditions: {ready: true}}]
`, port, topologyKeys, port)
	}
	s.mustKubectl("apply", "-f", writeFile(t, manifest(`["kubernetes.io/hostname"]`)))
	ip := strings.TrimSpace(s.mustKubectl("get", "svc", "outside", "-o", "jsonpath={.spec.clusterIP}"))
	url := "http://" + net.JoinHostPort(ip, "80") + "/"
	waitFor(t, 15*time.Second, "ClusterIP through the proxy-only agent (topologyKeys: this node)", func() bool {
		got, err := httpGet(url)
		return err == nil && got == "outside-pod"
	})
	// The seed's topologyKeys: no endpoint in this node's zone (the node
	// has none) and no "*" → no route, refused at once; adding "*" after
	// the zone key routes again.
	s.mustKubectl("apply", "-f", writeFile(t, manifest(`["topology.kubernetes.io/zone"]`)))
	waitFor(t, 15*time.Second, "topologyKeys without a match refuses", func() bool {
		_, err := httpGet(url)
		return err != nil && strings.Contains(err.Error(), "refused")
	})
	s.mustKubectl("apply", "-f", writeFile(t, manifest(`["topology.kubernetes.io/zone", "*"]`)))
	waitFor(t, 15*time.Second, `topologyKeys falling back to "*"`, func() bool {
		got, err := httpGet(url)
		return err == nil && got == "outside-pod"
	})
	if out, _, _ := s.kubectl("get", "nodes", "-o", "name"); strings.Contains(out, "proxy-node") {
		t.Errorf("a proxy-only agent registered a node:\n%s\n%s", out, a.log.String())
	}
}

// --proxy-mode iptables serves seed 001's service as nftables mode does;
// switching the node back to nftables removes every iptables rule of
// ours, and the service keeps answering.
func TestProxyIptablesMode(t *testing.T) {
	s := startUp(t, "--proxy-mode", "iptables")
	c := s.client()
	waitNodeReady(t, c, "node-1", s.log.String)
	s.mustKubectl("apply", "-f", examples("seed001-services.yaml"))
	s.mustKubectl("apply", "-f", examples("seed001-deployment.yaml"))
	if out, errOut, err := s.kubectl("rollout", "status", "deployment/example-app-deployment", "--timeout=60s"); err != nil {
		t.Fatalf("rollout status: %v\n%s%s", err, out, errOut)
	}
	names := map[string]bool{}
	for _, p := range runningPods(t, c, "default", "app=example-app") {
		names[p.Name] = true
	}
	ip := strings.TrimSpace(s.mustKubectl("get", "svc", "example-app", "-o", "jsonpath={.spec.clusterIP}"))
	nodePort := strings.TrimSpace(s.mustKubectl("get", "svc", "example-app", "-o", "jsonpath={.spec.ports[0].nodePort}"))
	mysql := strings.TrimSpace(s.mustKubectl("get", "svc", "mysql-service", "-o", "jsonpath={.spec.clusterIP}"))
	url := "http://" + net.JoinHostPort(ip, "3000") + "/hostname"
	spread := func(what string) {
		t.Helper()
		waitFor(t, 15*time.Second, what+": ClusterIP answers", func() bool {
			got, err := httpGet(url)
			return err == nil && names[got]
		})
		seen := map[string]int{}
		for i := 0; i < 60; i++ {
			got, err := httpGet(url)
			if err != nil || !names[got] {
				t.Fatalf("%s: request %d: %q %v\n%s", what, i, got, err, lastLines(s.log.String(), 30))
			}
			seen[got]++
		}
		if len(seen) != 3 {
			t.Errorf("%s: 60 requests reached %d of 3 pods: %v", what, len(seen), seen)
		}
		if got, err := httpGet("http://" + net.JoinHostPort("192.0.2.10", nodePort) + "/hostname"); err != nil || !names[got] {
			t.Errorf("%s: NodePort %s: %q %v", what, nodePort, got, err)
		}
		start := time.Now()
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(mysql, "3306"), 3*time.Second)
		if err == nil {
			conn.Close()
			t.Errorf("%s: a service without endpoints accepted a connection", what)
		} else if took := time.Since(start); took > 500*time.Millisecond || !strings.Contains(err.Error(), "refused") {
			t.Errorf("%s: service without endpoints: %v after %v, want refused at once", what, err, took)
		}
	}
	spread("iptables mode")
	if out, err := exec.Command("iptables-save", "-t", "nat").CombinedOutput(); err != nil || !strings.Contains(string(out), "PORTAL-") {
		t.Errorf("iptables mode left no PORTAL- chains in nat: %v\n%s", err, out)
	}
	if err := exec.Command("nft", "list", "table", "ip", "portal-proxy").Run(); err == nil {
		t.Error("iptables mode: the nftables table portal-proxy exists")
	}

	// The same node in nftables mode: the other mode's rules go.
	s.stop()
	for i, a := range s.extra {
		if a == "iptables" {
			s.extra[i] = "nftables"
		}
	}
	s.start()
	waitFor(t, 30*time.Second, "iptables rules removed after switching to nftables", func() bool {
		out, err := exec.Command("iptables-save").CombinedOutput()
		return err == nil && !strings.Contains(string(out), "PORTAL-")
	})
	spread("nftables mode after iptables")
}
