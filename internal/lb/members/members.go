package members

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
)

// Defaults for Config fields left zero.
const (
	DefaultPort      = 7473
	DefaultInterval  = 200 * time.Millisecond
	DefaultDeadAfter = time.Second
	// MinKeyLen is the shortest accepted HMAC key.
	MinKeyLen = 16
)

// Config configures a Members.
type Config struct {
	// Self is this node's name, as peers know it.
	Self string
	// Bind is this node's address. The socket binds Bind:Port, never a
	// wildcard, so replies leave from the address peers expect.
	Bind netip.Addr
	// Port is the UDP port used by every member; DefaultPort when 0.
	Port int
	// Interval is the heartbeat period; DefaultInterval when 0.
	Interval time.Duration
	// DeadAfter is how long a silent peer stays live; DefaultDeadAfter
	// when 0. It must exceed 2*Interval so one lost packet is no death.
	DeadAfter time.Duration
	// Key, when set (MinKeyLen bytes or more), makes every packet carry
	// an HMAC-SHA256 and drops packets without a valid one.
	Key []byte
	// Logger defaults to klog.Background().
	Logger klog.Logger
	// Now is for tests; nil means time.Now.
	Now func() time.Time
}

// Stats are counters since New. Drops are per reason.
type Stats struct {
	Sent       uint64 // heartbeat packets handed to the kernel
	SendErrors uint64
	Received   uint64 // heartbeats accepted
	Stale      uint64 // valid but older than one already accepted (reordered, replayed)

	Malformed     uint64
	BadMAC        uint64
	UnknownSender uint64 // name not in the peer set
	AddrMismatch  uint64 // known name from another address or port
}

// Dropped is the number of packets rejected as invalid or spoofed.
func (s Stats) Dropped() uint64 {
	return s.Malformed + s.BadMAC + s.UnknownSender + s.AddrMismatch
}

// Members tracks which nodes are live. See the package documentation.
type Members struct {
	self      string
	bind      netip.Addr
	port      int
	interval  time.Duration
	deadAfter time.Duration
	key       []byte
	log       klog.Logger
	now       func() time.Time
	inc       uint64
	seqNo     uint64 // Run's goroutine only

	conn    *net.UDPConn // nil in unit tests that drive receive directly
	changes chan struct{}
	kick    chan struct{} // wakes Run to send at once after SetReady
	started atomic.Bool
	// skipLeave makes Run end without the leaving heartbeat, as a crash
	// would; tests only.
	skipLeave atomic.Bool

	sent, sendErrors, received, stale           atomic.Uint64
	malformed, badMAC, unknownSender, addrWrong atomic.Uint64

	mu      sync.Mutex
	peers   map[string]*peer
	ready   bool
	running bool
	warmEnd time.Time
	live    []string // last computed, sorted; compared to detect changes
}

type peer struct {
	addr  netip.Addr
	heard bool
	last  time.Time // arrival of the last accepted heartbeat
	inc   uint64
	seq   uint64
	ready bool
	// sendFailing keeps a failing peer from logging every Interval.
	sendFailing bool
}

// New validates cfg and opens the socket. Run must be called to take
// part; until then (and after it returns) nothing is live.
func New(cfg Config) (*Members, error) {
	m, err := newMembers(cfg)
	if err != nil {
		return nil, err
	}
	network := "udp4"
	if m.bind.Is6() {
		network = "udp6"
	}
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(m.bind, uint16(m.port))))
	if err != nil {
		return nil, fmt.Errorf("members: listen: %w", err)
	}
	m.conn = conn
	return m, nil
}

// newMembers is New without the socket.
func newMembers(cfg Config) (*Members, error) {
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.DeadAfter == 0 {
		cfg.DeadAfter = DefaultDeadAfter
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger.GetSink() == nil {
		cfg.Logger = klog.Background()
	}
	bind := cfg.Bind.Unmap()
	switch {
	case cfg.Self == "" || len(cfg.Self) > maxNameLen:
		return nil, errors.New("members: Self must be 1-255 bytes")
	case !bind.IsValid() || bind.IsUnspecified() || bind.IsMulticast():
		return nil, fmt.Errorf("members: Bind %v must be a unicast address", cfg.Bind)
	case bind.Zone() != "":
		return nil, fmt.Errorf("members: Bind %v: zoned addresses are not supported", cfg.Bind)
	case cfg.Port < 1 || cfg.Port > 65535:
		return nil, fmt.Errorf("members: Port %d out of range", cfg.Port)
	case cfg.Interval < 0:
		return nil, errors.New("members: Interval must be positive")
	case cfg.DeadAfter <= 2*cfg.Interval:
		return nil, fmt.Errorf("members: DeadAfter %v must exceed 2*Interval (%v)", cfg.DeadAfter, 2*cfg.Interval)
	case len(cfg.Key) > 0 && len(cfg.Key) < MinKeyLen:
		return nil, fmt.Errorf("members: Key must be at least %d bytes", MinKeyLen)
	}
	return &Members{
		self:      cfg.Self,
		bind:      bind,
		port:      cfg.Port,
		interval:  cfg.Interval,
		deadAfter: cfg.DeadAfter,
		key:       slices.Clone(cfg.Key),
		log:       cfg.Logger.WithValues("self", cfg.Self),
		now:       cfg.Now,
		// Start time: a restarted agent gets a higher incarnation, so
		// peers drop what is left in flight from the old process.
		inc:     uint64(cfg.Now().UnixNano()),
		changes: make(chan struct{}, 1),
		kick:    make(chan struct{}, 1),
		peers:   map[string]*peer{},
	}, nil
}

// SetPeers replaces the peer set (node name to node IP, typically from
// Node objects). Self is ignored. A removed peer, or one whose address
// changed, is forgotten along with everything heard from it.
func (m *Members) SetPeers(peers map[string]netip.Addr) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, p := range m.peers {
		if addr, ok := peers[name]; !ok || addr.Unmap() != p.addr {
			delete(m.peers, name)
		}
	}
	for name, addr := range peers {
		addr = addr.Unmap()
		if name == m.self || m.peers[name] != nil {
			continue
		}
		if !addr.IsValid() || addr.IsUnspecified() {
			m.log.Info("Ignoring member without a usable address", "peer", name, "addr", addr)
			continue
		}
		m.peers[name] = &peer{addr: addr}
	}
	m.refreshLocked(m.now())
}

// SetReady says whether this node is able to announce. Self counts as
// live only while ready and after the warm-up. A change is sent to peers
// at once rather than at the next Interval.
func (m *Members) SetReady(ready bool) {
	m.mu.Lock()
	m.ready = ready
	m.refreshLocked(m.now())
	m.mu.Unlock()
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Alive reports whether name (a peer or Self) is live now.
func (m *Members) Alive(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.refreshLocked(now)
	if name == m.self {
		return m.selfLiveLocked(now)
	}
	p := m.peers[name]
	return p != nil && m.peerLiveLocked(p, now)
}

// Live returns the sorted names of live members, Self included when live.
func (m *Members) Live() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refreshLocked(m.now())
	return slices.Clone(m.live)
}

// Changes receives a value (coalesced, never blocking the sender)
// whenever the result of Live changes.
func (m *Members) Changes() <-chan struct{} { return m.changes }

// Stats returns the counters.
func (m *Members) Stats() Stats {
	return Stats{
		Sent:          m.sent.Load(),
		SendErrors:    m.sendErrors.Load(),
		Received:      m.received.Load(),
		Stale:         m.stale.Load(),
		Malformed:     m.malformed.Load(),
		BadMAC:        m.badMAC.Load(),
		UnknownSender: m.unknownSender.Load(),
		AddrMismatch:  m.addrWrong.Load(),
	}
}

func (m *Members) selfLiveLocked(now time.Time) bool {
	return m.running && m.ready && !now.Before(m.warmEnd)
}

func (m *Members) peerLiveLocked(p *peer, now time.Time) bool {
	return p.heard && p.ready && now.Sub(p.last) < m.deadAfter
}

// refreshLocked recomputes the live set and signals Changes when it
// differs from the last one.
func (m *Members) refreshLocked(now time.Time) {
	var live []string
	if m.selfLiveLocked(now) {
		live = append(live, m.self)
	}
	for name, p := range m.peers {
		if m.peerLiveLocked(p, now) {
			live = append(live, name)
		}
	}
	slices.Sort(live)
	if slices.Equal(live, m.live) {
		return
	}
	m.log.Info("Live members changed", "live", live, "was", m.live)
	m.live = live
	select {
	case m.changes <- struct{}{}:
	default:
	}
}

// nextDeadlineLocked is the earliest future moment at which the live set
// changes by itself (a peer expiring, the warm-up ending), or zero.
func (m *Members) nextDeadlineLocked(now time.Time) time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if m.running && m.ready {
		consider(m.warmEnd)
	}
	for _, p := range m.peers {
		if m.peerLiveLocked(p, now) {
			consider(p.last.Add(m.deadAfter))
		}
	}
	return next
}

// receive handles one packet from the socket.
func (m *Members) receive(b []byte, from netip.AddrPort) {
	hb, err := decode(b, m.key)
	switch {
	case errors.Is(err, errBadMAC):
		m.drop(&m.badMAC, "bad or missing MAC", from, "")
		return
	case err != nil:
		m.drop(&m.malformed, "malformed", from, "")
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.peers[hb.Name]
	switch {
	case p == nil:
		m.drop(&m.unknownSender, "unknown sender", from, hb.Name)
		return
	case from.Addr().Unmap() != p.addr || int(from.Port()) != m.port:
		// Peers send from their own Bind:Port, so another address or
		// port means someone else is speaking in that peer's name.
		m.drop(&m.addrWrong, "sender address does not match the peer", from, hb.Name)
		return
	}
	now := m.now()
	if p.heard {
		newer := hb.Incarnation > p.inc || hb.Incarnation == p.inc && hb.Seq > p.seq
		// A lower incarnation is a restart with a clock that went back;
		// accepted only once the old process has expired, so packets
		// still in flight from it cannot revive it.
		restarted := hb.Incarnation < p.inc && now.Sub(p.last) >= m.deadAfter
		if !newer && !restarted {
			m.stale.Add(1)
			return
		}
	}
	m.received.Add(1)
	if hb.Leaving && m.peerLiveLocked(p, now) {
		m.log.V(1).Info("Peer is leaving", "peer", hb.Name)
	}
	p.heard, p.last, p.inc, p.seq = true, now, hb.Incarnation, hb.Seq
	p.ready = hb.Ready && !hb.Leaving
	m.refreshLocked(now)
}

// drop counts a rejected packet and logs the first of each kind loudly:
// a steady stream usually means a misconfigured key or peer list.
func (m *Members) drop(counter *atomic.Uint64, why string, from netip.AddrPort, name string) {
	log := m.log.V(4)
	if counter.Add(1) == 1 {
		log = m.log
	}
	log.Info("Dropping heartbeat", "reason", why, "from", from, "name", name)
}
