package l4

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portal-net/portal/internal/proxy/userspace/sched"
)

// TCPConfig configures a TCPProxy.
type TCPConfig struct {
	Config
	// OriginalDst returns the address the client connected to (for
	// sched.Conn.Dest: dh hashes it). A zero result, or a nil func, means
	// the listener's own address.
	OriginalDst func(client net.Conn) netip.AddrPort
}

// TCPProxy forwards the connections accepted on one listener to backends.
//
// Stopping: Shutdown stops accepting at once and lets open connections
// finish until its context ends, then closes them; Close is Shutdown with
// no grace. Both return once every goroutine the proxy started has exited.
type TCPProxy struct {
	cfg  TCPConfig
	ln   net.Listener
	dest netip.AddrPort
	pool *pool

	// dialCtx is cancelled when connections are force-closed, so that
	// connects in progress stop too.
	dialCtx    context.Context
	cancelDial context.CancelFunc

	mu       sync.Mutex
	closing  bool // no new connections
	killed   bool // open connections are being closed
	conns    map[net.Conn]struct{}
	sessions int
	handlers sync.WaitGroup // one per client connection
	serving  sync.WaitGroup // Serve calls
	dropped  atomic.Uint64
}

// NewTCPProxy returns a proxy for ln; call Serve to start it and
// SetBackends to give it backends (until then clients are closed). The
// proxy owns ln from now on and closes it.
func NewTCPProxy(ln net.Listener, cfg TCPConfig) (*TCPProxy, error) {
	c, err := cfg.Config.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg.Config = c
	ctx, cancel := context.WithCancel(context.Background())
	return &TCPProxy{
		cfg:        cfg,
		ln:         ln,
		dest:       addrPortOf(ln.Addr()),
		pool:       newPool(c),
		dialCtx:    ctx,
		cancelDial: cancel,
		conns:      map[net.Conn]struct{}{},
	}, nil
}

// Addr is the listener's address.
func (p *TCPProxy) Addr() net.Addr { return p.ln.Addr() }

// SetBackends atomically replaces the backend set. Connections open to a
// removed backend run on until they end; new ones go elsewhere.
func (p *TCPProxy) SetBackends(backends []sched.Backend) { p.pool.set(backends) }

// Stats returns the per-backend counters.
func (p *TCPProxy) Stats() Stats {
	p.mu.Lock()
	n := p.sessions
	p.mu.Unlock()
	return Stats{Backends: p.pool.stats(), Sessions: n, Dropped: p.dropped.Load()}
}

// Serve accepts connections until ctx ends (then it closes the proxy as
// Close does) or the proxy is shut down. It returns nil after a shutdown
// and the accept error otherwise.
func (p *TCPProxy) Serve(ctx context.Context) error {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return nil
	}
	p.serving.Add(1)
	p.mu.Unlock()
	defer p.serving.Done()

	// Only the non-blocking part of closing runs in the AfterFunc; Serve
	// itself waits for the handlers below, so no goroutine outlives it.
	stopped := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(stopped)
		p.mu.Lock()
		p.closing = true
		p.mu.Unlock()
		p.ln.Close()
		p.kill()
	})
	defer func() {
		if !stop() {
			<-stopped
			p.shutdown(canceled)
		}
	}()

	var delay time.Duration
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if p.isClosing() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// EMFILE and the like: back off rather than spin, as the
			// condition usually clears when connections end.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-p.dialCtx.Done():
				t.Stop()
			}
			continue
		}
		delay = 0
		if !p.track(c, true) {
			c.Close()
			return nil
		}
		go p.handle(c)
	}
}

var canceled = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// Close stops the proxy and closes every connection now. It returns nil;
// the error is there for io.Closer.
func (p *TCPProxy) Close() error {
	p.shutdown(canceled)
	p.serving.Wait()
	return nil
}

// Shutdown stops accepting, waits for open connections to end until ctx is
// done, then closes those left. It returns ctx.Err() if it had to close
// any.
func (p *TCPProxy) Shutdown(ctx context.Context) error {
	err := p.shutdown(ctx)
	p.serving.Wait()
	return err
}

func (p *TCPProxy) shutdown(ctx context.Context) error {
	p.mu.Lock()
	first := !p.closing
	p.closing = true
	p.mu.Unlock()
	if first {
		p.ln.Close()
	}
	done := make(chan struct{})
	go func() { p.handlers.Wait(); close(done) }()
	var err error
	select {
	case <-done:
		return nil
	default:
	}
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		p.kill()
		<-done
	}
	return err
}

func (p *TCPProxy) kill() {
	p.cancelDial()
	p.mu.Lock()
	p.killed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

func (p *TCPProxy) isClosing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closing
}

// track registers c so that kill can close it; client connections also
// count a handler. It reports false if c must not be used.
func (p *TCPProxy) track(c net.Conn, client bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.killed || (client && p.closing) {
		return false
	}
	p.conns[c] = struct{}{}
	if client {
		p.handlers.Add(1)
		p.sessions++
	}
	return true
}

func (p *TCPProxy) untrack(c net.Conn, client bool) {
	p.mu.Lock()
	delete(p.conns, c)
	if client {
		p.sessions--
	}
	p.mu.Unlock()
	c.Close()
}

func (p *TCPProxy) handle(client net.Conn) {
	defer p.handlers.Done()
	defer p.untrack(client, true)

	dest := p.dest
	if p.cfg.OriginalDst != nil {
		if d := p.cfg.OriginalDst(client); d.IsValid() {
			dest = d
		}
	}
	sc := sched.Conn{Client: addrPortOf(client.RemoteAddr()), Dest: dest}
	server, b, err := p.pool.connect(p.dialCtx, sc, "tcp")
	if err != nil {
		p.dropped.Add(1)
		// A reset tells the client at once that the service failed,
		// where a FIN would look like an empty answer.
		abort(client)
		return
	}
	defer p.pool.release(b)
	if !p.track(server, false) {
		server.Close()
		return
	}
	defer p.untrack(server, false)
	relay(client, server)
}

// relay copies both ways until both directions have ended. A clean end of
// one direction is passed on as a half-close; an error in either aborts
// both.
func relay(a, b net.Conn) {
	done := make(chan struct{})
	go func() {
		pipe(b, a)
		close(done)
	}()
	pipe(a, b)
	<-done
}

func pipe(dst, src net.Conn) {
	var err error
	if d, ok := dst.(*net.TCPConn); ok {
		// With src a *net.TCPConn this is splice(2) on Linux.
		_, err = d.ReadFrom(src)
	} else {
		_, err = io.Copy(dst, src)
	}
	if err != nil {
		abort(dst)
		abort(src)
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil {
			return
		}
	}
	// Cannot half-close: closing the read side of src ends this
	// direction only as far as we can tell the peer.
	dst.Close()
}

// abort closes c with a reset when it is TCP.
func abort(c net.Conn) {
	if t, ok := c.(*net.TCPConn); ok {
		t.SetLinger(0)
	}
	c.Close()
}
