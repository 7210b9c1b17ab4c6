package dns

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestParseResolvConf(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		servers []string
		search  []string
	}{
		{"typical", "nameserver 10.0.0.2\nnameserver fe80::1%eth0\nsearch corp.internal. example.com\noptions ndots:1\n",
			[]string{"10.0.0.2:53", "[fe80::1]:53"}, []string{"corp.internal.", "example.com."}},
		{"comments and junk", "# nameserver 1.1.1.1\nnameserver bogus\nnameserver 192.0.2.1 ; trailing\n",
			[]string{"192.0.2.1:53"}, nil},
		{"last search line wins", "search a.example\ndomain B.example\n", nil, []string{"b.example."}},
		{"root search ignored", "search .\n", nil, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := parseResolvConf(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ns := range rc.nameservers {
				got = append(got, ns.String())
			}
			if !slices.Equal(got, tt.servers) {
				t.Errorf("nameservers %q, want %q", got, tt.servers)
			}
			if len(rc.search) != len(tt.search) || (len(tt.search) > 0 && !slices.Equal(rc.search, tt.search)) {
				t.Errorf("search %q, want %q", rc.search, tt.search)
			}
		})
	}
}

func TestNewUpstreams(t *testing.T) {
	res := newFakeResolver(t)
	s, err := New(Config{Resolver: res, Zone: "Cluster.Local", ResolvConf: writeResolvConf(t, "nameserver 192.0.2.53", "search corp.internal")})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.fwd.list(); !slices.Equal(got, []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")}) {
		t.Errorf("upstreams from resolv.conf %v", got)
	}
	if s.zone != "cluster.local." || !slices.Equal(s.search, []string{"corp.internal."}) {
		t.Errorf("zone %q search %q", s.zone, s.search)
	}
	// No upstream anywhere: the zone is still served, other names fail.
	for _, rc := range []string{writeResolvConf(t, "search x"), "/nonexistent/resolv.conf"} {
		s, err := New(Config{Resolver: res, Zone: "cluster.local", ResolvConf: rc})
		if err != nil {
			t.Fatalf("resolv.conf %s: %v", rc, err)
		}
		if len(s.fwd.list()) != 0 {
			t.Errorf("upstreams %v from %s", s.fwd.list(), rc)
		}
		w := &discard{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}}
		s.ServeDNS(w, new(dns.Msg).SetQuestion("example.com.", dns.TypeA))
		if w.last == nil || w.last.Rcode != dns.RcodeServerFailure {
			t.Errorf("external name without upstreams: %v, want SERVFAIL", w.last)
		}
	}
	for _, cfg := range []Config{
		{Resolver: res, Zone: "", Upstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")}},
		{Zone: "cluster.local", Upstreams: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", cfg)
		}
	}
}

func TestWithoutLoops(t *testing.T) {
	ap := netip.MustParseAddrPort
	ups := []netip.AddrPort{ap("127.0.0.1:53"), ap("10.0.0.10:53"), ap("127.0.0.53:53"), ap("192.0.2.1:53"), ap("10.0.0.10:5353")}
	tests := []struct {
		name   string
		listen []netip.AddrPort
		want   []netip.AddrPort
	}{
		{"ours dropped", []netip.AddrPort{ap("127.0.0.1:53"), ap("10.0.0.10:53")},
			[]netip.AddrPort{ap("127.0.0.53:53"), ap("192.0.2.1:53"), ap("10.0.0.10:5353")}},
		{"wildcard covers loopback", []netip.AddrPort{ap("0.0.0.0:53")},
			[]netip.AddrPort{ap("10.0.0.10:53"), ap("192.0.2.1:53"), ap("10.0.0.10:5353")}},
		{"other port kept", []netip.AddrPort{ap("127.0.0.1:1053")}, ups},
	}
	for _, tt := range tests {
		if got := withoutLoops(ups, tt.listen); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestCacheBounded(t *testing.T) {
	c := newCache(2)
	now := time.Unix(1_700_000_000, 0)
	put := func(name string) {
		m := new(dns.Msg).SetQuestion(name, dns.TypeA)
		m.Answer = rrs(t, name+" 60 IN A 192.0.2.1")
		c.put(cacheKey{name: name, qtype: dns.TypeA, class: dns.ClassINET}, m, now)
	}
	has := func(name string) bool {
		_, ok := c.get(cacheKey{name: name, qtype: dns.TypeA, class: dns.ClassINET}, now)
		return ok
	}
	put("a.")
	put("b.")
	has("a.") // a is now the most recently used
	put("c.")
	if !has("a.") || has("b.") || !has("c.") || c.len() != 2 {
		t.Errorf("after eviction: a=%v b=%v c=%v len=%d, want a and c only", has("a."), has("b."), has("c."), c.len())
	}
	// Zero TTLs and SERVFAILs are not kept.
	m := new(dns.Msg).SetQuestion("z.", dns.TypeA)
	m.Answer = rrs(t, "z. 0 IN A 192.0.2.1")
	c.put(cacheKey{name: "z."}, m, now)
	m = new(dns.Msg).SetQuestion("s.", dns.TypeA)
	m.Rcode = dns.RcodeServerFailure
	c.put(cacheKey{name: "s."}, m, now)
	if _, ok := c.get(cacheKey{name: "z."}, now); ok {
		t.Error("TTL 0 answer cached")
	}
	if _, ok := c.get(cacheKey{name: "s."}, now); ok {
		t.Error("SERVFAIL cached")
	}
}

func TestServeDNSDirect(t *testing.T) {
	s, err := New(Config{Resolver: newFakeResolver(t), Zone: "cluster.local", Upstreams: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}})
	if err != nil {
		t.Fatal(err)
	}
	w := &discard{remote: &net.TCPAddr{IP: net.ParseIP("fd00::1"), Port: 4000}}
	s.ServeDNS(w, new(dns.Msg).SetQuestion("kubernetes.default.svc.cluster.local.", dns.TypeA))
	if w.last == nil || len(w.last.Answer) != 1 {
		t.Fatalf("reply %v, want one answer", w.last)
	}
	// A response sent to us is never answered.
	w.last = nil
	resp := new(dns.Msg).SetQuestion("kubernetes.default.svc.cluster.local.", dns.TypeA)
	resp.Response = true
	s.ServeDNS(w, resp)
	if w.last != nil {
		t.Errorf("answered a response: %v", w.last)
	}
}

// BenchmarkServeDNS measures one query through the handler, the reply
// packed as the real writer would, without sockets.
func BenchmarkServeDNS(b *testing.B) {
	up := startUpstream(b, upAnswer)
	s, err := New(Config{Resolver: newFakeResolver(b), Zone: "cluster.local", Upstreams: []netip.AddrPort{up.addr}, ResolvConf: writeResolvConf(b)})
	if err != nil {
		b.Fatal(err)
	}
	w := &discard{remote: &net.UDPAddr{IP: net.IPv4(10, 244, 1, 7), Port: 40000}}
	for _, bc := range []struct{ name, qname string }{
		{"external-cached", "example.com."},
		{"in-zone", "kubernetes.default.svc.cluster.local."},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := new(dns.Msg).SetQuestion(bc.qname, dns.TypeA)
			s.ServeDNS(w, req) // fills the cache
			if w.last == nil || len(w.last.Answer) != 1 {
				b.Fatalf("reply %v, want one answer", w.last)
			}
			b.ReportAllocs()
			for b.Loop() {
				s.ServeDNS(w, req)
			}
		})
	}
}

func TestListenAndServeLifecycle(t *testing.T) {
	newServer := func() *Server {
		s, err := New(Config{Resolver: newFakeResolver(t), Zone: "cluster.local", Upstreams: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// Returns when its context ends.
	s := newServer()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.ListenAndServe(ctx, []string{"127.0.0.1:0"}) }()
	deadline := time.Now().Add(2 * time.Second)
	for len(s.Addrs()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if len(s.Addrs()) != 1 {
		t.Fatalf("not listening: %v", s.Addrs())
	}
	if err := s.Start(ctx, []string{"127.0.0.1:0"}); err == nil {
		t.Error("second Start succeeded")
	}
	resp := query(t, "tcp", s.Addrs()[0].String(), "kubernetes.default.svc.cluster.local.", dns.TypeA, 0)
	if len(resp.Answer) != 1 {
		t.Errorf("answer %q", strs(resp.Answer))
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("ListenAndServe: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ListenAndServe did not return after its context ended")
	}

	// An address in use fails Start and leaves nothing bound.
	busy, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	s = newServer()
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	err = s.Start(ctx, []string{"127.0.0.1:0", busy.LocalAddr().String()})
	if err == nil {
		t.Fatal("Start on a busy address succeeded")
	}
	if err := s.Wait(); err != nil {
		t.Errorf("Wait after a failed Start: %v", err)
	}
}

// BenchmarkUDP measures in-zone answers through the real UDP sockets,
// with 16 clients each keeping one query in flight (client and server
// share the machine, as in bench/dns).
func BenchmarkUDP(b *testing.B) {
	_, addr := startServer(b, Config{Resolver: newFakeResolver(b)}, nil)
	const clients = 16
	conns := make([]*dns.Conn, clients)
	for i := range conns {
		c, err := dns.Dial("udp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	req := new(dns.Msg).SetQuestion("kubernetes.default.svc.cluster.local.", dns.TypeA)
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := c.WriteMsg(req); err != nil {
					b.Error(err)
					return
				}
				if _, err := c.ReadMsg(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
