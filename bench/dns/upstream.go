package main

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/miekg/dns"
)

// externalNames is how many names outside the cluster the fake upstream
// answers: ext-0.example.org. … each with one A record.
const externalNames = 8

func externalName(i int) string { return fmt.Sprintf("ext-%d.example.org.", i) }

// externalAddr is the A record the upstream gives externalName(i)
// (TEST-NET-2: nothing is ever sent there).
func externalAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}) }

// upstreamTTL is long enough that neither cache expires an answer within a
// run (CoreDNS's `cache 30` caps it at 30 s).
const upstreamTTL = 3600

// upstream is the fake resolver both servers forward to, on 127.0.0.1.
type upstream struct {
	srv     *dns.Server
	addr    string
	queries atomic.Int64
	names   map[string]netip.Addr
}

func startUpstream() (*upstream, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fake upstream: %w", err)
	}
	u := &upstream{addr: pc.LocalAddr().String(), names: map[string]netip.Addr{}}
	for i := range externalNames {
		u.names[externalName(i)] = externalAddr(i)
	}
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

// answer is the upstream's reply: A for its names, NXDOMAIN otherwise.
func (u *upstream) answer(req *dns.Msg) *dns.Msg {
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
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: upstreamTTL}, A: ip.AsSlice()}}
	}
	return m
}

func (u *upstream) serve(w dns.ResponseWriter, req *dns.Msg) {
	u.queries.Add(1)
	_ = w.WriteMsg(u.answer(req))
}

func (u *upstream) stop() { _ = u.srv.Shutdown() }
