package compat

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/portal-net/portal/internal/testutil/portalproc"
)

const zone = "cluster.local"

// portalArgs runs portal's agent as the cluster DNS server alone.
func portalArgs(kubeconfig, addr, upstream, dir string) []string {
	return []string{"agent", "--dns-only", "--kubeconfig", kubeconfig,
		"--dns-address", addr, "--dns-upstream", upstream,
		"--node-name", "compat", "--dns-metrics-bind-address", "",
		"--root-dir", filepath.Join(dir, "root"), "--run-dir", filepath.Join(dir, "run")}
}

// corefile is CoreDNS as a cluster runs it, without the cache: answers
// must reflect the kubernetes plugin, not what an earlier question cached.
func corefile(kubeconfig string, port int, upstream string) string {
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
	b.WriteString("}\n")
	return b.String()
}

// freePort is a loopback port free for both UDP and TCP at the time of
// the call.
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

// exchange asks addr one question over UDP, again over TCP if truncated.
func exchange(ctx context.Context, addr string, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c := &dns.Client{Net: "udp", Timeout: 3 * time.Second}
	r, _, err := c.ExchangeContext(ctx, m, addr)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, m, addr)
	}
	return r, err
}

// waitAnswers polls addr until name has the A record want, or the process
// exits, or limit passes.
func waitAnswers(ctx context.Context, p *portalproc.Process, addr, name string, want netip.Addr, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-p.Exited():
			return fmt.Errorf("exited before answering:\n%s", portalproc.LastLines(p.Log.String(), 20))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		qctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		r, err := exchange(qctx, addr, name, dns.TypeA)
		cancel()
		if err != nil {
			last = err.Error()
		} else {
			last = dns.RcodeToString[r.Rcode]
			for _, rr := range r.Answer {
				if a, ok := rr.(*dns.A); ok && a.A.Equal(want.AsSlice()) {
					return nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no A %s for %s within %s (last: %s):\n%s", want, name, limit, last, portalproc.LastLines(p.Log.String(), 20))
}

// serviceCIDR is the API server's service range (portalproc's).
var serviceCIDR = netip.MustParsePrefix("10.0.0.0/16")
