package dns

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestClusterAnswersOverUDPAndTCP(t *testing.T) {
	up := startUpstream(t, upAnswer)
	_, addr := startServer(t, Config{Resolver: newFakeResolver(t), Upstreams: []netip.AddrPort{up.addr}}, nil)
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		answer []string
		ns     []string
	}{
		{"A", "kubernetes.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess,
			[]string{"kubernetes.default.svc.cluster.local. 5 IN A 10.0.0.1"}, []string{}},
		{"NODATA", "kubernetes.default.svc.cluster.local.", dns.TypeAAAA, dns.RcodeSuccess,
			[]string{}, []string{testSOA}},
		{"NXDOMAIN", "nosuch.default.svc.cluster.local.", dns.TypeA, dns.RcodeNameError,
			[]string{}, []string{testSOA}},
		{"in-zone CNAME not chased upstream", "internal.prod.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess,
			[]string{"internal.prod.svc.cluster.local. 5 IN CNAME kubernetes.default.svc.cluster.local."}, []string{}},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				resp := query(t, network, addr, tt.qname, tt.qtype, 0)
				if resp.Rcode != tt.rcode {
					t.Errorf("rcode %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tt.rcode])
				}
				if !slices.Equal(strs(resp.Answer), tt.answer) {
					t.Errorf("answer %q, want %q", strs(resp.Answer), tt.answer)
				}
				if !slices.Equal(strs(resp.Ns), tt.ns) {
					t.Errorf("authority %q, want %q", strs(resp.Ns), tt.ns)
				}
				if !resp.Authoritative || resp.Truncated {
					t.Errorf("flags aa=%v tc=%v, want aa and not tc", resp.Authoritative, resp.Truncated)
				}
			})
		}
	}
	if got := up.asked(); len(got) != 0 {
		t.Errorf("cluster names went upstream: %q", got)
	}
}

func TestTruncation(t *testing.T) {
	_, addr := startServer(t, Config{Resolver: newFakeResolver(t), Upstreams: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}}, nil)
	tests := []struct {
		network string
		edns    uint16 // 0: no OPT record
		wantTC  bool
		maxSize int // the reply must fit in this many bytes
	}{
		{"udp", 0, true, 512},
		{"udp", 100, true, 512}, // below 512 counts as 512
		{"udp", 1232, true, 1232},
		{"udp", 4096, false, 4096},
		{"tcp", 0, false, dns.MaxMsgSize},
		{"tcp", 512, false, dns.MaxMsgSize},
	}
	for _, tt := range tests {
		t.Run(tt.network+"/"+strconvU(tt.edns), func(t *testing.T) {
			resp := query(t, tt.network, addr, "big.default.svc.cluster.local.", dns.TypeA, tt.edns)
			if resp.Truncated != tt.wantTC {
				t.Errorf("TC=%v, want %v", resp.Truncated, tt.wantTC)
			}
			n := len(resp.Answer)
			if tt.wantTC && (n == 0 || n >= 100) {
				t.Errorf("truncated reply has %d answers, want some but not all", n)
			}
			if !tt.wantTC && n != 100 {
				t.Errorf("whole reply has %d answers, want 100", n)
			}
			for _, rr := range resp.Answer {
				if _, ok := rr.(*dns.A); !ok {
					t.Errorf("answer record %v is not a whole A record", rr)
				}
			}
			resp.Compress = true
			if l := resp.Len(); l > tt.maxSize {
				t.Errorf("reply is %d bytes, more than %d", l, tt.maxSize)
			}
			opt := resp.IsEdns0()
			if (opt != nil) != (tt.edns > 0) {
				t.Fatalf("OPT in reply: %v, client sent one: %v", opt != nil, tt.edns > 0)
			}
			if opt != nil && opt.UDPSize() != maxUDPSize {
				t.Errorf("advertised UDP size %d, want %d", opt.UDPSize(), maxUDPSize)
			}
		})
	}
}

func strconvU(v uint16) string {
	if v == 0 {
		return "no-edns"
	}
	return "edns" + strconv.Itoa(int(v))
}

func TestForwardAndCache(t *testing.T) {
	up := startUpstream(t, upAnswer)
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	_, addr := startServer(t, Config{Resolver: newFakeResolver(t), Upstreams: []netip.AddrPort{up.addr}}, clock)

	first := query(t, "udp", addr, "example.com.", dns.TypeA, 0)
	clock.advance(10*time.Second + 300*time.Millisecond)
	second := query(t, "tcp", addr, "EXAMPLE.com.", dns.TypeA, 0)

	if got, want := strs(first.Answer), []string{"example.com. 300 IN A 93.184.216.34"}; !slices.Equal(got, want) {
		t.Errorf("first answer %q, want %q", got, want)
	}
	if got, want := strs(second.Answer), []string{"example.com. 290 IN A 93.184.216.34"}; !slices.Equal(got, want) {
		t.Errorf("cached answer %q, want %q", got, want)
	}
	if second.Question[0].Name != "EXAMPLE.com." {
		t.Errorf("question %q, want the client's spelling", second.Question[0].Name)
	}
	if !first.RecursionAvailable || first.Authoritative {
		t.Errorf("forwarded answer ra=%v aa=%v, want ra and not aa", first.RecursionAvailable, first.Authoritative)
	}
	if got, want := up.asked(), []string{"udp example.com. A"}; !slices.Equal(got, want) {
		t.Errorf("upstream asked %q, want %q", got, want)
	}

	// Past its TTL the entry is gone.
	clock.advance(300 * time.Second)
	query(t, "udp", addr, "example.com.", dns.TypeA, 0)
	if got := len(up.asked()); got != 2 {
		t.Errorf("upstream asked %d times after expiry, want 2", got)
	}
}

func TestNegativeCache(t *testing.T) {
	tests := []struct {
		name  string
		qname string
		qtype uint16
		rcode int
	}{
		{"NXDOMAIN", "nosuch.example.com.", dns.TypeA, dns.RcodeNameError},
		{"NODATA", "example.com.", dns.TypeAAAA, dns.RcodeSuccess},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := startUpstream(t, upAnswer)
			clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			_, addr := startServer(t, Config{Resolver: newFakeResolver(t), Upstreams: []netip.AddrPort{up.addr}}, clock)
			first := query(t, "udp", addr, tt.qname, tt.qtype, 0)
			clock.advance(20 * time.Second)
			second := query(t, "udp", addr, tt.qname, tt.qtype, 0)
			for _, r := range []*dns.Msg{first, second} {
				if r.Rcode != tt.rcode || len(r.Answer) != 0 {
					t.Errorf("rcode %s with %d answers, want %s and none", dns.RcodeToString[r.Rcode], len(r.Answer), dns.RcodeToString[tt.rcode])
				}
			}
			// SOA TTL 3600, MINIMUM 60: cached for 60 s, TTL counting down from 60.
			if soa := findSOA(second.Ns); soa == nil || soa.Hdr.Ttl != 40 {
				t.Errorf("cached authority %q, want the SOA with TTL 40", strs(second.Ns))
			}
			if got := len(up.asked()); got != 1 {
				t.Errorf("upstream asked %d times, want 1", got)
			}
			clock.advance(41 * time.Second)
			query(t, "udp", addr, tt.qname, tt.qtype, 0)
			if got := len(up.asked()); got != 2 {
				t.Errorf("upstream asked %d times after the negative TTL, want 2", got)
			}
		})
	}
}

func TestUpstreamFailover(t *testing.T) {
	// A UDP port with nobody behind it: the kernel refuses at once.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	pc.Close()

	tests := []struct {
		name   string
		modes  []upstreamMode // -1: the closed port
		rcode  int
		asked  []int // queries each upstream saw
		answer bool
	}{
		{"first answers", []upstreamMode{upAnswer, upAnswer}, dns.RcodeSuccess, []int{1, 0}, true},
		{"SERVFAIL fails over", []upstreamMode{upServfail, upAnswer}, dns.RcodeSuccess, []int{1, 1}, true},
		{"timeout fails over", []upstreamMode{upSilent, upAnswer}, dns.RcodeSuccess, []int{1, 1}, true},
		{"refused port fails over", []upstreamMode{-1, upAnswer}, dns.RcodeSuccess, []int{0, 1}, true},
		{"all fail", []upstreamMode{upServfail, upSilent}, dns.RcodeServerFailure, []int{1, 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ups []*fakeUpstream
			var addrs []netip.AddrPort
			for _, m := range tt.modes {
				if m < 0 {
					ups = append(ups, nil)
					addrs = append(addrs, closed)
					continue
				}
				u := startUpstream(t, m)
				ups = append(ups, u)
				addrs = append(addrs, u.addr)
			}
			_, addr := startServer(t, Config{Resolver: newFakeResolver(t), Upstreams: addrs}, nil)
			start := time.Now()
			resp := query(t, "udp", addr, "example.com.", dns.TypeA, 0)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("answer took %v, want it bounded by the forward timeout", took)
			}
			if resp.Rcode != tt.rcode || (len(resp.Answer) > 0) != tt.answer {
				t.Errorf("rcode %s answers %q, want %s", dns.RcodeToString[resp.Rcode], strs(resp.Answer), dns.RcodeToString[tt.rcode])
			}
			for i, u := range ups {
				if u != nil && len(u.asked()) != tt.asked[i] {
					t.Errorf("upstream %d asked %q, want %d queries", i, u.asked(), tt.asked[i])
				}
			}
		})
	}
}

func TestUpstreamTruncatedRetriesOverTCP(t *testing.T) {
	up := startUpstream(t, upAnswer)
	up.truncateUDP.Store(true)
	_, addr := startServer(t, Config{Resolver: newFakeResolver(t), Upstreams: []netip.AddrPort{up.addr}}, nil)
	resp := query(t, "tcp", addr, "big.example.com.", dns.TypeA, 0)
	if len(resp.Answer) != 100 || resp.Truncated {
		t.Errorf("got %d answers tc=%v, want 100 and whole", len(resp.Answer), resp.Truncated)
	}
	if got, want := up.asked(), []string{"tcp big.example.com. A", "udp big.example.com. A"}; !slices.Equal(got, want) {
		t.Errorf("upstream asked %q, want %q", got, want)
	}
	// Cached whole, cut for a UDP client.
	resp = query(t, "udp", addr, "big.example.com.", dns.TypeA, 0)
	if !resp.Truncated || len(resp.Answer) >= 100 {
		t.Errorf("UDP reply tc=%v with %d answers, want truncated", resp.Truncated, len(resp.Answer))
	}
}

func TestClusterNamesNeverForwarded(t *testing.T) {
	up := startUpstream(t, upAnswer)
	res := newFakeResolver(t)
	res.notOurs["ghost.default.svc.cluster.local."] = true
	_, addr := startServer(t, Config{Resolver: res, Upstreams: []netip.AddrPort{up.addr}}, nil)
	tests := []struct {
		qname string
		rcode int
	}{
		{"ghost.default.svc.cluster.local.", dns.RcodeServerFailure}, // the Resolver disowns it: still not ours to forward
		{"nosuch.default.svc.cluster.local.", dns.RcodeNameError},
		{"cluster.local.", dns.RcodeSuccess},
	}
	for _, tt := range tests {
		resp := query(t, "udp", addr, tt.qname, dns.TypeA, 0)
		if resp.Rcode != tt.rcode {
			t.Errorf("%s: rcode %s, want %s", tt.qname, dns.RcodeToString[resp.Rcode], dns.RcodeToString[tt.rcode])
		}
	}
	if got := up.asked(); len(got) != 0 {
		t.Errorf("upstream asked %q, want nothing", got)
	}
}

func TestExternalNameChase(t *testing.T) {
	tests := []struct {
		name   string
		qtype  uint16
		mode   upstreamMode
		answer []string
		asked  []string
	}{
		{"A is chased", dns.TypeA, upAnswer, []string{
			"my-database.prod.svc.cluster.local. 5 IN CNAME my-database.example.com.",
			"my-database.example.com. 300 IN A 192.0.2.10",
		}, []string{"udp my-database.example.com. A"}},
		{"AAAA without records: CNAME alone", dns.TypeAAAA, upAnswer, []string{
			"my-database.prod.svc.cluster.local. 5 IN CNAME my-database.example.com.",
		}, []string{"udp my-database.example.com. AAAA"}},
		{"TXT is not chased", dns.TypeTXT, upAnswer, []string{
			"my-database.prod.svc.cluster.local. 5 IN CNAME my-database.example.com.",
		}, []string{}},
		{"upstream down: CNAME alone", dns.TypeA, upServfail, []string{
			"my-database.prod.svc.cluster.local. 5 IN CNAME my-database.example.com.",
		}, []string{"udp my-database.example.com. A"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := startUpstream(t, tt.mode)
			_, addr := startServer(t, Config{Resolver: newFakeResolver(t), Upstreams: []netip.AddrPort{up.addr}}, nil)
			resp := query(t, "udp", addr, "my-database.prod.svc.cluster.local.", tt.qtype, 0)
			if resp.Rcode != dns.RcodeSuccess {
				t.Errorf("rcode %s, want NOERROR", dns.RcodeToString[resp.Rcode])
			}
			if !slices.Equal(strs(resp.Answer), tt.answer) {
				t.Errorf("answer %q, want %q", strs(resp.Answer), tt.answer)
			}
			if got := up.asked(); !slices.Equal(got, tt.asked) && !(len(got) == 0 && len(tt.asked) == 0) {
				t.Errorf("upstream asked %q, want %q", got, tt.asked)
			}
		})
	}
}

func TestAutopath(t *testing.T) {
	loopback := netip.MustParseAddr("127.0.0.1")
	nxdomain := []string{}
	tests := []struct {
		name      string
		autopath  bool
		clientNS  string // "": client unknown
		search    string // resolv.conf search line
		upstream  upstreamMode
		qname     string
		qtype     uint16
		rcode     int
		answer    []string
		upstreams []string
	}{
		{
			name: "external name in one query", autopath: true, clientNS: "default", upstream: upAnswer,
			qname: "example.com.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeSuccess,
			answer: []string{
				"example.com.default.svc.cluster.local. 300 IN CNAME example.com.",
				"example.com. 300 IN A 93.184.216.34",
			},
			upstreams: []string{"udp example.com. A"},
		},
		{
			name: "service of another namespace by short name", autopath: true, clientNS: "default", upstream: upAnswer,
			qname: "my-svc.other.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeSuccess,
			answer: []string{
				"my-svc.other.default.svc.cluster.local. 5 IN CNAME my-svc.other.svc.cluster.local.",
				"my-svc.other.svc.cluster.local. 5 IN A 10.0.0.5",
			},
		},
		{
			name: "node search domain before the bare name", autopath: true, clientNS: "default", upstream: upAnswer,
			search: "search corp.internal", qname: "host.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeSuccess,
			answer: []string{
				"host.default.svc.cluster.local. 30 IN CNAME host.corp.internal.",
				"host.corp.internal. 30 IN A 192.0.2.99",
			},
			upstreams: []string{"udp host.corp.internal. A"},
		},
		{
			name: "external NODATA answers with the CNAME", autopath: true, clientNS: "default", upstream: upAnswer,
			qname: "example.com.default.svc.cluster.local.", qtype: dns.TypeAAAA, rcode: dns.RcodeSuccess,
			answer:    []string{"example.com.default.svc.cluster.local. 60 IN CNAME example.com."},
			upstreams: []string{"udp example.com. AAAA"},
		},
		{
			name: "nothing found anywhere", autopath: true, clientNS: "default", upstream: upAnswer,
			qname: "nosuch.invalid.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
			answer: nxdomain, upstreams: []string{"udp nosuch.invalid. A"},
		},
		{
			name: "upstream failing: the original NXDOMAIN", autopath: true, clientNS: "default", upstream: upServfail,
			qname: "example.com.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
			answer: nxdomain, upstreams: []string{"udp example.com. A"},
		},
		{
			name: "unknown client", autopath: true, upstream: upAnswer,
			qname: "example.com.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, answer: nxdomain,
		},
		{
			name: "client of another namespace", autopath: true, clientNS: "prod", upstream: upAnswer,
			qname: "example.com.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, answer: nxdomain,
		},
		{
			name: "disabled", clientNS: "default", upstream: upAnswer,
			qname: "example.com.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, answer: nxdomain,
		},
		{
			name: "existing name is answered as is", autopath: true, clientNS: "default", upstream: upAnswer,
			qname: "kubernetes.default.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeSuccess,
			answer: []string{"kubernetes.default.svc.cluster.local. 5 IN A 10.0.0.1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := startUpstream(t, tt.upstream)
			res := newFakeResolver(t)
			if tt.clientNS != "" {
				res.namespaces[loopback] = tt.clientNS
			}
			reg := prometheus.NewRegistry()
			s, addr := startServer(t, Config{
				Resolver: res, Upstreams: []netip.AddrPort{up.addr}, Autopath: tt.autopath,
				ResolvConf: writeResolvConf(t, tt.search), Registry: reg,
			}, nil)
			resp := query(t, "udp", addr, tt.qname, tt.qtype, 0)
			if resp.Rcode != tt.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tt.rcode])
			}
			if !slices.Equal(strs(resp.Answer), tt.answer) {
				t.Errorf("answer %q, want %q", strs(resp.Answer), tt.answer)
			}
			if resp.Question[0].Name != tt.qname {
				t.Errorf("question %q, want %q", resp.Question[0].Name, tt.qname)
			}
			got := up.asked()
			if len(got) != len(tt.upstreams) || (len(got) > 0 && !slices.Equal(got, tt.upstreams)) {
				t.Errorf("upstream asked %q, want %q", got, tt.upstreams)
			}
			wantAP := 0.0
			if len(resp.Answer) > 0 && resp.Answer[0].Header().Rrtype == dns.TypeCNAME && resp.Answer[0].Header().Name == tt.qname {
				wantAP = 1
			}
			if got := testutil.ToFloat64(s.m.autopath.WithLabelValues("dns://" + addr)); got != wantAP {
				t.Errorf("coredns_autopath_success_count_total = %v, want %v", got, wantAP)
			}
		})
	}
}

func TestRequestErrors(t *testing.T) {
	_, addr := startServer(t, Config{Resolver: newFakeResolver(t), Upstreams: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}}, nil)
	q := dns.Question{Name: "kubernetes.default.svc.cluster.local.", Qtype: dns.TypeA, Qclass: dns.ClassINET}
	withOpcode := func(op int) *dns.Msg {
		m := new(dns.Msg)
		m.Id = dns.Id()
		m.Opcode = op
		m.Question = []dns.Question{q}
		return m
	}
	badVers := new(dns.Msg).SetQuestion(q.Name, q.Qtype)
	badVers.SetEdns0(1232, false)
	badVers.IsEdns0().SetVersion(1)
	tests := []struct {
		name  string
		msg   *dns.Msg
		rcode int
	}{
		{"two questions", &dns.Msg{MsgHdr: dns.MsgHdr{Id: 7}, Question: []dns.Question{q, q}}, dns.RcodeFormatError},
		{"no question", &dns.Msg{MsgHdr: dns.MsgHdr{Id: 8}}, dns.RcodeFormatError},
		{"UPDATE", withOpcode(dns.OpcodeUpdate), dns.RcodeNotImplemented},
		{"NOTIFY", withOpcode(dns.OpcodeNotify), dns.RcodeNotImplemented},
		{"STATUS", withOpcode(dns.OpcodeStatus), dns.RcodeNotImplemented},
		{"EDNS version 1", badVers, dns.RcodeBadVers},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				resp := exchange(t, network, addr, tt.msg)
				if resp.Rcode != tt.rcode {
					t.Errorf("rcode %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tt.rcode])
				}
				if len(resp.Answer) != 0 {
					t.Errorf("answers %q, want none", strs(resp.Answer))
				}
			})
		}
	}

	t.Run("garbage", func(t *testing.T) {
		c, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// A header announcing one question, followed by a label running off the end.
		if _, err := c.Write([]byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 40, 'a', 'b'}); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		if m.Id != 0x1234 || m.Rcode != dns.RcodeFormatError {
			t.Errorf("id %#x rcode %s, want 0x1234 FORMERR", m.Id, dns.RcodeToString[m.Rcode])
		}
	})
}

func TestMetrics(t *testing.T) {
	up := startUpstream(t, upAnswer)
	reg := prometheus.NewRegistry()
	_, addr := startServer(t, Config{Resolver: newFakeResolver(t), Upstreams: []netip.AddrPort{up.addr}, Registry: reg}, nil)
	query(t, "udp", addr, "kubernetes.default.svc.cluster.local.", dns.TypeA, 0)
	query(t, "udp", addr, "nosuch.default.svc.cluster.local.", dns.TypeA, 0)
	query(t, "tcp", addr, "example.com.", dns.TypeA, 0)
	query(t, "udp", addr, "example.com.", dns.TypeA, 0)
	query(t, "udp", addr, "example.com.", 65280, 0)

	server := "dns://" + addr
	want := `
# HELP coredns_dns_requests_total Counter of DNS requests made per zone, protocol and family.
# TYPE coredns_dns_requests_total counter
coredns_dns_requests_total{family="1",proto="tcp",server="SERVER",type="A",zone="."} 1
coredns_dns_requests_total{family="1",proto="udp",server="SERVER",type="A",zone="."} 1
coredns_dns_requests_total{family="1",proto="udp",server="SERVER",type="A",zone="cluster.local."} 2
coredns_dns_requests_total{family="1",proto="udp",server="SERVER",type="other",zone="."} 1
# HELP coredns_dns_responses_total Counter of response status codes.
# TYPE coredns_dns_responses_total counter
coredns_dns_responses_total{plugin="cache",rcode="NOERROR",server="SERVER",zone="."} 1
coredns_dns_responses_total{plugin="forward",rcode="NOERROR",server="SERVER",zone="."} 2
coredns_dns_responses_total{plugin="kubernetes",rcode="NOERROR",server="SERVER",zone="cluster.local."} 1
coredns_dns_responses_total{plugin="kubernetes",rcode="NXDOMAIN",server="SERVER",zone="cluster.local."} 1
# HELP coredns_cache_hits_total The count of cache hits.
# TYPE coredns_cache_hits_total counter
coredns_cache_hits_total{server="SERVER",type="success"} 1
# HELP coredns_cache_misses_total The count of cache misses.
# TYPE coredns_cache_misses_total counter
coredns_cache_misses_total{server="SERVER"} 2
# HELP coredns_cache_entries The number of elements in the cache.
# TYPE coredns_cache_entries gauge
coredns_cache_entries 2
# HELP coredns_forward_requests_total Counter of requests made per upstream.
# TYPE coredns_forward_requests_total counter
coredns_forward_requests_total{to="UPSTREAM"} 2
`
	want = strings.NewReplacer("SERVER", server, "UPSTREAM", up.addr.String()).Replace(want)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"coredns_dns_requests_total", "coredns_dns_responses_total", "coredns_cache_hits_total",
		"coredns_cache_misses_total", "coredns_cache_entries", "coredns_forward_requests_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "coredns_dns_request_duration_seconds"); err != nil || n != 3 {
		t.Errorf("request duration series: %d, %v; want 3", n, err)
	}
}

func TestDeadUpstreamIsTriedLast(t *testing.T) {
	dead := startUpstream(t, upSilent)
	live := startUpstream(t, upAnswer)
	_, addr := startServer(t, Config{Resolver: newFakeResolver(t), Upstreams: []netip.AddrPort{dead.addr, live.addr}}, nil)
	query(t, "udp", addr, "example.com.", dns.TypeA, 0) // pays one timeout
	start := time.Now()
	resp := query(t, "udp", addr, "www.example.com.", dns.TypeA, 0)
	if took := time.Since(start); took > 150*time.Millisecond {
		t.Errorf("second query took %v: the dead upstream was asked first again", took)
	}
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 2 {
		t.Errorf("rcode %s answer %q", dns.RcodeToString[resp.Rcode], strs(resp.Answer))
	}
	if got, want := dead.asked(), []string{"udp example.com. A"}; !slices.Equal(got, want) {
		t.Errorf("dead upstream asked %q, want %q", got, want)
	}
}

func TestConcurrentMissesShareOneUpstreamQuery(t *testing.T) {
	up := startUpstream(t, upAnswer)
	up.delay.Store(int64(200 * time.Millisecond))
	_, addr := startServer(t, Config{Resolver: newFakeResolver(t), Upstreams: []netip.AddrPort{up.addr}}, nil)
	var wg sync.WaitGroup
	answers := make([]int, 5)
	for i := range answers {
		wg.Go(func() {
			c := &dns.Client{Net: "udp", Timeout: 3 * time.Second}
			resp, _, err := c.Exchange(new(dns.Msg).SetQuestion("example.com.", dns.TypeA), addr)
			if err == nil {
				answers[i] = len(resp.Answer)
			}
		})
	}
	wg.Wait()
	if !slices.Equal(answers, []int{1, 1, 1, 1, 1}) {
		t.Errorf("answers per client %v, want one each", answers)
	}
	if got := up.asked(); len(got) != 1 {
		t.Errorf("upstream asked %q, want one query", got)
	}
}

func TestOwnAddressIsNotAnUpstream(t *testing.T) {
	// Learn a free port, then listen on it with that very address upstream.
	pcs, ln, own, err := bindPair("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for _, pc := range pcs {
		pc.Close()
	}
	ln.Close()
	up := startUpstream(t, upAnswer)
	s, err := New(Config{Resolver: newFakeResolver(t), Zone: "cluster.local", Upstreams: []netip.AddrPort{own, up.addr}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); s.Wait() }()
	if err := s.Start(ctx, []string{own.String()}); err != nil {
		t.Skipf("port %s was taken meanwhile: %v", own, err)
	}
	if got := s.fwd.list(); !slices.Equal(got, []netip.AddrPort{up.addr}) {
		t.Errorf("upstreams %v, want only %v", got, up.addr)
	}
	start := time.Now()
	resp := query(t, "udp", own.String(), "example.com.", dns.TypeA, 0)
	if len(resp.Answer) != 1 || time.Since(start) > 150*time.Millisecond {
		t.Errorf("answer %q after %v", strs(resp.Answer), time.Since(start))
	}
}
