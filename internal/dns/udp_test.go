package dns

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// rawExchange sends pkt over UDP from src (an address of lo) to addr and
// returns the answer's bytes; nil when none came within wait.
func rawExchange(t testing.TB, src, addr string, pkt []byte, wait time.Duration) []byte {
	t.Helper()
	c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(src), 0)),
		net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		t.Fatal(err)
	}
	return buf[:n]
}

func packed(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unpacked(t testing.TB, b []byte) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatalf("answer does not unpack: %v", err)
	}
	return m
}

// TestRepeatedQueries pins what a repeated question gets over UDP, where
// the server reuses packed answers: the same bytes with the asker's ID,
// a changed record at once, and never another asker's or an upstream's
// answer.
func TestRepeatedQueries(t *testing.T) {
	const kube = "kubernetes.default.svc.cluster.local."
	t.Run("same answer, own ID, counted", func(t *testing.T) {
		res := newFakeResolver(t)
		reg := prometheus.NewRegistry()
		_, addr := startServer(t, Config{Resolver: res, Registry: reg}, nil)
		var first []byte
		for i := range 5 {
			m := new(dns.Msg).SetQuestion(kube, dns.TypeA)
			m.Id = uint16(1000 + i)
			got := rawExchange(t, "127.0.0.1", addr, packed(t, m), 3*time.Second)
			if got == nil {
				t.Fatal("no answer")
			}
			if id := uint16(got[0])<<8 | uint16(got[1]); id != m.Id {
				t.Fatalf("answer ID %d, query ID %d", id, m.Id)
			}
			if first == nil {
				first = got
			} else if !bytes.Equal(got[2:], first[2:]) {
				t.Fatalf("answer %d differs from the first:\n%v\n%v", i, unpacked(t, got), unpacked(t, first))
			}
		}
		if a := unpacked(t, first).Answer; len(a) != 1 || a[0].(*dns.A).A.String() != "10.0.0.1" {
			t.Errorf("answer %q", strs(a))
		}
		if n := res.calls.Load(); n != 1 {
			t.Errorf("Resolver asked %d times for 5 equal queries, want 1", n)
		}
		server := "dns://" + addr
		want := strings.NewReplacer("SERVER", server).Replace(`
# HELP coredns_dns_requests_total Counter of DNS requests made per zone, protocol and family.
# TYPE coredns_dns_requests_total counter
coredns_dns_requests_total{family="1",proto="udp",server="SERVER",type="A",zone="cluster.local."} 5
# HELP coredns_dns_responses_total Counter of response status codes.
# TYPE coredns_dns_responses_total counter
coredns_dns_responses_total{plugin="kubernetes",rcode="NOERROR",server="SERVER",zone="cluster.local."} 5
`)
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "coredns_dns_requests_total", "coredns_dns_responses_total"); err != nil {
			t.Error(err)
		}
	})

	t.Run("a change is answered at once", func(t *testing.T) {
		res := newFakeResolver(t)
		_, addr := startServer(t, Config{Resolver: res}, nil)
		ask := func() []string { return strs(query(t, "udp", addr, kube, dns.TypeA, 0).Answer) }
		if got := ask(); !slices.Equal(got, []string{kube + " 5 IN A 10.0.0.1"}) {
			t.Fatalf("before: %q", got)
		}
		ask()
		res.set(t, kube, kube+" 5 IN A 10.0.0.2")
		if got := ask(); !slices.Equal(got, []string{kube + " 5 IN A 10.0.0.2"}) {
			t.Errorf("after the change: %q", got)
		}
	})

	t.Run("buffer size, flags and case ask different questions", func(t *testing.T) {
		_, addr := startServer(t, Config{Resolver: newFakeResolver(t)}, nil)
		big := "big.default.svc.cluster.local."
		for range 2 {
			if m := query(t, "udp", addr, big, dns.TypeA, 0); !m.Truncated || len(m.Answer) == 100 {
				t.Fatalf("512-byte answer: tc=%v with %d records, want truncated", m.Truncated, len(m.Answer))
			}
			if m := query(t, "udp", addr, big, dns.TypeA, 4096); m.Truncated || len(m.Answer) != 100 {
				t.Fatalf("4096-byte answer: tc=%v with %d records, want all 100", m.Truncated, len(m.Answer))
			}
			noRD := new(dns.Msg).SetQuestion(kube, dns.TypeA)
			noRD.RecursionDesired = false
			if m := exchange(t, "udp", addr, noRD); m.RecursionDesired {
				t.Fatal("RD echoed set for a query without it")
			}
			if m := query(t, "udp", addr, kube, dns.TypeA, 0); !m.RecursionDesired {
				t.Fatal("RD not echoed")
			}
			upper := strings.ToUpper(kube)
			if m := query(t, "udp", addr, upper, dns.TypeA, 0); m.Question[0].Name != upper {
				t.Fatalf("question echoed as %q, asked %q", m.Question[0].Name, upper)
			}
		}
	})

	t.Run("ExternalName chase asks the Resolver and upstream again", func(t *testing.T) {
		up := startUpstream(t, upAnswer)
		res := newFakeResolver(t)
		_, addr := startServer(t, Config{Resolver: res, Upstreams: []netip.AddrPort{up.addr}}, nil)
		for range 3 {
			if m := query(t, "udp", addr, "my-database.prod.svc.cluster.local.", dns.TypeA, 0); len(m.Answer) != 2 {
				t.Fatalf("answer %q, want CNAME and A", strs(m.Answer))
			}
		}
		if n := res.calls.Load(); n != 3 {
			t.Errorf("Resolver asked %d times for 3 chased queries, want 3 (a chased answer is not reused)", n)
		}
	})

	t.Run("autopath answers each client for itself", func(t *testing.T) {
		up := startUpstream(t, upAnswer)
		res := newFakeResolver(t)
		res.namespaces[netip.MustParseAddr("127.0.0.2")] = "default"
		_, addr := startServer(t, Config{Resolver: res, Upstreams: []netip.AddrPort{up.addr}, Autopath: true}, nil)
		m := new(dns.Msg).SetQuestion("example.com.default.svc.cluster.local.", dns.TypeA)
		for range 2 {
			if got := unpacked(t, rawExchange(t, "127.0.0.1", addr, packed(t, m), 3*time.Second)); got.Rcode != dns.RcodeNameError {
				t.Fatalf("unknown client: %s %q, want NXDOMAIN", dns.RcodeToString[got.Rcode], strs(got.Answer))
			}
		}
		got := unpacked(t, rawExchange(t, "127.0.0.2", addr, packed(t, m), 3*time.Second))
		if got.Rcode != dns.RcodeSuccess || len(got.Answer) != 2 {
			t.Errorf("pod client: %s %q, want the autopath CNAME and A", dns.RcodeToString[got.Rcode], strs(got.Answer))
		}
	})

	t.Run("malformed and answers", func(t *testing.T) {
		_, addr := startServer(t, Config{Resolver: newFakeResolver(t)}, nil)
		m := new(dns.Msg).SetQuestion(kube, dns.TypeA)
		m.Response = true
		if got := rawExchange(t, "127.0.0.1", addr, packed(t, m), 300*time.Millisecond); got != nil {
			t.Errorf("an answer was answered: %v", unpacked(t, got))
		}
		if got := rawExchange(t, "127.0.0.1", addr, []byte{1, 2, 3}, 300*time.Millisecond); got != nil {
			t.Errorf("3 bytes were answered: %x", got)
		}
		for range 2 {
			got := rawExchange(t, "127.0.0.1", addr, []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 40, 'a', 'b'}, 3*time.Second)
			if m := unpacked(t, got); m.Id != 0x1234 || m.Rcode != dns.RcodeFormatError {
				t.Errorf("id %#x rcode %s, want 0x1234 FORMERR", m.Id, dns.RcodeToString[m.Rcode])
			}
		}
	})
}

func TestQuestionLen(t *testing.T) {
	m := new(dns.Msg).SetQuestion("a.bc.", dns.TypeA)
	m.SetEdns0(1232, false)
	pkt := packed(t, m)
	if got := questionLen(pkt); got != 1+1+1+2+1+4 {
		t.Errorf("plain question: %d, want 10", got)
	}
	ptr := slices.Clone(pkt[:headerLen])
	ptr = append(ptr, 1, 'a', 0xc0, 12, 0, 1, 0, 1)
	two := slices.Clone(pkt)
	two[5] = 2
	for name, b := range map[string][]byte{"pointer": ptr, "two questions": two, "cut short": pkt[:headerLen+3], "header only": pkt[:headerLen]} {
		if got := questionLen(b); got != 0 {
			t.Errorf("%s: %d, want 0", name, got)
		}
	}
}
