package dns

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"k8s.io/klog/v2"
)

// udpBatch is how many datagrams one system call reads or writes
// (recvmmsg/sendmmsg).
const udpBatch = 32

// batchConn is what ipv4.PacketConn and ipv6.PacketConn share (their
// Message is the same type).
type batchConn interface {
	ReadBatch([]ipv4.Message, int) (int, error)
	WriteBatch([]ipv4.Message, int) (int, error)
}

// udpServer reads one UDP socket bound to a specific address. Queries the
// wire cache can answer are answered inline, a batch of them per system
// call; every other query goes to a goroutine of its own through the full
// handler (it may wait for an upstream), and its answer, when it depends on
// nothing but the question and the cluster state, fills the cache.
type udpServer struct {
	s     *Server
	conn  *net.UDPConn
	bc    batchConn
	label string
	cache *wireCache
	local net.Addr
	wg    *sync.WaitGroup // the loop and its goroutines
}

func newUDPServer(s *Server, conn *net.UDPConn, label string, cache *wireCache, wg *sync.WaitGroup) *udpServer {
	u := &udpServer{s: s, conn: conn, label: label, cache: cache, local: conn.LocalAddr(), wg: wg}
	if conn.LocalAddr().(*net.UDPAddr).IP.To4() != nil {
		u.bc = ipv4.NewPacketConn(conn)
	} else {
		u.bc = ipv6.NewPacketConn(conn)
	}
	return u
}

// serve is the read loop; it returns when the socket is closed.
func (u *udpServer) serve() {
	defer u.wg.Done()
	in := make([]ipv4.Message, udpBatch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, maxUDPSize)}
	}
	// Replies are written in place: no allocation per answered query.
	replies := make([]ipv4.Message, udpBatch)
	outBufs := make([][]byte, udpBatch)
	for i := range replies {
		outBufs[i] = make([]byte, maxUDPSize)
		replies[i].Buffers = [][]byte{nil}
	}
	for {
		n, err := u.bc.ReadBatch(in, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			klog.V(2).InfoS("DNS UDP read failed", "server", u.label, "err", err)
			time.Sleep(10 * time.Millisecond) // e.g. ENOMEM: do not spin
			continue
		}
		answered := 0
		for _, m := range in[:n] {
			pkt := m.Buffers[0][:m.N]
			if wire, ok := u.fast(pkt, outBufs[answered]); ok {
				replies[answered].Buffers[0], replies[answered].Addr = wire, m.Addr
				answered++
				continue
			}
			if len(pkt) < headerLen || pkt[2]&0x80 != 0 {
				continue // too short for a header, or an answer: never answered
			}
			q := append([]byte(nil), pkt...)
			addr := m.Addr
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				u.slow(q, addr)
			}()
		}
		out := replies[:answered]
		for len(out) > 0 {
			k, err := u.bc.WriteBatch(out, 0)
			if err != nil {
				klog.V(2).InfoS("DNS UDP write failed", "server", u.label, "err", err)
				if k <= 0 {
					k = 1 // drop the datagram the kernel refused, keep the rest
				}
			}
			out = out[k:]
		}
	}
}

// headerLen is the fixed DNS header (RFC 1035 4.1.1).
const headerLen = 12

// fast answers pkt from the wire cache into buf.
func (u *udpServer) fast(pkt, buf []byte) ([]byte, bool) {
	start := time.Now()
	e, ok := u.cache.get(pkt, u.s.res.Generation())
	if !ok {
		return nil, false
	}
	ans := e.data[e.qlen:]
	n := copy(buf, ans[:headerLen])
	// A stored answer leaves out its question, which is the bytes the
	// asker sent (equal to the entry's key).
	n += copy(buf[n:], pkt[headerLen:headerLen+int(e.qn)])
	n += copy(buf[n:], ans[headerLen:])
	wire := buf[:n]
	wire[0], wire[1] = pkt[0], pkt[1] // the query's ID
	e.m.requests.Inc()
	e.m.responses.Inc()
	e.m.duration.Observe(time.Since(start).Seconds())
	return wire, true
}

// slow answers one query through the full handler and caches the answer
// when it may be reused.
func (u *udpServer) slow(pkt []byte, addr net.Addr) {
	gen := u.s.res.Generation() // before answering: a change during it makes the entry stale
	w := &udpWriter{conn: u.conn, local: u.local, remote: addr}
	// The answer is sent last, after the cache put below: a client
	// asking again as soon as it has it finds it in the cache.
	defer w.flush()
	req := new(dns.Msg)
	if err := req.Unpack(pkt); err != nil {
		// As miekg/dns's server does: a header without a message is FORMERR.
		fail := new(dns.Msg)
		fail.Id = uint16(pkt[0])<<8 | uint16(pkt[1])
		fail.Response = true
		fail.Opcode = int(pkt[2]>>3) & 0xf
		fail.Rcode = dns.RcodeFormatError
		if fail.Opcode != dns.OpcodeQuery {
			fail.Rcode = dns.RcodeNotImplemented
		}
		_ = w.WriteMsg(fail)
		return
	}
	o := u.s.serve(w, req, u.label)
	if o.cacheable && w.wire != nil {
		u.cache.put(pkt, w.wire, gen, o)
	}
}

// udpWriter is the dns.ResponseWriter of one UDP query; it keeps the
// packed answer for the cache and sends it on flush.
type udpWriter struct {
	conn          *net.UDPConn
	local, remote net.Addr
	wire          []byte
	held          bool // wire is not sent yet
}

func (w *udpWriter) LocalAddr() net.Addr  { return w.local }
func (w *udpWriter) RemoteAddr() net.Addr { return w.remote }

func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (w *udpWriter) Write(b []byte) (int, error) {
	w.flush() // an earlier answer, if one was held
	w.wire, w.held = b, true
	return len(b), nil
}

// flush sends the held answer.
func (w *udpWriter) flush() {
	if w.held {
		w.held = false
		_, _ = w.conn.WriteTo(w.wire, w.remote)
	}
}

func (w *udpWriter) Close() error        { return nil }
func (w *udpWriter) TsigStatus() error   { return nil }
func (w *udpWriter) TsigTimersOnly(bool) {}
func (w *udpWriter) Hijack()             {}

// wireCache holds packed answers by the query's bytes after its ID (flags,
// question, EDNS0 record as sent): equal bytes ask the same question with
// the same options, so they get the same answer while the cluster state
// (the Resolver's generation) is unchanged. Only answers the Resolver
// gave alone are kept, so nothing in one expires but by a change of state.
type wireCache struct {
	mu      sync.Mutex
	entries map[string]*wireEntry          // keys are prefixes of the entries' data
	series  map[answerSeries]*answerSeries // one copy of each, shared by the entries
	max     int
}

// wireEntry is one packed answer. The query and the answer share one
// allocation, which the map's key points into: at 10,000 services the
// cache is the largest part of the DNS server's heap after the records.
type wireEntry struct {
	gen  uint64
	data string // the query after its ID, then the answer with ID bytes zero and without its first qn bytes after the header
	m    *answerSeries
	qlen uint16 // of the query after its ID (maxCachedQuery)
	qn   uint16 // the question's length, or 0 when the answer is kept whole
}

// questionLen is the length of the question of a one-question message:
// its name as plain labels (no compression pointer), then type and class;
// 0 for anything else.
func questionLen(msg []byte) int {
	if len(msg) < headerLen || msg[4] != 0 || msg[5] != 1 {
		return 0
	}
	for i := headerLen; i < len(msg); {
		switch l := int(msg[i]); {
		case l == 0:
			if i+5 > len(msg) {
				return 0
			}
			return i + 5 - headerLen
		case l > 63:
			return 0 // a pointer or an extended label type
		default:
			i += 1 + l
		}
	}
	return 0
}

// maxCachedQuery bounds the queries whose answers are kept; real ones are
// far smaller, and the key is the query itself.
const maxCachedQuery = 300

func newWireCache(max int) *wireCache {
	return &wireCache{entries: make(map[string]*wireEntry, min(max, 1024)), series: map[answerSeries]*answerSeries{}, max: max}
}

func (c *wireCache) get(pkt []byte, gen uint64) (*wireEntry, bool) {
	if len(pkt) <= headerLen || len(pkt) > maxCachedQuery {
		return nil, false
	}
	c.mu.Lock()
	e, ok := c.entries[string(pkt[2:])]
	c.mu.Unlock()
	if !ok || e.gen != gen {
		return nil, false
	}
	return e, true
}

func (c *wireCache) put(pkt, wire []byte, gen uint64, o outcome) {
	if c.max <= 0 || len(pkt) <= headerLen || len(pkt) > maxCachedQuery || len(wire) < headerLen {
		return
	}
	q := pkt[2:]
	// The answer repeats the question as asked (RFC 1035 4.1.2); it is
	// left out when it is byte for byte the query's, which the entry's
	// key holds already.
	qn := questionLen(pkt)
	if qn == 0 || len(wire) < headerLen+qn || !bytes.Equal(wire[headerLen:headerLen+qn], pkt[headerLen:headerLen+qn]) {
		qn = 0
	}
	var b strings.Builder
	b.Grow(len(q) + len(wire) - qn)
	b.Write(q)
	b.Write([]byte{0, 0})
	b.Write(wire[2:headerLen])
	b.Write(wire[headerLen+qn:])
	e := &wireEntry{gen: gen, data: b.String(), qlen: uint16(len(q)), qn: uint16(qn)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[string(q)]; ok && old.gen > gen {
		return // a newer answer is already in
	}
	if e.m = c.series[o.series]; e.m == nil {
		e.m = &o.series
		c.series[o.series] = e.m
	}
	if len(c.entries) >= c.max {
		for k := range c.entries { // map order: an arbitrary victim
			delete(c.entries, k)
			break
		}
	}
	c.entries[e.data[:e.qlen]] = e
}
