package l2

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// ErrClosed is returned by Announce after Close.
var ErrClosed = errors.New("l2: announcer closed")

// Defaults for the gratuitous burst sent on Announce.
const (
	DefaultGratuitousCount    = 3
	DefaultGratuitousInterval = 200 * time.Millisecond
)

// Config says where and how an Announcer announces.
type Config struct {
	// Interface is the name of the node's L2 interface facing the
	// clients (for example "eth0" or a bridge).
	Interface string
	// GratuitousCount is how many gratuitous ARP pairs (or unsolicited
	// Neighbor Advertisements) Announce sends, the first at once.
	// Zero means DefaultGratuitousCount; negative sends none.
	GratuitousCount int
	// GratuitousInterval is the pause between two of them. Zero means
	// DefaultGratuitousInterval.
	GratuitousInterval time.Duration
	// Logger gets announcement changes and socket errors; the zero
	// value means klog.Background().
	Logger klog.Logger
}

func (c Config) withDefaults() Config {
	if c.GratuitousCount == 0 {
		c.GratuitousCount = DefaultGratuitousCount
	}
	if c.GratuitousInterval <= 0 {
		c.GratuitousInterval = DefaultGratuitousInterval
	}
	if c.Logger.GetSink() == nil {
		c.Logger = klog.Background()
	}
	return c
}

// AddrStats counts what was sent for one address. Counters keep
// counting across Withdraw and a later Announce, like Prometheus
// counters.
type AddrStats struct {
	// RequestsAnswered is ARP requests (IPv4) or Neighbor Solicitations
	// (IPv6) answered.
	RequestsAnswered uint64
	// GratuitousSent is gratuitous frames sent: each ARP request and
	// reply counts one, as does each unsolicited Neighbor Advertisement.
	GratuitousSent uint64
}

// Stats is a snapshot of an Announcer's counters.
type Stats struct {
	// Addresses has an entry for every address ever announced.
	Addresses map[netip.Addr]AddrStats
	// RequestsIgnored counts ARP requests and Neighbor Solicitations
	// seen for addresses not announced here.
	RequestsIgnored uint64
	// SendErrors counts frames the socket refused.
	SendErrors uint64
}

// packetConn is the one raw socket of an Announcer: Ethernet frames in
// and out of one interface, plus the IPv6 multicast memberships that
// make Neighbor Solicitations for announced addresses reach it.
type packetConn interface {
	// ReadFrame blocks for the next ARP request or Neighbor
	// Solicitation received (not sent) on the interface.
	ReadFrame(buf []byte) (int, error)
	WriteFrame(frame []byte) error
	JoinGroup(group netip.Addr) error
	LeaveGroup(group netip.Addr) error
	// Close makes a blocked ReadFrame return an error.
	Close() error
}

// Announcer answers ARP and NDP for a set of addresses on one
// interface. It is safe for concurrent use.
type Announcer struct {
	cfg  Config
	log  klog.Logger
	conn packetConn
	mac  net.HardwareAddr

	mu      sync.Mutex
	closed  bool
	addrs   map[netip.Addr]*announcement
	groups  map[netip.Addr]int // solicited-node group -> announced addresses in it
	stats   map[netip.Addr]*AddrStats
	ignored uint64
	sendErr uint64

	done chan struct{}
	wg   sync.WaitGroup
}

// announcement is one announced address and its gratuitous burst.
type announcement struct {
	stop chan struct{} // closed by Withdraw and Close
	done chan struct{} // closed when the burst has ended
}

func newAnnouncer(cfg Config, conn packetConn, mac net.HardwareAddr) *Announcer {
	cfg = cfg.withDefaults()
	a := &Announcer{
		cfg:    cfg,
		log:    cfg.Logger.WithValues("interface", cfg.Interface, "mac", mac.String()),
		conn:   conn,
		mac:    mac,
		addrs:  map[netip.Addr]*announcement{},
		groups: map[netip.Addr]int{},
		stats:  map[netip.Addr]*AddrStats{},
		done:   make(chan struct{}),
	}
	a.wg.Add(1)
	go a.readLoop()
	return a
}

// HardwareAddr is the MAC address the Announcer answers with.
func (a *Announcer) HardwareAddr() net.HardwareAddr { return slices.Clone(a.mac) }

func normalize(ip netip.Addr) (netip.Addr, error) {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() || ip.IsLoopback() ||
		(ip.Is4() && ip == netip.AddrFrom4([4]byte{255, 255, 255, 255})) {
		return netip.Addr{}, fmt.Errorf("l2: cannot announce %v: not a unicast address", ip)
	}
	return ip, nil
}

// Announce starts answering for ip and sends the gratuitous burst: the
// first ARP pair (or unsolicited NA) before Announce returns, the rest
// in the background. Announcing an address already announced does
// nothing.
func (a *Announcer) Announce(ip netip.Addr) error {
	ip, err := normalize(ip)
	if err != nil {
		return err
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return ErrClosed
	}
	if _, ok := a.addrs[ip]; ok {
		a.mu.Unlock()
		return nil
	}
	if ip.Is6() {
		g := solicitedNode(ip)
		if a.groups[g] == 0 {
			if err := a.conn.JoinGroup(g); err != nil {
				a.mu.Unlock()
				return fmt.Errorf("l2: announce %v on %s: %w", ip, a.cfg.Interface, err)
			}
		}
		a.groups[g]++
	}
	an := &announcement{stop: make(chan struct{}), done: make(chan struct{})}
	a.addrs[ip] = an
	if a.stats[ip] == nil {
		a.stats[ip] = &AddrStats{}
	}
	count := a.cfg.GratuitousCount
	if count > 1 {
		a.wg.Add(1)
	}
	a.mu.Unlock()

	a.log.Info("Announcing address", "ip", ip)
	if count > 0 {
		a.sendGratuitous(ip)
	}
	if count > 1 {
		go a.burst(ip, count-1, an)
	} else {
		close(an.done)
	}
	return nil
}

// Reannounce sends one gratuitous ARP pair (or unsolicited NA) for ip if
// it is announced, and reports whether it was. After a partition heals,
// the node that kept an address all along pulls back the clients that
// followed another node's announcement meanwhile.
func (a *Announcer) Reannounce(ip netip.Addr) bool {
	ip, err := normalize(ip)
	if err != nil || !a.isAnnounced(ip) {
		return false
	}
	a.sendGratuitous(ip)
	return true
}

func (a *Announcer) burst(ip netip.Addr, n int, an *announcement) {
	defer a.wg.Done()
	defer close(an.done)
	t := time.NewTicker(a.cfg.GratuitousInterval)
	defer t.Stop()
	for range n {
		select {
		case <-t.C:
			a.sendGratuitous(ip)
		case <-an.stop:
			return
		case <-a.done:
			return
		}
	}
}

func (a *Announcer) sendGratuitous(ip netip.Addr) {
	var frames [][]byte
	if ip.Is4() {
		frames = gratuitousARP(a.mac, ip)
	} else {
		frames = unsolicitedNA(a.mac, ip)
	}
	for _, f := range frames {
		err := a.conn.WriteFrame(f)
		a.mu.Lock()
		if err != nil {
			a.sendErr++
		} else {
			a.stats[ip].GratuitousSent++
		}
		a.mu.Unlock()
		if err != nil {
			a.log.Error(err, "Sending gratuitous announcement failed", "ip", ip)
		}
	}
}

// Withdraw stops answering for ip and stops its gratuitous burst: once
// it returns, nothing more is sent for ip. It sends nothing itself: neighbours keep the old MAC until the new owner's
// gratuitous frames or their own cache expiry replace it. Withdrawing
// an address not announced does nothing.
func (a *Announcer) Withdraw(ip netip.Addr) {
	ip = ip.Unmap().WithZone("")
	a.mu.Lock()
	an, ok := a.addrs[ip]
	if !ok {
		a.mu.Unlock()
		return
	}
	close(an.stop)
	delete(a.addrs, ip)
	if ip.Is6() {
		g := solicitedNode(ip)
		if a.groups[g]--; a.groups[g] <= 0 {
			delete(a.groups, g)
			if err := a.conn.LeaveGroup(g); err != nil {
				a.log.Error(err, "Leaving solicited-node group failed", "group", g)
			}
		}
	}
	a.mu.Unlock()
	// A burst may be sending right now; it takes a.mu for its counters.
	<-an.done
	a.log.Info("Withdrew address", "ip", ip)
}

// Announced returns the announced addresses in order.
func (a *Announcer) Announced() []netip.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]netip.Addr, 0, len(a.addrs))
	for ip := range a.addrs {
		out = append(out, ip)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// Stats returns a snapshot of the counters.
func (a *Announcer) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := Stats{Addresses: make(map[netip.Addr]AddrStats, len(a.stats)), RequestsIgnored: a.ignored, SendErrors: a.sendErr}
	for ip, st := range a.stats {
		s.Addresses[ip] = *st
	}
	return s
}

// Close withdraws everything, closes the socket and waits for the
// Announcer's goroutines to end. It sends nothing. Calling it again
// does nothing.
func (a *Announcer) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	close(a.done)
	for ip, an := range a.addrs {
		close(an.stop)
		delete(a.addrs, ip)
	}
	a.mu.Unlock()
	err := a.conn.Close()
	a.wg.Wait()
	return err
}

func (a *Announcer) isAnnounced(ip netip.Addr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.addrs[ip]
	return ok
}

func (a *Announcer) readLoop() {
	defer a.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, err := a.conn.ReadFrame(buf)
		if err != nil {
			select {
			case <-a.done:
				return
			default:
			}
			// ENETDOWN and the like while the link flaps: pause rather
			// than spin on a socket that keeps failing.
			a.log.Error(err, "Reading from packet socket failed")
			select {
			case <-a.done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		reply, asked := respond(a.mac, buf[:n], a.isAnnounced)
		if reply == nil {
			if asked.IsValid() {
				a.mu.Lock()
				a.ignored++
				a.mu.Unlock()
			}
			continue
		}
		err = a.conn.WriteFrame(reply)
		a.mu.Lock()
		if err != nil {
			a.sendErr++
		} else if st := a.stats[asked]; st != nil {
			st.RequestsAnswered++
		}
		a.mu.Unlock()
		if err != nil {
			a.log.Error(err, "Answering neighbour request failed", "ip", asked)
		}
	}
}
