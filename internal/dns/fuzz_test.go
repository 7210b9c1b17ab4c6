package dns

import (
	"net"
	"net/netip"
	"testing"

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
