package e2e

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// --proxy-mode userspace (seed 000's first mode): the seed's play-app
// service with three pods takes turns (rr); a NodePort and a UDP service
// answer; a service whose endpoints include one that refuses answers
// every request (the proxy retries another pod); a service switched to
// the sh scheduler by annotation keeps a client on one pod; switching the
// node back to nftables removes the userspace table.
func TestProxyUserspaceMode(t *testing.T) {
	s := startUp(t, "--proxy-mode", "userspace", "--scheduler", "rr")
	waitNodeReady(t, s.client(), "node-1", s.log.String)
	manifest := `apiVersion: apps/v1
kind: Deployment
metadata: {name: play-app}
spec:
  replicas: 3
  selector: {matchLabels: {app: play-app-link}}
  template:
    metadata: {labels: {app: play-app-link}}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        args: ["netexec", "--http-port=9000", "--udp-port=9001"]
        readinessProbe:
          httpGet: {path: /hostname, port: 9000}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: play-app-udp}
spec:
  type: NodePort
  selector: {app: play-app-link}
  ports: [{name: udp, port: 53, targetPort: 9001, protocol: UDP}]
`
	s.mustKubectl("apply", "-f", seed("000-play-app-svc.yaml"))
	s.mustKubectl("apply", "-f", writeFile(t, manifest))
	if out, errOut, err := s.kubectl("rollout", "status", "deployment/play-app", "--timeout=90s"); err != nil {
		t.Fatalf("rollout: %v\n%s%s\n%s", err, out, errOut, lastLines(s.log.String(), 40))
	}
	pods := runningPods(t, s.client(), "default", "app=play-app-link")
	names := map[string]bool{}
	for _, p := range pods {
		names[p.Name] = true
	}
	ip := strings.TrimSpace(s.mustKubectl("get", "svc", "play-app-svc", "-o", "jsonpath={.spec.clusterIP}"))
	url := "http://" + net.JoinHostPort(ip, "9000") + "/hostname"
	waitFor(t, 15*time.Second, "ClusterIP "+url+" through the userspace proxy", func() bool {
		got, err := httpGet(url)
		return err == nil && names[got]
	})

	t.Run("seed 000: three pods take turns (rr)", func(t *testing.T) {
		seen := map[string]int{}
		for i := range 30 {
			got, err := httpGet(url)
			if err != nil || !names[got] {
				t.Fatalf("request %d: %q %v", i, got, err)
			}
			seen[got]++
		}
		for name := range names {
			if seen[name] != 10 {
				t.Errorf("30 requests in turn over 3 pods: %v, want 10 each", seen)
				break
			}
		}
		if out, err := exec.Command("nft", "list", "table", "ip", "portal-userspace").CombinedOutput(); err != nil || !strings.Contains(string(out), ip+" . tcp . 9000") {
			t.Errorf("the userspace table does not redirect %s:9000: %v\n%s", ip, err, out)
		}
	})

	t.Run("UDP ClusterIP and NodePort", func(t *testing.T) {
		uip := strings.TrimSpace(s.mustKubectl("get", "svc", "play-app-udp", "-o", "jsonpath={.spec.clusterIP}"))
		np := strings.TrimSpace(s.mustKubectl("get", "svc", "play-app-udp", "-o", "jsonpath={.spec.ports[0].nodePort}"))
		for _, addr := range []string{net.JoinHostPort(uip, "53"), net.JoinHostPort("192.0.2.10", np)} {
			var got string
			var err error
			waitFor(t, 10*time.Second, "UDP "+addr, func() bool {
				got, err = udpAsk(addr, "hostname")
				return err == nil && names[got]
			})
		}
	})

	t.Run("a refusing endpoint is retried: 0 failed requests", func(t *testing.T) {
		// A service without selector whose slice lists the three pods and
		// a fourth address of one pod where nothing listens.
		slice := fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: flaky}
spec:
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: flaky-1
  labels: {kubernetes.io/service-name: flaky}
addressType: IPv4
ports: [{name: http, port: 9000, protocol: TCP}]
endpoints:
- addresses: ["%s"]
- addresses: ["%s"]
- addresses: ["%s"]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: flaky-2
  labels: {kubernetes.io/service-name: flaky}
addressType: IPv4
ports: [{name: http, port: 9999, protocol: TCP}]
endpoints:
- addresses: ["%s"]
`, pods[0].Status.PodIP, pods[1].Status.PodIP, pods[2].Status.PodIP, pods[0].Status.PodIP)
		s.mustKubectl("apply", "-f", writeFile(t, slice))
		fip := strings.TrimSpace(s.mustKubectl("get", "svc", "flaky", "-o", "jsonpath={.spec.clusterIP}"))
		furl := "http://" + net.JoinHostPort(fip, "80") + "/hostname"
		waitFor(t, 15*time.Second, "flaky service answers", func() bool {
			got, err := httpGet(furl)
			return err == nil && names[got]
		})
		failed := 0
		for i := range 60 {
			if got, err := httpGet(furl); err != nil || !names[got] {
				failed++
				t.Logf("request %d: %q %v", i, got, err)
			}
		}
		if failed > 0 {
			t.Errorf("%d of 60 requests failed with one of 4 endpoints refusing", failed)
		}
	})

	t.Run("sh by annotation keeps the client on one pod", func(t *testing.T) {
		s.mustKubectl("annotate", "svc", "play-app-svc", "portal.dev/scheduler=sh")
		time.Sleep(time.Second) // the proxy's next sync moves the service to a new listener
		waitFor(t, 15*time.Second, "one pod for every request under sh", func() bool {
			seen := map[string]bool{}
			for range 10 {
				got, err := httpGet(url)
				if err != nil || !names[got] {
					return false
				}
				seen[got] = true
			}
			return len(seen) == 1
		})
	})

	// A restart closes the listeners: open connections drop (no socket
	// hand-over) and new ones are refused until the new agent has synced.
	t.Run("restart: open connections drop, the service answers again", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "9000"), 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		t0 := time.Now()
		s.stop()
		stopped := time.Now()
		s.start()
		waitFor(t, 60*time.Second, "ClusterIP after the restart", func() bool {
			got, err := httpGet(url)
			return err == nil && names[got]
		})
		t.Logf("userspace mode: the service answered again %s after SIGTERM of portal up (%s after the new process started; server and agent both restart)",
			time.Since(t0).Round(10*time.Millisecond), time.Since(stopped).Round(10*time.Millisecond))
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := fmt.Fprintf(c, "GET /hostname HTTP/1.1\r\nHost: x\r\n\r\n"); err == nil {
			buf := make([]byte, 512)
			if n, err := c.Read(buf); err == nil && strings.Contains(string(buf[:n]), "200 OK") {
				t.Errorf("a connection opened before the restart still answers: the docs say it drops")
			}
		}
	})

	// The same node in nftables mode: the userspace table goes.
	s.stop()
	for i, a := range s.extra {
		if a == "userspace" {
			s.extra[i] = "nftables"
		}
	}
	s.start()
	waitFor(t, 30*time.Second, "userspace table removed after switching to nftables", func() bool {
		return exec.Command("nft", "list", "table", "ip", "portal-userspace").Run() != nil
	})
	waitFor(t, 30*time.Second, "ClusterIP through nftables after userspace", func() bool {
		got, err := httpGet(url)
		return err == nil && names[got]
	})
}
