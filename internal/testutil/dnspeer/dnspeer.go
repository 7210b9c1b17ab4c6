// Package dnspeer holds what the DNS benchmark (bench/dns), the CoreDNS
// differential test (test/compat) and the e2e tests share to run DNS
// servers side by side on loopback: portal's and CoreDNS's command lines,
// ports free for both UDP and TCP, and a fake upstream resolver.
package dnspeer

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"
)

// Zone is the cluster domain both servers serve.
const Zone = "cluster.local"

// PortalArgs runs portal's agent as the cluster DNS server alone on addr,
// fed by the informers of kubeconfig's API, forwarding to upstream;
// metrics "" turns its metrics off; dir holds its state.
func PortalArgs(kubeconfig, addr, upstream, metrics, node, dir string) []string {
	return []string{"agent", "--dns-only", "--kubeconfig", kubeconfig,
		"--dns-address", addr, "--dns-upstream", upstream,
		"--node-name", node, "--dns-metrics-bind-address", metrics,
		"--root-dir", filepath.Join(dir, "root"), "--run-dir", filepath.Join(dir, "run")}
}

// Corefile is CoreDNS as a cluster runs it (kubernetes plugin with pods
// insecure and TTL 5, forward to upstream) on 127.0.0.1:port, plus extra
// directives (e.g. "cache 30", "prometheus 127.0.0.1:9153").
func Corefile(kubeconfig string, port int, upstream string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, ".:%d {\n", port)
	b.WriteString("    bind 127.0.0.1\n")
	fmt.Fprintf(&b, "    kubernetes %s in-addr.arpa ip6.arpa {\n", Zone)
	fmt.Fprintf(&b, "        kubeconfig %s\n", kubeconfig)
	b.WriteString("        pods insecure\n")
	b.WriteString("        fallthrough in-addr.arpa ip6.arpa\n")
	b.WriteString("        ttl 5\n")
	b.WriteString("    }\n")
	fmt.Fprintf(&b, "    forward . %s\n", upstream)
	for _, e := range extra {
		fmt.Fprintf(&b, "    %s\n", e)
	}
	b.WriteString("}\n")
	return b.String()
}

// FreePorts returns n distinct loopback ports free for both UDP and TCP
// at the time of the call (DNS servers take both).
func FreePorts(n int) ([]int, error) {
	out := make([]int, 0, n)
	for tries := 0; len(out) < n; tries++ {
		if tries > 20*n {
			return nil, fmt.Errorf("no %d loopback ports free for both UDP and TCP", n)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err != nil {
			continue
		}
		pc.Close()
		dup := false
		for _, q := range out {
			dup = dup || q == port
		}
		if !dup {
			out = append(out, port)
		}
	}
	return out, nil
}

// HostPort is 127.0.0.1:p.
func HostPort(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }

// Upstream is a fake resolver on 127.0.0.1 (UDP): an A record for each of
// its names (NODATA for their other types), NXDOMAIN for any other name,
// never an authority section.
type Upstream struct {
	Addr    string
	srv     *dns.Server
	names   map[string]netip.Addr
	ttl     uint32
	queries atomic.Int64
}

// StartUpstream serves names (fully qualified, lower case) with ttl.
func StartUpstream(names map[string]netip.Addr, ttl uint32) (*Upstream, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fake upstream: %w", err)
	}
	u := &Upstream{Addr: pc.LocalAddr().String(), names: names, ttl: ttl}
	started := make(chan struct{})
	u.srv = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(u.serve), NotifyStartedFunc: func() { close(started) }}
	errc := make(chan error, 1)
	go func() { errc <- u.srv.ActivateAndServe() }()
	select {
	case <-started:
		return u, nil
	case err := <-errc:
		return nil, fmt.Errorf("fake upstream: %w", err)
	}
}

// Answer is the upstream's reply to req.
func (u *Upstream) Answer(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	q := req.Question[0]
	ip, ok := u.names[dns.CanonicalName(q.Name)]
	switch {
	case !ok:
		m.Rcode = dns.RcodeNameError
	case q.Qtype == dns.TypeA:
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: u.ttl}, A: ip.AsSlice()}}
	}
	return m
}

func (u *Upstream) serve(w dns.ResponseWriter, req *dns.Msg) {
	u.queries.Add(1)
	_ = w.WriteMsg(u.Answer(req))
}

// Queries is how many questions the upstream has seen.
func (u *Upstream) Queries() int64 { return u.queries.Load() }

// Stop shuts the upstream down.
func (u *Upstream) Stop() { _ = u.srv.Shutdown() }
