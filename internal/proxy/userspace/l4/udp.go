package l4

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/portal-net/portal/internal/proxy/userspace/sched"
	"golang.org/x/net/ipv4"
)

// Defaults for the zero values of UDPConfig.
const (
	DefaultUDPIdleTimeout = 30 * time.Second
	DefaultUDPMaxSessions = 4096
)

// maxDatagram is the largest UDP payload over IPv4/IPv6 without jumbograms.
const maxDatagram = 65535

// UDPConfig configures a UDPProxy.
type UDPConfig struct {
	Config
	// IdleTimeout ends a session with no datagram either way for this
	// long (default 30s).
	IdleTimeout time.Duration
	// MaxSessions caps the sessions (client addresses) open at once
	// (default 4096); datagrams from new clients beyond it are dropped
	// and counted in Stats.Dropped.
	MaxSessions int
	// Dest is sched.Conn.Dest for every session (default: the socket's
	// own address); a PacketConn does not tell datagrams' original
	// destinations apart.
	Dest netip.AddrPort
}

// UDPProxy forwards datagrams arriving on one socket to backends. Each
// client address gets a session: a connected socket to one backend, whose
// replies are sent back to the client from the proxy's socket.
//
// A backend that answers with ICMP port unreachable ends the session and
// counts as a connect failure (so it is backed off like a refusing TCP
// backend); the client's next datagram starts a session elsewhere.
type UDPProxy struct {
	cfg  UDPConfig
	pc   net.PacketConn
	pool *pool
	// p4 reads and writes pc with IP_PKTINFO when it is an IPv4 socket
	// on a wildcard address: a reply must leave from the address the
	// client's datagram arrived at (after a redirect, 127.0.0.1 or the
	// address of the interface it came in by), or conntrack does not
	// recognise it as the reply and the client drops it.
	p4 *ipv4.PacketConn

	// ctx bounds connects; cancelled at Close.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	sessions map[netip.AddrPort]*udpSession
	wg       sync.WaitGroup // session readers
	serving  sync.WaitGroup
	dropped  atomic.Uint64
}

type udpSession struct {
	client     netip.AddrPort
	clientAddr net.Addr
	local      net.IP // the address the client's datagrams arrived at (p4 only)
	backend    *backend
	conn       net.Conn
	last       atomic.Int64 // unix nanoseconds of the last datagram
}

// NewUDPProxy returns a proxy for pc; call Serve to start it. The proxy
// owns pc from now on and closes it.
func NewUDPProxy(pc net.PacketConn, cfg UDPConfig) (*UDPProxy, error) {
	c, err := cfg.Config.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg.Config = c
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultUDPIdleTimeout
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultUDPMaxSessions
	}
	if !cfg.Dest.IsValid() {
		cfg.Dest = addrPortOf(pc.LocalAddr())
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &UDPProxy{
		ctx:      ctx,
		cancel:   cancel,
		cfg:      cfg,
		pc:       pc,
		pool:     newPool(c),
		sessions: map[netip.AddrPort]*udpSession{},
	}
	if ua, ok := pc.LocalAddr().(*net.UDPAddr); ok && ua.IP.IsUnspecified() && ua.IP.To4() != nil {
		p4 := ipv4.NewPacketConn(pc)
		if err := p4.SetControlMessage(ipv4.FlagDst, true); err == nil {
			p.p4 = p4
		}
	}
	return p, nil
}

// read reads one datagram and, with p4, the address it arrived at.
func (p *UDPProxy) read(buf []byte) (int, net.Addr, net.IP, error) {
	if p.p4 == nil {
		n, addr, err := p.pc.ReadFrom(buf)
		return n, addr, nil, err
	}
	n, cm, addr, err := p.p4.ReadFrom(buf)
	var local net.IP
	if cm != nil {
		local = cm.Dst
	}
	return n, addr, local, err
}

// Addr is the socket's address.
func (p *UDPProxy) Addr() net.Addr { return p.pc.LocalAddr() }

// SetBackends atomically replaces the backend set; sessions with a removed
// backend end now (a UDP "connection" has no end to wait for).
func (p *UDPProxy) SetBackends(backends []sched.Backend) {
	p.pool.set(backends)
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, s := range p.sessions {
		if !s.backend.inSet.Load() {
			delete(p.sessions, k)
			s.conn.Close()
		}
	}
}

// Stats returns the per-backend counters (Active counts sessions).
func (p *UDPProxy) Stats() Stats {
	p.mu.Lock()
	n := len(p.sessions)
	p.mu.Unlock()
	return Stats{Backends: p.pool.stats(), Sessions: n, Dropped: p.dropped.Load()}
}

// Serve relays datagrams until ctx ends or the proxy is closed; it returns
// nil then, and the read error if the socket fails otherwise. When it
// returns the proxy is closed.
func (p *UDPProxy) Serve(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.serving.Add(1)
	p.mu.Unlock()
	defer p.serving.Done()
	stopped := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { p.pc.Close(); close(stopped) })
	defer func() {
		if !stop() {
			<-stopped
		}
		p.closeSessions()
	}()

	buf := make([]byte, maxDatagram)
	for {
		n, addr, local, err := p.read(buf)
		if err != nil {
			if p.isClosed() || ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		p.forward(buf[:n], addr, local)
	}
}

func (p *UDPProxy) forward(b []byte, addr net.Addr, local net.IP) {
	client := addrPortOf(addr)
	p.mu.Lock()
	s := p.sessions[client]
	full := s == nil && len(p.sessions) >= p.cfg.MaxSessions
	p.mu.Unlock()
	if full {
		p.dropped.Add(1)
		return
	}
	if s == nil {
		if s = p.open(client, addr, local); s == nil {
			p.dropped.Add(1)
			return
		}
	}
	s.last.Store(time.Now().UnixNano())
	if _, err := s.conn.Write(b); err != nil {
		// An earlier ICMP error is reported here or to the reader; end
		// the session so the next datagram picks another backend.
		if errors.Is(err, syscall.ECONNREFUSED) {
			p.pool.fail(s.backend)
		}
		p.end(s)
	}
}

// open starts a session for client. Only the Serve goroutine opens
// sessions, so no other session for client can appear meanwhile.
func (p *UDPProxy) open(client netip.AddrPort, addr net.Addr, local net.IP) *udpSession {
	sc := sched.Conn{Client: client, Dest: p.cfg.Dest}
	conn, b, err := p.pool.connect(p.ctx, sc, "udp")
	if err != nil {
		return nil
	}
	s := &udpSession{client: client, clientAddr: addr, local: local, backend: b, conn: conn}
	s.last.Store(time.Now().UnixNano())
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		conn.Close()
		p.pool.release(b)
		return nil
	}
	p.sessions[client] = s
	p.wg.Add(1)
	p.mu.Unlock()
	go p.readReplies(s)
	return s
}

// readReplies sends the backend's datagrams to the client until the session
// idles out or is ended; it owns the session's cleanup.
func (p *UDPProxy) readReplies(s *udpSession) {
	defer p.wg.Done()
	defer p.pool.release(s.backend)
	defer p.end(s)
	buf := make([]byte, maxDatagram)
	for {
		deadline := time.Unix(0, s.last.Load()).Add(p.cfg.IdleTimeout)
		if !time.Now().Before(deadline) {
			return
		}
		s.conn.SetReadDeadline(deadline)
		n, err := s.conn.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue // the loop head decides whether it was idle
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				p.pool.fail(s.backend)
			}
			return
		}
		s.last.Store(time.Now().UnixNano())
		if _, err := p.reply(s, buf[:n]); err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

// reply sends b to s's client, from the address its datagrams came to.
func (p *UDPProxy) reply(s *udpSession, b []byte) (int, error) {
	if p.p4 == nil || s.local == nil {
		return p.pc.WriteTo(b, s.clientAddr)
	}
	return p.p4.WriteTo(b, &ipv4.ControlMessage{Src: s.local}, s.clientAddr)
}

// end forgets s and closes its socket; its reader then finishes.
func (p *UDPProxy) end(s *udpSession) {
	p.mu.Lock()
	if p.sessions[s.client] == s {
		delete(p.sessions, s.client)
	}
	p.mu.Unlock()
	s.conn.Close()
}

func (p *UDPProxy) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

func (p *UDPProxy) closeSessions() {
	p.cancel()
	p.mu.Lock()
	p.closed = true
	for k, s := range p.sessions {
		delete(p.sessions, k)
		s.conn.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// Close closes the socket and every session and waits for the proxy's
// goroutines to exit.
func (p *UDPProxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.pc.Close()
	p.closeSessions()
	p.serving.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
