package compat

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/miekg/dns"
)

// externalName is the one name outside the cluster the fake upstream
// knows; an ExternalName service points at it.
const externalName = "ext-0.example.org."

// externalAddr is its A record (TEST-NET-2: nothing is ever sent there).
var externalAddr = netip.MustParseAddr("198.51.100.1")

// upstream is the fake resolver both servers forward to, on 127.0.0.1:
// A for externalName, NODATA for its other types, NXDOMAIN for any other
// name, never an authority section.
type upstream struct {
	srv  *dns.Server
	addr string
}

func startUpstream() (*upstream, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fake upstream: %w", err)
	}
	u := &upstream{addr: pc.LocalAddr().String()}
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

func (u *upstream) serve(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	switch {
	case len(req.Question) != 1:
		m.Rcode = dns.RcodeFormatError
	case dns.CanonicalName(req.Question[0].Name) != externalName:
		m.Rcode = dns.RcodeNameError
	case req.Question[0].Qtype == dns.TypeA:
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600},
			A: externalAddr.AsSlice()}}
	}
	_ = w.WriteMsg(m)
}

func (u *upstream) stop() { _ = u.srv.Shutdown() }
