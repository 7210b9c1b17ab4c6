package e2e

import (
	"strings"
	"testing"
)

// The seed 002 busybox pod with hostname and subdomain, and the seed 000
// service environment variables in a pod started after the service.
func TestAgentBusyboxHostnameAndServiceEnv(t *testing.T) {
	s := startServer(t)
	a := startAgent(t, s, "node-1", "")
	waitNodeReady(t, s.client(), "node-1", a.log.String)
	s.mustKubectl("apply", "-f", seed("002-subdomain.yaml"))
	s.mustKubectl("create", "service", "clusterip", "redis-master", "--tcp=6379:6379")
	s.mustKubectl("run", "env-pod", "--image=busybox", "--restart=Never", "--", "sh", "-c", "env; sleep 3600")
	for _, p := range []string{"busybox1", "env-pod"} {
		if out, errOut, err := s.kubectl("wait", "--for=condition=Ready", "pod/"+p, "--timeout=60s"); err != nil {
			t.Fatalf("wait %s: %v %s%s\nagent log:\n%s", p, err, out, errOut, a.log.String())
		}
	}
	if got := strings.TrimSpace(s.mustKubectl("exec", "busybox1", "--", "hostname")); got != "busybox-1" {
		t.Errorf("hostname in busybox1 = %q, want busybox-1", got)
	}
	hosts := s.mustKubectl("exec", "busybox1", "--", "cat", "/etc/hosts")
	if !strings.Contains(hosts, "busybox-1.default-subdomain.default.svc.cluster.local\tbusybox-1") {
		t.Errorf("/etc/hosts:\n%s", hosts)
	}
	resolv := s.mustKubectl("exec", "busybox1", "--", "cat", "/etc/resolv.conf")
	for _, want := range []string{"search default.svc.cluster.local svc.cluster.local cluster.local", "nameserver 10.0.0.10", "options ndots:5"} {
		if !strings.Contains(resolv, want) {
			t.Errorf("resolv.conf lacks %q:\n%s", want, resolv)
		}
	}
	ip := strings.TrimSpace(s.mustKubectl("get", "svc", "redis-master", "-o", "jsonpath={.spec.clusterIP}"))
	logs := s.mustKubectl("logs", "env-pod")
	for _, want := range []string{
		"REDIS_MASTER_SERVICE_HOST=" + ip, "REDIS_MASTER_SERVICE_PORT=6379",
		"REDIS_MASTER_PORT=tcp://" + ip + ":6379", "REDIS_MASTER_PORT_6379_TCP=tcp://" + ip + ":6379",
		"REDIS_MASTER_PORT_6379_TCP_PROTO=tcp", "REDIS_MASTER_PORT_6379_TCP_PORT=6379",
		"REDIS_MASTER_PORT_6379_TCP_ADDR=" + ip, "KUBERNETES_SERVICE_HOST=10.0.0.1",
	} {
		if !strings.Contains(logs, want+"\n") {
			t.Errorf("env of env-pod lacks %s:\n%s", want, logs)
		}
	}
}
