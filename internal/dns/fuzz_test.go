package dns

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FuzzServeDNS feeds arbitrary packets through the handler: it must not
// panic, must answer every query that parses with the query's ID, and the
// answer must fit the client's UDP buffer.
func FuzzServeDNS(f *testing.F) {
	seed := func(m *dns.Msg) {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(new(dns.Msg).SetQuestion("kubernetes.default.svc.cluster.local.", dns.TypeA))
	seed(new(dns.Msg).SetQuestion("big.default.svc.cluster.local.", dns.TypeA))
	seed(new(dns.Msg).SetQuestion("my-database.prod.svc.cluster.local.", dns.TypeA))
	seed(new(dns.Msg).SetQuestion("example.com.default.svc.cluster.local.", dns.TypeAAAA))
	seed(new(dns.Msg).SetQuestion("example.com.", dns.TypeA))
	m := new(dns.Msg).SetQuestion("big.default.svc.cluster.local.", dns.TypeA)
	m.SetEdns0(1400, true)
	seed(m)
	m = new(dns.Msg).SetQuestion("x.", dns.TypeA)
	m.Opcode = dns.OpcodeUpdate
	seed(m)

	up := startUpstream(f, upAnswer)
	res := newFakeResolver(f)
	client := netip.MustParseAddr("10.244.1.7")
	res.namespaces[client] = "default"
	s, err := New(Config{Resolver: res, Zone: "cluster.local", Upstreams: []netip.AddrPort{up.addr},
		ResolvConf: writeResolvConf(f, "search corp.internal"), Autopath: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req := new(dns.Msg)
		if req.Unpack(data) != nil {
			return // the dns.Server answers FORMERR before us
		}
		w := &discard{remote: &net.UDPAddr{IP: client.AsSlice(), Port: 40000}}
		s.ServeDNS(w, req)
		if req.Response {
			if w.last != nil {
				t.Fatal("answered a response")
			}
			return
		}
		if w.last == nil {
			t.Fatal("no answer")
		}
		if w.last.Id != req.Id {
			t.Fatalf("answer id %d, query id %d", w.last.Id, req.Id)
		}
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = min(max(int(opt.UDPSize()), dns.MinMsgSize), maxUDPSize)
		}
		if len(w.wire) > size {
			t.Fatalf("UDP answer of %d bytes for a %d byte buffer", len(w.wire), size)
		}
	})
}

// FuzzUDP sends arbitrary datagrams to a serving UDP socket, twice each
// (the second time with another ID), where repeated questions are answered
// from packed answers: every datagram with a query header gets an answer
// with its ID, and the repeat's bytes equal the first answer's but for the
// ID. Without upstreams every answer is a function of the packet alone.
func FuzzUDP(f *testing.F) {
	for _, m := range []*dns.Msg{
		new(dns.Msg).SetQuestion("kubernetes.default.svc.cluster.local.", dns.TypeA),
		new(dns.Msg).SetQuestion("big.default.svc.cluster.local.", dns.TypeA),
		new(dns.Msg).SetQuestion("nosuch.default.svc.cluster.local.", dns.TypeAAAA),
		new(dns.Msg).SetQuestion("example.com.", dns.TypeA),
		new(dns.Msg).SetQuestion("big.default.svc.cluster.local.", dns.TypeA).SetEdns0(1400, true),
	} {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 40, 'a', 'b'})
	_, addr := startServer(f, Config{Resolver: newFakeResolver(f)}, nil)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) < headerLen || pkt[2]&0x80 != 0 || len(pkt) > 4096 {
			return // never answered, or larger than a query we read
		}
		first := rawExchange(t, "127.0.0.1", addr, pkt, 2*time.Second)
		if first == nil {
			t.Fatal("no answer")
		}
		again := append([]byte(nil), pkt...)
		again[0] ^= 0xff
		second := rawExchange(t, "127.0.0.1", addr, again, 2*time.Second)
		if second == nil {
			t.Fatal("no answer to the repeat")
		}
		if len(first) < 2 || first[0] != pkt[0] || first[1] != pkt[1] || second[0] != again[0] || second[1] != again[1] {
			t.Fatalf("answer IDs %x %x for query IDs %x %x", first[:2], second[:2], pkt[:2], again[:2])
		}
		if !bytes.Equal(first[2:], second[2:]) {
			t.Fatalf("repeat answered differently:\n%x\n%x", first, second)
		}
	})
}
