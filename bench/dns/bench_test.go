package main

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/portal-net/portal/internal/testutil/dnspeer"
)

func TestParseOptions(t *testing.T) {
	o, err := parseOptions(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.services != 1000 || o.concurrency != 16 || o.duration != 5*time.Second || o.portal != "bin/portal" || o.coredns != "" {
		t.Errorf("defaults = %+v", o)
	}
	o, err = parseOptions([]string{"-services", "10000", "-concurrency", "4", "-duration", "2s", "-coredns", "/x/coredns"}, io.Discard)
	if err != nil || o.services != 10000 || o.concurrency != 4 || o.duration != 2*time.Second || o.coredns != "/x/coredns" {
		t.Errorf("got %+v, %v", o, err)
	}
	for _, bad := range [][]string{
		{"-services", "0"},
		{"-services", "60000"},
		{"-concurrency", "0"},
		{"-duration", "0s"},
		{"-warmup", "-1s"},
		{"-nope"},
		{"extra"},
	} {
		if _, err := parseOptions(bad, io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func res(answered int, elapsed time.Duration, lat ...time.Duration) loadResult {
	return loadResult{answered: answered, elapsed: elapsed, lat: lat}
}

func TestRows(t *testing.T) {
	o, _ := parseOptions([]string{"-services", "100", "-headless", "10"}, io.Discard)
	ms := time.Millisecond
	ours := &figures{start: 300 * ms, rss: 40, anon: 25, file: 15}
	peer := &figures{start: 900 * ms, rss: 100, anon: 70, file: 30}
	for k := range numKinds {
		ours.loads[k] = &kindFigures{res: res(250000, 5*time.Second, ms/10, ms/5)}
		peer.loads[k] = &kindFigures{res: res(100000, 5*time.Second, ms/5, ms/2)}
	}
	ours.loads[kindHeadless].res = res(150000, 5*time.Second, ms/10, ms)
	ours.loads[kindClusterIP].cpu = 2500 * ms
	peer.loads[kindClusterIP].cpu = 4 * time.Second
	ours.loads[kindExternal].upstream = 0
	peer.loads[kindExternal].upstream = 3
	peer.loads[kindNXDomain] = &kindFigures{err: errors.New("wrong answer: rcode NOERROR\nmore")}

	got := rows(o, ours, peer, true)
	byMetric := map[string][]string{}
	for _, r := range got {
		if len(r) != len(tableHeader) {
			t.Fatalf("row %q has %d cells, header %d", r, len(r), len(tableHeader))
		}
		byMetric[r[0]] = r
	}
	want := map[string][]string{
		"start → first correct answer (exec → A of a ClusterIP service), 100 svc + 10 headless":     {"300 ms", "900 ms", "0.33×", ""},
		"queries/s, A of a ClusterIP service (UDP, 16 clients, 5s)":                                 {"50000/s", "20000/s", "2.50×", "≥ 2× CoreDNS: met"},
		"latency p50 / p99, A of a ClusterIP service":                                               {"0.100 ms / 0.200 ms", "0.200 ms / 0.500 ms", "0.40×", "p99 ≤ CoreDNS's: met"},
		"server CPU per answer (cores busy), A of a ClusterIP service":                              {"10.0 µs (0.50 cores)", "40.0 µs (0.80 cores)", "0.25×", ""},
		"server CPU per answer (cores busy), SRV of a named port":                                   {"not measured", "not measured", "", ""},
		"queries/s, A of a headless service (3 endpoints) (UDP, 16 clients, 5s)":                    {"30000/s", "20000/s", "1.50×", "≥ 2× CoreDNS: MISSED"},
		"latency p50 / p99, A of a headless service (3 endpoints)":                                  {"0.100 ms / 1.000 ms", "0.200 ms / 0.500 ms", "2.00×", "p99 ≤ CoreDNS's: MISSED"},
		"queries/s, NXDOMAIN in the zone (UDP, 16 clients, 5s)":                                     {"50000/s", "failed: wrong answer: rcode NOERROR", "", "≥ 2× CoreDNS (not judged)"},
		"queries/s, external name (forwarded, cached) (UDP, 16 clients, 5s)":                        {"50000/s", "20000/s", "2.50×", ""},
		"upstream queries during the measured external run (after warm-up; 0 = all from the cache)": {"0", "3", "", ""},
		"RSS after the loads, 100 svc + 10 headless":                                                {"40 MB", "100 MB", "0.40×", "≤ ½ CoreDNS's (issue: at 10,000 svc): met"},
		"  of it anonymous (heap, stacks)":                                                          {"25 MB", "70 MB", "0.36×", ""},
		"  of it file pages (the binary's code and data touched)":                                   {"15 MB", "30 MB", "0.50×", ""},
	}
	for metric, cells := range want {
		r, ok := byMetric[metric]
		if !ok {
			t.Errorf("no row %q", metric)
			continue
		}
		if strings.Join(r[1:], " | ") != strings.Join(cells, " | ") {
			t.Errorf("%s:\n got %q\nwant %q", metric, r[1:], cells)
		}
	}

	// Without CoreDNS the peer column says so and no goal is judged.
	for _, r := range rows(o, ours, nil, false) {
		if r[2] != "not built" || r[3] != "" || strings.Contains(r[4], "met") {
			t.Errorf("row without peer: %q", r)
		}
	}
	// Timeouts show in the cell.
	ours.loads[kindClusterIP].res.timeouts = 7
	if r := rows(o, ours, peer, true)[1]; r[1] != "50000/s (7 timeouts)" {
		t.Errorf("timeouts cell = %q", r[1])
	}
}

func TestParseHeader(t *testing.T) {
	m := new(dns.Msg)
	m.SetQuestion("a.example.", dns.TypeA)
	m.Id = 0xbeef
	r := new(dns.Msg)
	r.SetRcode(m, dns.RcodeNameError)
	r.Truncated = true
	r.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "a.example.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: netip.MustParseAddr("192.0.2.1").AsSlice()}}
	b, err := r.Pack()
	if err != nil {
		t.Fatal(err)
	}
	h, ok := parseHeader(b)
	if want := (dnsHeader{id: 0xbeef, response: true, truncated: true, rcode: dns.RcodeNameError, ancount: 1}); !ok || h != want {
		t.Errorf("got %+v, %v; want %+v", h, ok, want)
	}
	if _, ok := parseHeader(b[:11]); ok {
		t.Error("short header accepted")
	}
}

func TestCheck(t *testing.T) {
	d := &data{clusterIPs: []netip.Addr{netip.MustParseAddr("10.0.0.20")}, headless: 1}
	a := func(name, ip string) dns.RR {
		return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: netip.MustParseAddr(ip).AsSlice()}
	}
	reply := func(q question, rcode int, rrs ...dns.RR) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		r := new(dns.Msg)
		r.SetRcode(m, rcode)
		r.Answer = rrs
		return r
	}
	svc := questions(kindClusterIP, d)[0]
	hl := questions(kindHeadless, d)[0]
	srv := questions(kindSRV, d)[0]
	nx := questions(kindNXDomain, d)[0]
	if svc.name != "svc-00000.bench-dns.svc.cluster.local." || srv.name != "_http._tcp.svc-00000.bench-dns.svc.cluster.local." ||
		hl.name != "hl-00000.bench-dns.svc.cluster.local." {
		t.Fatalf("names %q %q %q", svc.name, srv.name, hl.name)
	}
	hlAddrs := d.headlessAddrs(0)
	tests := []struct {
		name  string
		q     question
		reply *dns.Msg
		ok    bool
	}{
		{"ClusterIP", svc, reply(svc, dns.RcodeSuccess, a(svc.name, "10.0.0.20")), true},
		{"wrong ClusterIP", svc, reply(svc, dns.RcodeSuccess, a(svc.name, "10.0.0.21")), false},
		{"SERVFAIL", svc, reply(svc, dns.RcodeServerFailure), false},
		{"headless any order", hl, reply(hl, dns.RcodeSuccess, a(hl.name, hlAddrs[2].String()), a(hl.name, hlAddrs[0].String()), a(hl.name, hlAddrs[1].String())), true},
		{"headless missing one", hl, reply(hl, dns.RcodeSuccess, a(hl.name, hlAddrs[0].String()), a(hl.name, hlAddrs[1].String())), false},
		{"SRV priority and weight ignored", srv, reply(srv, dns.RcodeSuccess, &dns.SRV{Hdr: dns.RR_Header{Name: srv.name, Rrtype: dns.TypeSRV, Class: dns.ClassINET},
			Priority: 0, Weight: 100, Port: 80, Target: "SVC-00000.bench-dns.svc.cluster.local."}), true},
		{"SRV wrong port", srv, reply(srv, dns.RcodeSuccess, &dns.SRV{Hdr: dns.RR_Header{Name: srv.name, Rrtype: dns.TypeSRV, Class: dns.ClassINET},
			Port: 81, Target: "svc-00000.bench-dns.svc.cluster.local."}), false},
		{"NXDOMAIN", nx, reply(nx, dns.RcodeNameError), true},
		{"NODATA is not NXDOMAIN", nx, reply(nx, dns.RcodeSuccess), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := check(tt.q, tt.reply); (err == nil) != tt.ok {
				t.Errorf("check = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestCorefile(t *testing.T) {
	got := dnspeer.Corefile("/k/kubeconfig", 1053, "127.0.0.1:2053", "cache 30", "prometheus 127.0.0.1:9153")
	for _, line := range []string{".:1053 {", "bind 127.0.0.1", "kubernetes cluster.local in-addr.arpa ip6.arpa {",
		"kubeconfig /k/kubeconfig", "pods insecure", "fallthrough in-addr.arpa ip6.arpa", "ttl 5",
		"forward . 127.0.0.1:2053", "cache 30", "prometheus 127.0.0.1:9153"} {
		if !strings.Contains(got, "\n    "+line) && !strings.HasPrefix(got, line) && !strings.Contains(got, "\n        "+line) {
			t.Errorf("Corefile lacks %q:\n%s", line, got)
		}
	}
}

func TestSample(t *testing.T) {
	if got := sample(3, 8); len(got) != 3 {
		t.Errorf("sample(3,8) = %v", got)
	}
	got := sample(1000, 8)
	if len(got) != 8 || got[0] != 0 || got[7] != 999 {
		t.Errorf("sample(1000,8) = %v", got)
	}
}

// TestLoadAgainstFakeUpstream runs the load generator against the fake
// upstream itself (all on 127.0.0.1): every answer is counted, and a wrong
// expectation stops the run with errWrong.
func TestLoadAgainstFakeUpstream(t *testing.T) {
	up, err := startUpstream()
	if err != nil {
		t.Fatal(err)
	}
	defer up.Stop()
	d := &data{}
	qs := questions(kindExternal, d)
	if err := verify(context.Background(), up.Addr, qs, time.Second); err != nil {
		t.Fatal(err)
	}
	pool, err := packQuestions(qs)
	if err != nil {
		t.Fatal(err)
	}
	r, err := runLoad(context.Background(), up.Addr, pool, 4, 10*time.Second, time.Second, 2000)
	if err != nil {
		t.Fatal(err)
	}
	if r.answered+r.timeouts != 2000 || r.answered == 0 || len(r.lat) != r.answered {
		t.Errorf("answered %d, timeouts %d, %d latencies; want 2000 queries in all", r.answered, r.timeouts, len(r.lat))
	}
	if got := up.Queries(); got < 2000+int64(len(sample(len(qs), 8))) {
		t.Errorf("upstream saw %d queries", got)
	}

	pool[0].ancount = 2
	for i := range pool {
		pool[i] = pool[0]
	}
	if _, err := runLoad(context.Background(), up.Addr, pool, 2, 10*time.Second, time.Second, 100); !errors.Is(err, errWrong) {
		t.Errorf("wrong expectation: err = %v, want errWrong", err)
	}
	// An unknown name is NXDOMAIN, as the benchmark's external queries rely on.
	m, err := exchange(context.Background(), up.Addr, question{name: "other.example.org.", qtype: dns.TypeA}, time.Second)
	if err != nil || m.Rcode != dns.RcodeNameError {
		t.Errorf("unknown name: %v, %v", m, err)
	}
}
