package e2e

import (
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// `portal up --lb-pool`: a LoadBalancer service gets an address from the
// pool, kubectl shows it as EXTERNAL-IP, and the node serves it; a service
// asking for an address outside the pool stays pending with an event and
// a condition saying why.
func TestLoadBalancerPool(t *testing.T) {
	// On a real node the pool's addresses are reachable through its
	// default route; this namespace has none, so a veth whose peer is
	// down (it drops whatever it is given) stands in for it: the proxy's
	// rules rewrite the packets before they would leave.
	for _, args := range [][]string{{"link", "add", "lbtest0", "type", "veth", "peer", "name", "lbtest1"}, {"link", "set", "lbtest0", "up"},
		{"route", "add", "192.0.2.192/27", "dev", "lbtest0"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", "lbtest0").Run() })
	s := startUp(t, "--lb-pool", "192.0.2.200-192.0.2.201")
	waitNodeReady(t, s.client(), "node-1", s.log.String)
	names, _ := deployApp(t, s, "lbweb", netexecApp("lbweb", 2)+`---
apiVersion: v1
kind: Service
metadata: {name: lbweb-lb}
spec:
  type: LoadBalancer
  selector: {app: lbweb}
  ports: [{name: http, port: 80, targetPort: 8080}]
`, s.log.String)
	var ip string
	waitFor(t, 15*time.Second, "an address in status.loadBalancer.ingress", func() bool {
		ip = strings.TrimSpace(s.mustKubectl("get", "svc", "lbweb-lb", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"))
		return ip != ""
	})
	if ip != "192.0.2.200" {
		t.Fatalf("ingress %q, want the pool's first address 192.0.2.200", ip)
	}
	if out := s.mustKubectl("get", "svc", "lbweb-lb"); !strings.Contains(out, "192.0.2.200") {
		t.Errorf("kubectl get svc does not show the EXTERNAL-IP:\n%s", out)
	}
	url := "http://" + net.JoinHostPort(ip, "80") + "/hostname"
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := httpGet(url)
		if err == nil && names[got] {
			break
		}
		if time.Now().After(deadline) {
			nft, _ := exec.Command("nft", "list", "ruleset").CombinedOutput()
			t.Fatalf("the load-balancer address does not answer on the node: %q %v\nnft:\n%s\nsvc:\n%s", got, err, nft,
				s.mustKubectl("get", "svc", "lbweb-lb", "-o", "yaml"))
		}
		time.Sleep(100 * time.Millisecond)
	}

	s.mustKubectl("apply", "-f", writeFile(t, `apiVersion: v1
kind: Service
metadata: {name: lb-outside}
spec:
  type: LoadBalancer
  loadBalancerIP: 198.51.100.7
  selector: {app: lbweb}
  ports: [{port: 80, targetPort: 8080}]
`))
	waitFor(t, 15*time.Second, "a condition and an event for the address outside the pool", func() bool {
		out, _, _ := s.kubectl("describe", "svc", "lb-outside")
		return strings.Contains(out, "AddressNotAssigned") && strings.Contains(out, "198.51.100.7")
	})
	reason := s.mustKubectl("get", "svc", "lb-outside", "-o", `jsonpath={.status.conditions[?(@.type=="portal.dev/AddressAssigned")].reason}`)
	if strings.TrimSpace(reason) != "AddressNotInPool" {
		t.Errorf("condition reason %q, want AddressNotInPool", reason)
	}
	if out := s.mustKubectl("get", "svc", "lb-outside"); !strings.Contains(out, "<pending>") {
		t.Errorf("kubectl get svc should show <pending>:\n%s", out)
	}

	// Pools are API objects: kubectl shows the default one (--lb-pool),
	// explains the kind, and a pool applied later serves the pending
	// service at once.
	waitFor(t, 15*time.Second, "the default pool with one address assigned", func() bool {
		out, _, _ := s.kubectl("get", "addresspools")
		return strings.Contains(out, "192.0.2.200-192.0.2.201") && strings.Contains(out, "default") &&
			strings.Contains(strings.Join(strings.Fields(out), " "), "192.0.2.200-192.0.2.201 true 1 1 ")
	})
	if out := s.mustKubectl("explain", "addresspool.spec.autoAssign"); !strings.Contains(out, "autoAssign") || !strings.Contains(out, "boolean") {
		t.Errorf("kubectl explain:\n%s", out)
	}
	s.mustKubectl("apply", "-f", writeFile(t, `apiVersion: portal.dev/v1
kind: AddressPool
metadata: {name: lab}
spec:
  addresses: [198.51.100.7/32]
  autoAssign: false
`))
	waitFor(t, 15*time.Second, "lb-outside on 198.51.100.7 from pool lab", func() bool {
		out, _, _ := s.kubectl("get", "svc", "lb-outside", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}")
		return strings.TrimSpace(out) == "198.51.100.7"
	})
	if out := s.mustKubectl("describe", "svc", "lb-outside"); !strings.Contains(out, "AddressAssigned") || !strings.Contains(out, "pool lab") {
		t.Errorf("describe after the pool was added:\n%s", out)
	}

	// The default pool has two addresses: the third service waits, with
	// an event saying the pool is exhausted.
	for _, name := range []string{"lb-second", "lb-third"} {
		s.mustKubectl("create", "service", "loadbalancer", name, "--tcp=80:8080")
	}
	waitFor(t, 15*time.Second, "lb-third pending: pool exhausted", func() bool {
		out, _, _ := s.kubectl("describe", "svc", "lb-third")
		reason, _, _ := s.kubectl("get", "svc", "lb-third", "-o", `jsonpath={.status.conditions[?(@.type=="portal.dev/AddressAssigned")].reason}`)
		return strings.Contains(out, "AddressNotAssigned") && strings.Contains(out, "no free IPv4 address") && strings.TrimSpace(reason) == "AddressPoolExhausted"
	})
	if ip := strings.TrimSpace(s.mustKubectl("get", "svc", "lb-second", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}")); ip != "192.0.2.201" {
		t.Errorf("lb-second got %q, want 192.0.2.201", ip)
	}
}
