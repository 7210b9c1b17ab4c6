package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// shutdownGrace bounds how long Wait lets open TCP connections finish.
const shutdownGrace = 2 * time.Second

// wireCacheSize is how many packed answers each listen address keeps.
const wireCacheSize = 20000

// ListenAndServe is Start followed by Wait: it serves UDP and TCP on each
// address until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context, addrs []string) error {
	if err := s.Start(ctx, addrs); err != nil {
		return err
	}
	return s.Wait()
}

// Start binds UDP and TCP on every address ("127.0.0.1:53", "10.0.0.10:53")
// and serves them in the background until ctx ends. When it returns nil the
// server is ready: every socket is bound and served, and Addrs tells the
// bound ports (with port 0, TCP is bound to the port UDP got). Upstreams
// that are one of these addresses are dropped, as forwarding to ourselves
// would loop. A Server can be started once.
func (s *Server) Start(ctx context.Context, addrs []string) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("dns: server already started")
	}
	s.started = true
	s.done = make(chan struct{})
	s.mu.Unlock()

	var (
		servers []*dns.Server
		udps    []*udpServer
		bound   []netip.AddrPort
	)
	closeAll := func() {
		for _, srv := range servers {
			if srv.PacketConn != nil {
				srv.PacketConn.Close()
			}
			if srv.Listener != nil {
				srv.Listener.Close()
			}
		}
		for _, u := range udps {
			u.conn.Close()
		}
	}
	udpWG := new(sync.WaitGroup)
	for _, a := range addrs {
		pcs, ln, ap, err := bindPair(a)
		if err != nil {
			closeAll()
			close(s.done)
			return err
		}
		bound = append(bound, ap)
		label := "dns://" + ap.String()
		h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) { s.serve(w, r, label) })
		// A socket on a wildcard address must answer from the address the
		// query came to, which takes miekg/dns's per-packet control
		// messages; one on a specific address gets our batched loop.
		wc := newWireCache(wireCacheSize)
		for _, pc := range pcs {
			if uc, ok := pc.(*net.UDPConn); ok && !ap.Addr().IsUnspecified() {
				udps = append(udps, newUDPServer(s, uc, label, wc, udpWG))
				continue
			}
			servers = append(servers, &dns.Server{PacketConn: pc, Handler: h, UDPSize: maxUDPSize, MsgAcceptFunc: acceptQueries})
		}
		servers = append(servers, &dns.Server{Listener: ln, Handler: h, MsgAcceptFunc: acceptQueries})
	}

	ups := s.fwd.list()
	kept := withoutLoops(ups, append(bound, localAddrs(bound)...))
	if len(kept) != len(ups) {
		klog.FromContext(ctx).Info("Dropped upstream DNS servers that are our own listen addresses",
			"upstreams", ups, "kept", kept)
		if len(kept) == 0 {
			klog.FromContext(ctx).Error(nil, "No upstream DNS server left; names outside the cluster zone will answer SERVFAIL")
		}
		s.fwd.set(kept)
	}

	errc := make(chan error, len(servers))
	for _, srv := range servers {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { errc <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-errc:
			// ActivateAndServe returned before serving: undo everything.
			for _, o := range servers {
				if o != srv {
					_ = o.Shutdown()
				}
			}
			closeAll()
			close(s.done)
			return fmt.Errorf("dns: serving: %w", err)
		}
	}
	for _, u := range udps {
		udpWG.Add(1)
		go u.serve()
	}
	s.mu.Lock()
	s.addrs = bound
	s.mu.Unlock()

	go func() {
		<-ctx.Done()
		for _, u := range udps {
			u.conn.Close()
		}
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		var errs []error
		for _, srv := range servers {
			if err := srv.ShutdownContext(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				errs = append(errs, err)
			}
		}
		for range servers {
			if err := <-errc; err != nil {
				errs = append(errs, err)
			}
		}
		udpWG.Wait() // the loops and their queries, each bounded by forwardTimeout
		s.mu.Lock()
		s.errs = errs
		s.mu.Unlock()
		close(s.done)
	}()
	return nil
}

// Wait blocks until a started server has stopped after its context ended,
// and returns what went wrong while serving.
func (s *Server) Wait() error {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done == nil {
		return errors.New("dns: server not started")
	}
	<-done
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// Addrs are the bound addresses, one per Start address, UDP and TCP alike.
func (s *Server) Addrs() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]netip.AddrPort(nil), s.addrs...)
}

// bindPair binds UDP and TCP on one address. With port 0 the TCP socket
// takes the port the kernel gave UDP, retrying when it is taken for TCP.
//
// UDP gets one socket per CPU on the same address (SO_REUSEPORT; the
// kernel spreads clients over them by their address and port), each read
// by its own goroutine: one socket's reader would be the bottleneck.
func bindPair(addr string) ([]net.PacketConn, net.Listener, netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, netip.AddrPort{}, fmt.Errorf("dns: listen address %q: %w", addr, err)
	}
	lc := net.ListenConfig{Control: reusePort}
	ctx := context.Background()
	var lastErr error
	for range 10 {
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			return nil, nil, netip.AddrPort{}, fmt.Errorf("dns: listen udp %s: %w", addr, err)
		}
		ua := pc.LocalAddr().(*net.UDPAddr).AddrPort()
		bound := net.JoinHostPort(host, strconv.Itoa(int(ua.Port())))
		ln, err := net.Listen("tcp", bound)
		if err != nil {
			pc.Close()
			lastErr = err
			if port != "0" {
				break
			}
			continue
		}
		pcs := []net.PacketConn{pc}
		for len(pcs) < runtime.GOMAXPROCS(0) {
			more, err := lc.ListenPacket(ctx, "udp", bound)
			if err != nil {
				break // one socket still serves
			}
			pcs = append(pcs, more)
		}
		return pcs, ln, netip.AddrPortFrom(ua.Addr().Unmap(), ua.Port()), nil
	}
	return nil, nil, netip.AddrPort{}, fmt.Errorf("dns: listen tcp %s: %w", addr, lastErr)
}

func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return serr
}

// localAddrs expands wildcard listen addresses to this host's interface
// addresses on the same port, for loop detection.
func localAddrs(listen []netip.AddrPort) []netip.AddrPort {
	var out []netip.AddrPort
	for _, l := range listen {
		if !l.Addr().IsUnspecified() {
			continue
		}
		ifAddrs, err := net.InterfaceAddrs()
		if err != nil {
			return out
		}
		for _, ia := range ifAddrs {
			if p, err := netip.ParsePrefix(ia.String()); err == nil {
				out = append(out, netip.AddrPortFrom(p.Addr().Unmap(), l.Port()))
			}
		}
	}
	return out
}

// acceptQueries lets every request through to ServeDNS, which answers
// FORMERR and NOTIMP itself (and counts them); answers are dropped unseen.
func acceptQueries(dh dns.Header) dns.MsgAcceptAction {
	if dh.Bits&(1<<15) != 0 { // QR: a response
		return dns.MsgIgnore
	}
	return dns.MsgAccept
}
