package e2e

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/portal-net/portal/internal/testutil/dnspeer"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const dnsManifests = `
apiVersion: v1
kind: Namespace
metadata: {name: my-ns}
---
apiVersion: v1
kind: Namespace
metadata: {name: prod}
---
apiVersion: v1
kind: Service
metadata: {name: my-service, namespace: my-ns}
spec:
  selector: {app: web}
  ports:
  - {name: http, protocol: TCP, port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: my-ns, labels: {app: web}}
spec:
  containers:
  - name: web
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: ["netexec", "--http-port=8080"]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: my-ns}
spec:
  containers:
  - {name: client, image: busybox, command: ["sleep", "3600"]}
`

// TestClusterDNS asks the cluster DNS from the user's side: names from a
// pod through its resolv.conf (the seed's short and long service names,
// the seed 002 hostname/subdomain pod, the seed 000 ExternalName, an
// outside name through the node's upstream), and records straight from
// the kube-dns ClusterIP over UDP and TCP.
func TestClusterDNS(t *testing.T) {
	// The "internet": a resolver on the test's loopback; the addresses it
	// hands out are TEST-NET ones nothing sends to.
	up, err := dnspeer.StartUpstream(map[string]netip.Addr{"example.com.": netip.MustParseAddr("203.0.113.80"),
		"my.database.example.com.": netip.MustParseAddr("203.0.113.81")}, 60)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Stop)
	s := startUp(t, "--dns-upstream", up.Addr)
	c := s.client()
	waitNodeReady(t, c, "node-1", s.log.String)

	// kube-dns as Kubernetes has it: 10th service address, dns/dns-tcp.
	got := s.mustKubectl("get", "svc", "kube-dns", "-n", "kube-system", "-o", "jsonpath={.spec.clusterIP} {.spec.ports[*].name}")
	if got != "10.0.0.10 dns dns-tcp" {
		t.Fatalf("kube-dns service: %q", got)
	}
	if out, errOut, err := s.kubectlIn(dnsManifests, "apply", "-f", "-"); err != nil {
		t.Fatalf("apply: %v\n%s%s", err, out, errOut)
	}
	s.mustKubectl("apply", "-f", seed("002-subdomain.yaml"))
	s.mustKubectl("apply", "-f", seed("000-externalname.yaml"))
	if out, errOut, err := s.kubectl("wait", "--for=condition=Ready", "-n", "my-ns", "pod/web", "pod/client", "--timeout=60s"); err != nil {
		t.Fatalf("pods: %v\n%s%s", err, out, errOut)
	}
	if out, errOut, err := s.kubectl("wait", "--for=condition=Ready", "pod/busybox1", "--timeout=60s"); err != nil {
		t.Fatalf("busybox1: %v\n%s%s", err, out, errOut)
	}
	svcIP := s.mustKubectl("get", "svc", "my-service", "-n", "my-ns", "-o", "jsonpath={.spec.clusterIP}")
	busyboxIP := s.mustKubectl("get", "pod", "busybox1", "-o", "jsonpath={.status.podIP}")
	if rc := s.mustKubectl("exec", "-n", "my-ns", "client", "--", "cat", "/etc/resolv.conf"); !strings.Contains(rc, "nameserver 10.0.0.10") ||
		!strings.Contains(rc, "search my-ns.svc.cluster.local svc.cluster.local cluster.local") {
		t.Fatalf("pod resolv.conf:\n%s", rc)
	}

	nslookup := func(name string) string {
		out, errOut, _ := s.kubectl("exec", "-n", "my-ns", "client", "--", "busybox", "nslookup", name)
		return out + errOut
	}
	for _, tc := range []struct{ name, want string }{
		{"my-service", svcIP},
		{"my-service.my-ns.svc.cluster.local", svcIP},
		{"busybox-1.default-subdomain.default.svc.cluster.local", busyboxIP},
		{"my-service.prod.svc.cluster.local", "my.database.example.com"},
		{"example.com", "203.0.113.80"},
	} {
		// The first answer may wait for the DNS endpoint to be programmed.
		out := nslookup(tc.name)
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out, tc.want); out = nslookup(tc.name) {
			if time.Now().After(deadline) {
				t.Fatalf("nslookup %s: want %s in\n%s\nkube-dns slices:\n%s\nlog:\n%s", tc.name, tc.want, out,
					s.mustKubectl("get", "endpointslices", "-n", "kube-system", "-o", "wide"), lastLines(s.log.String(), 30))
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Logf("nslookup %s:\n%s", tc.name, out)
	}
	if out := nslookup("nosuch.my-ns.svc.cluster.local"); !strings.Contains(out, "NXDOMAIN") {
		t.Errorf("a missing name:\n%s", out)
	}
	// Through the C library's resolver (search list, ndots:5), as a
	// program connecting by name does. busybox nslookup applies the search
	// list only to names without a dot, so "my-service.my-ns" is asked
	// this way.
	for _, name := range []string{svcIP, "my-service", "my-service.my-ns", "my-service.my-ns.svc.cluster.local"} {
		out, errOut, err := s.kubectl("exec", "-n", "my-ns", "client", "--", "busybox", "wget", "-qO-", "http://"+name+"/hostname")
		if err != nil || strings.TrimSpace(out) != "web" {
			t.Errorf("wget http://%s/hostname: %q %v %s", name, out, err, errOut)
		}
	}

	// Straight at the ClusterIP from the node, UDP and TCP.
	ask := func(net, name string, qtype uint16) *dns.Msg {
		t.Helper()
		cl := &dns.Client{Net: net, Timeout: 2 * time.Second}
		r, _, err := cl.Exchange(new(dns.Msg).SetQuestion(name, qtype), "10.0.0.10:53")
		if err != nil {
			t.Fatalf("%s %s over %s: %v", dns.TypeToString[qtype], name, net, err)
		}
		return r
	}
	for _, proto := range []string{"udp", "tcp"} {
		r := ask(proto, "my-service.my-ns.svc.cluster.local.", dns.TypeA)
		if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != svcIP || r.Answer[0].Header().Ttl != 5 || !r.Authoritative {
			t.Errorf("A over %s: %v", proto, r)
		}
	}
	r := ask("udp", "_http._tcp.my-service.my-ns.svc.cluster.local.", dns.TypeSRV)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.SRV).Port != 80 || r.Answer[0].(*dns.SRV).Target != "my-service.my-ns.svc.cluster.local." ||
		len(r.Extra) != 1 || r.Extra[0].(*dns.A).A.String() != svcIP {
		t.Errorf("SRV: %v", r)
	}
	r = ask("udp", "my-service.my-ns.svc.cluster.local.", dns.TypeAAAA)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA {
		t.Errorf("AAAA of an IPv4 service (NODATA with SOA): %v", r)
	}
	if up.Queries() == 0 {
		t.Error("the upstream saw no query")
	}

	// The node answers DNS on its pod bridge address only: its outside
	// address (192.0.2.10, see hack/in-netns.sh) is no open resolver.
	ep := s.mustKubectl("get", "endpointslice", "kube-dns-node-1", "-n", "kube-system", "-o", "jsonpath={.endpoints[0].addresses[0]}")
	if !strings.HasPrefix(ep, "10.42.") {
		t.Errorf("kube-dns endpoint %q, want the node's pod bridge address", ep)
	}
	if conn, err := net.DialTimeout("tcp", "192.0.2.10:53", time.Second); err == nil {
		conn.Close()
		t.Error("DNS answers on the node's outside address")
	}

	// A new service is in DNS within a second of its creation.
	late := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: "my-ns"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
	start := time.Now()
	if _, err := c.CoreV1().Services("my-ns").Create(context.Background(), late, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		r := ask("udp", "late.my-ns.svc.cluster.local.", dns.TypeA)
		if len(r.Answer) == 1 {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("a new service not in DNS after %s: %v", time.Since(start), r)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("a new service answered %s after its create began", time.Since(start).Round(time.Millisecond))
}
