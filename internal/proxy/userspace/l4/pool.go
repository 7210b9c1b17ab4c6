package l4

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/portal-net/portal/internal/proxy/userspace/sched"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxAttempts    = 3
	DefaultConnectTimeout = time.Second
	DefaultFailBackoff    = 5 * time.Second
	DefaultFailThreshold  = 2
)

// ErrNoBackend is returned (wrapped) when no backend could be connected.
var ErrNoBackend = errors.New("l4: no usable backend")

// DialFunc opens a connection to a backend; it is net.Dialer.DialContext's
// shape so tests and callers (e.g. to set IP_TRANSPARENT) can replace it.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Config is what TCPProxy and UDPProxy share.
type Config struct {
	// Scheduler picks backends; required.
	Scheduler sched.Scheduler
	// MaxAttempts bounds the backends tried for one new connection
	// (default 3). Each failed backend is excluded from the next Pick.
	MaxAttempts int
	// ConnectTimeout bounds one connect attempt (default 1s).
	ConnectTimeout time.Duration
	// FailThreshold is the number of consecutive connect failures after
	// which a backend is skipped for FailBackoff (defaults 2 and 5s). A
	// skipped backend is still used when no other is left, and one success
	// clears its record.
	FailThreshold int
	FailBackoff   time.Duration
	// AffinityTimeout > 0 turns on ClientIP session affinity: a client IP
	// keeps the backend it got while that backend stays in the set and
	// usable, until AffinityTimeout has passed since the client's last new
	// connection (UDP: new session).
	AffinityTimeout time.Duration
	// Dial connects to backends; default a net.Dialer.
	Dial DialFunc
	// Now is the clock for back-off and affinity; default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() (Config, error) {
	if c.Scheduler == nil {
		return c, errors.New("l4: Config.Scheduler is required")
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.FailThreshold <= 0 {
		c.FailThreshold = DefaultFailThreshold
	}
	if c.FailBackoff <= 0 {
		c.FailBackoff = DefaultFailBackoff
	}
	if c.Dial == nil {
		var d net.Dialer
		c.Dial = d.DialContext
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// BackendStats are one backend's counters. Total counts connections (UDP:
// sessions) established to it, Failures its failed connect attempts, Active
// those open now. Removed backends are listed, with InSet false, until their
// last connection ends.
type BackendStats struct {
	Addr     netip.AddrPort
	InSet    bool
	Active   int64
	Total    uint64
	Failures uint64
}

// Stats is a snapshot of a proxy's counters.
type Stats struct {
	Backends []BackendStats // sorted by address
	// Sessions is the number of client connections (TCP) or UDP sessions
	// open now.
	Sessions int
	// Dropped counts clients turned away: TCP connections closed because
	// no backend could be connected, UDP datagrams of new clients beyond
	// the session cap or without a backend.
	Dropped uint64
}

type backend struct {
	addr      netip.AddrPort
	inSet     atomic.Bool
	weight    atomic.Int64
	active    atomic.Int64
	total     atomic.Uint64
	failures  atomic.Uint64
	consec    atomic.Int64 // consecutive connect failures
	skipUntil atomic.Int64 // unix nanoseconds; 0 = not backed off
}

// pool is the backend set of one service port plus everything the connect
// path needs: scheduler, back-off, affinity and counts.
type pool struct {
	cfg Config

	setMu sync.Mutex // serializes set, so scheduler and map agree on the last set

	mu       sync.RWMutex
	backends map[netip.AddrPort]*backend // in the set, or removed but still in use

	aff affinity
}

func newPool(cfg Config) *pool {
	p := &pool{cfg: cfg, backends: map[netip.AddrPort]*backend{}}
	p.aff.timeout = cfg.AffinityTimeout
	return p
}

// set replaces the backend set. Backends that leave it take no new
// connections; their open ones are left alone (the caller may end them).
func (p *pool) set(bs []sched.Backend) {
	want := make(map[netip.AddrPort]int, len(bs))
	for _, b := range bs {
		want[b.Addr] = b.Weight
	}
	p.setMu.Lock()
	defer p.setMu.Unlock()
	p.mu.Lock()
	for a, b := range p.backends {
		if _, ok := want[a]; !ok {
			b.inSet.Store(false)
			if b.active.Load() == 0 {
				delete(p.backends, a)
			}
		}
	}
	for a, w := range want {
		b := p.backends[a]
		if b == nil {
			b = &backend{addr: a}
			p.backends[a] = b
		}
		b.weight.Store(int64(w))
		b.inSet.Store(true)
	}
	p.mu.Unlock()
	// Not under mu: a scheduler may hold its own lock while calling
	// usable/active, which take mu. Until Update, a Pick may still see a
	// removed backend, but usable() reads inSet and rejects it.
	p.cfg.Scheduler.Update(append([]sched.Backend(nil), bs...))
}

func (p *pool) lookup(a netip.AddrPort) *backend {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.backends[a]
}

func (p *pool) activeOf(a netip.AddrPort) int {
	if b := p.lookup(a); b != nil {
		return int(b.active.Load())
	}
	return 0
}

func (p *pool) backedOff(b *backend, now time.Time) bool {
	until := b.skipUntil.Load()
	return until != 0 && now.UnixNano() < until
}

// choose returns the next backend to try for c, or nil.
func (p *pool) choose(c sched.Conn, tried map[netip.AddrPort]bool) *backend {
	now := p.cfg.Now()
	if a, ok := p.aff.lookup(c.Client.Addr(), now); ok && !tried[a] {
		// A quiesced (weight 0) backend takes no new connections, pinned
		// clients included: it is usually on its way out.
		if b := p.lookup(a); b != nil && b.inSet.Load() && b.weight.Load() > 0 && !p.backedOff(b, now) {
			return b
		}
	}
	strict := func(a netip.AddrPort) bool {
		b := p.lookup(a)
		return b != nil && b.inSet.Load() && !tried[a] && !p.backedOff(b, now)
	}
	lenient := func(a netip.AddrPort) bool {
		b := p.lookup(a)
		return b != nil && b.inSet.Load() && !tried[a]
	}
	for _, usable := range []func(netip.AddrPort) bool{strict, lenient} {
		a, ok := p.cfg.Scheduler.Pick(c, usable, p.activeOf)
		if !ok {
			continue
		}
		// The scheduler is trusted to honour usable, but a misbehaving one
		// must not send traffic to a backend outside the set.
		if b := p.lookup(a); b != nil && usable(a) {
			return b
		}
	}
	return nil
}

// connect picks backends for c and dials them until one answers, at most
// MaxAttempts times. On success the backend's active count includes the
// returned connection; the caller calls release when it ends.
func (p *pool) connect(ctx context.Context, c sched.Conn, network string) (net.Conn, *backend, error) {
	tried := make(map[netip.AddrPort]bool, p.cfg.MaxAttempts)
	var errs []error
	for range p.cfg.MaxAttempts {
		b := p.choose(c, tried)
		if b == nil {
			break
		}
		tried[b.addr] = true
		// Counted from the start of the connect, so lc/nq see in-flight
		// connects as load.
		b.active.Add(1)
		dctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
		conn, err := p.cfg.Dial(dctx, network, b.addr.String())
		cancel()
		if err == nil {
			b.total.Add(1)
			b.consec.Store(0)
			b.skipUntil.Store(0)
			p.aff.record(c.Client.Addr(), b.addr, p.cfg.Now())
			return conn, b, nil
		}
		p.release(b)
		p.fail(b)
		errs = append(errs, fmt.Errorf("%s: %w", b.addr, err))
		if ctx.Err() != nil || !retryable(err) {
			break
		}
	}
	if len(errs) == 0 {
		return nil, nil, ErrNoBackend
	}
	return nil, nil, fmt.Errorf("%w: %w", ErrNoBackend, errors.Join(errs...))
}

// fail records a failed connect (or, for UDP, a refusal seen later).
func (p *pool) fail(b *backend) {
	b.failures.Add(1)
	if b.consec.Add(1) >= int64(p.cfg.FailThreshold) {
		b.skipUntil.Store(p.cfg.Now().Add(p.cfg.FailBackoff).UnixNano())
	}
}

// release ends one connection to b; a removed backend is forgotten with its
// last connection.
func (p *pool) release(b *backend) {
	if b.active.Add(-1) > 0 || b.inSet.Load() {
		return
	}
	p.mu.Lock()
	if p.backends[b.addr] == b && !b.inSet.Load() && b.active.Load() == 0 {
		delete(p.backends, b.addr)
	}
	p.mu.Unlock()
}

func (p *pool) stats() []BackendStats {
	p.mu.RLock()
	out := make([]BackendStats, 0, len(p.backends))
	for _, b := range p.backends {
		out = append(out, BackendStats{
			Addr:     b.addr,
			InSet:    b.inSet.Load(),
			Active:   b.active.Load(),
			Total:    b.total.Load(),
			Failures: b.failures.Load(),
		})
	}
	p.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Compare(out[j].Addr) < 0 })
	return out
}

// retryable reports whether a connect error says "this backend, not the
// network or the proxy": another backend may well answer.
func retryable(err error) bool {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.As(err, &ne) && ne.Timeout():
		return true
	}
	return false
}

// affinity maps client IPs to the backend they got (ClientIP affinity).
type affinity struct {
	timeout time.Duration

	mu        sync.Mutex
	m         map[netip.Addr]affEntry
	lastSweep time.Time
}

type affEntry struct {
	backend netip.AddrPort
	last    time.Time // last new connection of this client
}

func (a *affinity) lookup(ip netip.Addr, now time.Time) (netip.AddrPort, bool) {
	if a.timeout <= 0 {
		return netip.AddrPort{}, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.m[ip]
	if !ok || now.Sub(e.last) >= a.timeout {
		return netip.AddrPort{}, false
	}
	return e.backend, true
}

func (a *affinity) record(ip netip.Addr, b netip.AddrPort, now time.Time) {
	if a.timeout <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[netip.Addr]affEntry{}
	}
	a.m[ip] = affEntry{backend: b, last: now}
	// Expired entries are swept at most once per timeout, so the table
	// stays bounded by the clients seen within about two timeouts.
	if now.Sub(a.lastSweep) >= a.timeout {
		a.lastSweep = now
		for k, e := range a.m {
			if now.Sub(e.last) >= a.timeout {
				delete(a.m, k)
			}
		}
	}
}

// addrPortOf converts a socket address, unmapping IPv4-in-IPv6.
func addrPortOf(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch v := a.(type) {
	case *net.TCPAddr:
		ap = v.AddrPort()
	case *net.UDPAddr:
		ap = v.AddrPort()
	case nil:
		return ap
	default:
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
