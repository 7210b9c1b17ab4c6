package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/portal-net/portal/internal/lb/speaker"
)

// Three nodes and an outside client on one L2 segment: a LoadBalancer
// address from the pool answers the client through the node elected to
// announce it (the client's ARP entry holds that node's MAC); eTP Local
// keeps the client's address; when the announcing node's link goes
// down, another node takes the address over and the client's requests
// resume — the outage and the failed requests are measured (issue 9's
// goal: under 2 s).
func TestLoadBalancerL2Failover(t *testing.T) {
	requirePortal(t)
	l := newLab(t, 3)
	nodes := []string{"node-1", "node-2", "node-3"}
	// The first address of the pool is one node-1 wins, so the test
	// knows whom to cut off; the second serves the eTP Local service.
	a := netip.MustParseAddr("198.51.100.240")
	for speaker.Winner(a, nodes) != "node-1" {
		a = a.Next()
	}
	b := a.Next()
	s := l.startServer("--lb-pool", a.String()+"-"+b.String())
	var agents []*agentProc
	for i := 1; i <= 3; i++ {
		agents = append(agents, l.join(s, i, nodes[i-1]))
	}
	logs := func() string {
		var b strings.Builder
		for i, ag := range agents {
			fmt.Fprintf(&b, "%s:\n%s\n", nodes[i], lastLines(ag.log.String(), 40))
		}
		fmt.Fprintf(&b, "server:\n%s\n", lastLines(s.log.String(), 30))
		return b.String()
	}
	c := s.client()
	for i, ag := range agents {
		waitNodeReady(t, c, nodes[i], ag.log.String)
	}
	const clientIP = "198.51.100.200"
	outside := outsideClient(t, clientIP)

	// Pods on node-2 and node-3 only: node-1 is the one that fails.
	var m strings.Builder
	for _, n := range []string{"node-2", "node-3"} {
		m.WriteString(webPodOn("web-"+n, n, "app: web"))
	}
	m.WriteString(`apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`)
	s.mustKubectl("apply", "-f", writeFile(t, m.String()))
	waitFor(t, 15*time.Second, "web gets "+a.String(), func() bool {
		out, _, _ := s.kubectl("get", "svc", "web", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}")
		return strings.TrimSpace(out) == a.String()
	})
	// Created after web has its address, so it gets the second one.
	s.mustKubectl("apply", "-f", writeFile(t, `apiVersion: v1
kind: Service
metadata: {name: web-local}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`))
	if out, errOut, err := s.kubectl("wait", "--for=condition=Ready", "pod", "-l", "app=web", "--timeout=60s"); err != nil {
		t.Fatalf("pods not ready: %v %s%s\n%s", err, out, errOut, logs())
	}
	addrA := net.JoinHostPort(a.String(), "80")
	waitFor(t, 20*time.Second, "the client reaches "+addrA, func() bool {
		_, err := nsHTTP(outside, addrA, "/hostname", time.Second)
		return err == nil
	})
	mac := func(i int) string {
		// sysfs shows the mounting namespace's links: ask netlink.
		out, err := l.in(i, "ip", "-o", "link", "show", "eth0")
		if err != nil {
			t.Fatal(err)
		}
		_, after, _ := strings.Cut(out, "link/ether ")
		return strings.Fields(after + " ?")[0]
	}
	neigh := func(ip netip.Addr) string {
		out, _ := exec.Command("nsenter", "--net="+outside, "--", "ip", "neigh", "show", ip.String()).CombinedOutput()
		return string(out)
	}
	announced := func() string {
		out, _, _ := s.kubectl("get", "events", "--field-selector", "involvedObject.name=web,reason=AddressAnnounced", "-o", "jsonpath={.items[*].message}")
		return out
	}
	if got := neigh(a); !strings.Contains(got, mac(1)) {
		t.Errorf("client's neighbour entry for %s: %q, want node-1's MAC %s (node-2 %s, node-3 %s); events %q\n%s",
			a, got, mac(1), mac(2), mac(3), announced(), logs())
	}
	eventBy := time.Now().Add(10 * time.Second)
	for !strings.Contains(announced(), a.String()+" announced by node node-1 on eth0 (ARP)") {
		if time.Now().After(eventBy) {
			t.Fatalf("no AddressAnnounced event naming node-1 within 10s; events %q\n%s", announced(), logs())
		}
		time.Sleep(100 * time.Millisecond)
	}

	t.Run("externalTrafficPolicy Local keeps the client address", func(t *testing.T) {
		var addrB string
		waitFor(t, 15*time.Second, "web-local gets "+b.String(), func() bool {
			out, _, _ := s.kubectl("get", "svc", "web-local", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}")
			return strings.TrimSpace(out) == b.String()
		})
		addrB = net.JoinHostPort(b.String(), "80")
		var got string
		waitFor(t, 15*time.Second, "the client reaches "+addrB, func() bool {
			var err error
			got, err = nsHTTP(outside, addrB, "/clientip", time.Second)
			return err == nil
		})
		if host, _, _ := net.SplitHostPort(got); host != clientIP {
			t.Errorf("/clientip through %s = %q, want the client's own %s", addrB, got, clientIP)
		}
		// Only node-2 or node-3 have an endpoint, so one of them announces.
		if n := neigh(b); strings.Contains(n, mac(1)) || !(strings.Contains(n, mac(2)) || strings.Contains(n, mac(3))) {
			t.Errorf("eTP Local address %s announced by a node without an endpoint: %q", b, n)
		}
	})

	// Failover: requests every 20 ms (300 ms time-out, new connection
	// each) while node-1's link goes down.
	type result struct {
		at time.Time
		ok bool
	}
	var results []result
	deadline := time.Now().Add(20 * time.Second)
	var down time.Time
	for time.Now().Before(deadline) {
		_, err := nsHTTP(outside, addrA, "/hostname", 300*time.Millisecond)
		results = append(results, result{time.Now(), err == nil})
		if down.IsZero() && len(results) >= 25 {
			if out, err := exec.Command("ip", "link", "set", "lab1", "down").CombinedOutput(); err != nil {
				t.Fatalf("link down: %v %s", err, out)
			}
			down = time.Now()
		}
		// Stop after 2 s of answers following the cut.
		if !down.IsZero() {
			var lastFail time.Time
			for _, r := range results {
				if !r.ok && r.at.After(down) {
					lastFail = r.at
				}
			}
			if !lastFail.IsZero() && time.Since(lastFail) > 2*time.Second {
				break
			}
			if lastFail.IsZero() && time.Since(down) > 5*time.Second {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	failed, sent := 0, 0
	var resumed time.Time
	for _, r := range results {
		if r.at.Before(down) {
			if !r.ok {
				t.Errorf("a request failed before the cut")
			}
			continue
		}
		sent++
		if !r.ok {
			failed++
			resumed = time.Time{}
		} else if resumed.IsZero() {
			resumed = r.at
		}
	}
	if resumed.IsZero() {
		t.Fatalf("traffic to %s did not resume within 20 s of node-1's link going down (%d of %d failed)\n%s", a, failed, sent, logs())
	}
	outage := resumed.Sub(down)
	t.Logf("failover: traffic to %s flowing again %v after node-1's link went down; %d of %d requests failed (one every ~20 ms, 300 ms time-out)", a, outage.Round(time.Millisecond), failed, sent)
	// The goal (< 2 s) is judged by bench/lb on a quiet machine; here a
	// looser bound keeps a loaded CI machine from failing on scheduling
	// delays while still catching a failover that waits for the control
	// plane (40 s) or a client's ARP time-out.
	if outage > 3*time.Second {
		t.Errorf("failover took %v (goal < 2 s, bound here 3 s)", outage)
	}
	if n := neigh(a); strings.Contains(n, mac(1)) || !(strings.Contains(n, mac(2)) || strings.Contains(n, mac(3))) {
		t.Errorf("client's neighbour entry after the failover: %q (node-1 %s, node-2 %s, node-3 %s)", n, mac(1), mac(2), mac(3))
	}
}
