package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/portal-net/portal/internal/testutil/portalproc"
)

// dnsServer is one DNS server under test, a child process on loopback.
type dnsServer struct {
	name string
	proc portalproc.Process
	addr string // where it answers, 127.0.0.1:port
	args []string
}

// portalArgs runs portal's agent as a DNS server only, fed by informers of
// the benchmark's API server.
func portalArgs(kubeconfig, addr, upstream, metrics, dir string) []string {
	return []string{"agent", "--dns-only", "--kubeconfig", kubeconfig,
		"--dns-address", addr, "--dns-upstream", upstream,
		"--node-name", "bench", "--dns-metrics-bind-address", metrics,
		"--root-dir", filepath.Join(dir, "root"), "--run-dir", filepath.Join(dir, "run")}
}

// corefile is CoreDNS's configuration as a cluster runs it (kubernetes
// plugin, forward, cache 30), bound to one loopback port; its metrics go
// to another loopback port.
func corefile(kubeconfig string, port int, upstream, metrics string) string {
	var b strings.Builder
	fmt.Fprintf(&b, ".:%d {\n", port)
	b.WriteString("    bind 127.0.0.1\n")
	fmt.Fprintf(&b, "    kubernetes %s in-addr.arpa ip6.arpa {\n", zone)
	fmt.Fprintf(&b, "        kubeconfig %s\n", kubeconfig)
	b.WriteString("        pods insecure\n")
	b.WriteString("        fallthrough in-addr.arpa ip6.arpa\n")
	b.WriteString("        ttl 5\n")
	b.WriteString("    }\n")
	fmt.Fprintf(&b, "    forward . %s\n", upstream)
	b.WriteString("    cache 30\n")
	fmt.Fprintf(&b, "    prometheus %s\n", metrics)
	b.WriteString("}\n")
	return b.String()
}

// freePort is a loopback port free for both UDP and TCP at the time of
// the call (DNS servers take both).
func freePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			pc.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no loopback port free for both UDP and TCP")
}

func freePorts(n int) ([]int, error) {
	out := make([]int, 0, n)
	for len(out) < n {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		dup := false
		for _, q := range out {
			dup = dup || q == p
		}
		if !dup {
			out = append(out, p)
		}
	}
	return out, nil
}

func hostPort(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }

// keepLog writes a server's log to dir (if set).
func keepLog(dir string, s *dnsServer) {
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "bench: logs: %v\n", err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, s.name+".log"), []byte(s.proc.Log.String()), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "bench: logs: %v\n", err)
	}
}
