package dns

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const testZone = "cluster.local."

func mustRR(t testing.TB, s string) dns.RR {
	rr, err := dns.NewRR(s)
	if err != nil {
		if t == nil {
			panic(err)
		}
		t.Fatalf("bad record %q: %v", s, err)
	}
	return rr
}

func rrs(t testing.TB, ss ...string) []dns.RR {
	var out []dns.RR
	for _, s := range ss {
		out = append(out, mustRR(t, s))
	}
	return out
}

// strs renders records as zone-file lines (tabs folded to spaces).
func strs(rrs []dns.RR) []string {
	out := []string{}
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	return out
}

// fakeResolver serves a fixed set of cluster records: every name it holds
// answers its records of the asked type (a CNAME answers any type); names
// in the zone it does not hold are NXDOMAIN; notOurs names say "not mine".
type fakeResolver struct {
	mu         sync.RWMutex // around records, for tests that change them (set)
	records    map[string][]dns.RR
	namespaces map[netip.Addr]string
	notOurs    map[string]bool
	calls      atomic.Int64
	gen        atomic.Uint64 // tests that change records add to it
}

var testSOA = "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5"

func newFakeResolver(t testing.TB) *fakeResolver {
	f := &fakeResolver{records: map[string][]dns.RR{}, namespaces: map[netip.Addr]string{}, notOurs: map[string]bool{}}
	add := func(s string) {
		rr := mustRR(t, s)
		n := strings.ToLower(rr.Header().Name)
		f.records[n] = append(f.records[n], rr)
	}
	add("kubernetes.default.svc.cluster.local. 5 IN A 10.0.0.1")
	add("my-svc.other.svc.cluster.local. 5 IN A 10.0.0.5")
	add("my-database.prod.svc.cluster.local. 5 IN CNAME my-database.example.com.")
	add("internal.prod.svc.cluster.local. 5 IN CNAME kubernetes.default.svc.cluster.local.")
	for i := range 100 {
		add("big.default.svc.cluster.local. 5 IN A 10.1.0." + strconv.Itoa(i+1))
	}
	// Namespaces exist as empty non-terminals.
	f.records["cluster.local."] = nil
	f.records["svc.cluster.local."] = nil
	f.records["default.svc.cluster.local."] = nil
	f.records["other.svc.cluster.local."] = nil
	f.records["prod.svc.cluster.local."] = nil
	return f
}

func (f *fakeResolver) Resolve(req *dns.Msg) (*dns.Msg, bool) {
	f.calls.Add(1)
	f.mu.RLock()
	defer f.mu.RUnlock()
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if !(name == testZone || strings.HasSuffix(name, "."+testZone)) || f.notOurs[name] {
		return nil, false
	}
	resp := new(dns.Msg).SetReply(req)
	resp.Authoritative = true
	held, ok := f.records[name]
	if !ok {
		resp.Rcode = dns.RcodeNameError
		resp.Ns = []dns.RR{mustRR(nil, testSOA)}
		return resp, true
	}
	for _, rr := range held {
		if rr.Header().Rrtype == q.Qtype || rr.Header().Rrtype == dns.TypeCNAME {
			resp.Answer = append(resp.Answer, rr)
		}
	}
	if len(resp.Answer) == 0 {
		resp.Ns = []dns.RR{mustRR(nil, testSOA)}
	}
	return resp, true
}

func (f *fakeResolver) Generation() uint64 { return f.gen.Load() }

// set replaces the records of name while the server runs, as an informer
// update would.
func (f *fakeResolver) set(t testing.TB, name string, rrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.records[name] = nil
	for _, s := range rrs {
		f.records[name] = append(f.records[name], mustRR(t, s))
	}
	f.gen.Add(1)
}

func (f *fakeResolver) PodNamespace(ip netip.Addr) (string, bool) {
	ns, ok := f.namespaces[ip]
	return ns, ok
}

type upstreamMode int32

const (
	upAnswer   upstreamMode = iota
	upServfail              // answers SERVFAIL
	upSilent                // never answers
)

// fakeUpstream is a recursive resolver on 127.0.0.1 that knows a few
// names, answers NXDOMAIN (with an SOA of minimum 60) for the rest and
// counts what it was asked.
type fakeUpstream struct {
	addr        netip.AddrPort
	mode        atomic.Int32
	truncateUDP atomic.Bool
	delay       atomic.Int64 // nanoseconds before answering

	mu      sync.Mutex
	records map[string][]dns.RR
	queries []string // "udp name TYPE"
}

func startUpstream(t testing.TB, mode upstreamMode) *fakeUpstream {
	t.Helper()
	u := &fakeUpstream{records: map[string][]dns.RR{}}
	u.mode.Store(int32(mode))
	for _, s := range []string{
		"example.com. 300 IN A 93.184.216.34",
		"my-database.example.com. 300 IN A 192.0.2.10",
		"www.example.com. 300 IN CNAME example.com.",
		"www.example.com. 300 IN A 93.184.216.34",
		"host.corp.internal. 30 IN A 192.0.2.99",
	} {
		rr := mustRR(t, s)
		u.records[rr.Header().Name] = append(u.records[rr.Header().Name], rr)
	}
	for i := range 100 {
		rr := mustRR(t, "big.example.com. 60 IN A 192.0.2."+strconv.Itoa(i+1))
		u.records["big.example.com."] = append(u.records["big.example.com."], rr)
	}
	pcs, ln, ap, err := bindPair("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = ap
	for _, extra := range pcs[1:] {
		extra.Close() // the fake upstream reads one socket
	}
	for _, srv := range []*dns.Server{{PacketConn: pcs[0], Handler: u}, {Listener: ln, Handler: u}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return u
}

func (u *fakeUpstream) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	q := r.Question[0]
	udp := w.RemoteAddr().Network() == "udp"
	u.mu.Lock()
	u.queries = append(u.queries, w.RemoteAddr().Network()+" "+strings.ToLower(q.Name)+" "+dns.TypeToString[q.Qtype])
	held, known := u.records[strings.ToLower(q.Name)]
	u.mu.Unlock()
	time.Sleep(time.Duration(u.delay.Load()))
	switch upstreamMode(u.mode.Load()) {
	case upSilent:
		return
	case upServfail:
		w.WriteMsg(new(dns.Msg).SetRcode(r, dns.RcodeServerFailure))
		return
	}
	m := new(dns.Msg).SetReply(r)
	m.RecursionAvailable = true
	for _, rr := range held {
		if rr.Header().Rrtype == q.Qtype || (rr.Header().Rrtype == dns.TypeCNAME && q.Qtype != dns.TypeCNAME) {
			m.Answer = append(m.Answer, rr)
		}
	}
	if !known {
		m.Rcode = dns.RcodeNameError
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{mustRR(nil, "example.com. 3600 IN SOA ns.example.com. host.example.com. 1 7200 900 1209600 60")}
	}
	if udp && u.truncateUDP.Load() && len(m.Answer) > 10 {
		m.Answer, m.Truncated = nil, true
	}
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
	}
	w.WriteMsg(m)
}

func (u *fakeUpstream) asked() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := append([]string(nil), u.queries...)
	sort.Strings(out)
	return out
}

// fakeClock is the server's clock in tests that age the cache.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// writeResolvConf writes a resolv.conf with the given lines to a temp dir.
func writeResolvConf(t testing.TB, lines ...string) string {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// startServer builds a Server over cfg (filling defaults for tests), serves
// it on 127.0.0.1, and stops it when the test ends.
func startServer(t testing.TB, cfg Config, clock *fakeClock) (*Server, string) {
	t.Helper()
	if cfg.Zone == "" {
		cfg.Zone = "cluster.local"
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = writeResolvConf(t, "# no nameserver")
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.fwd.timeout = 600 * time.Millisecond
	s.fwd.minTry = 200 * time.Millisecond
	if clock != nil {
		s.now = clock.now
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx, []string{"127.0.0.1:0"}); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := s.Wait(); err != nil {
			t.Errorf("Wait: %v", err)
		}
	})
	return s, s.Addrs()[0].String()
}

func query(t testing.TB, network, addr, name string, qtype uint16, edns uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg).SetQuestion(name, qtype)
	if edns > 0 {
		m.SetEdns0(edns, false)
	}
	return exchange(t, network, addr, m)
}

func exchange(t testing.TB, network, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 3 * time.Second}
	resp, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s query %v: %v", network, m.Question, err)
	}
	return resp
}

// discard is a ResponseWriter for benchmarks and direct ServeDNS calls.
type discard struct {
	remote net.Addr
	last   *dns.Msg
	wire   []byte
}

func (d *discard) LocalAddr() net.Addr  { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (d *discard) RemoteAddr() net.Addr { return d.remote }
func (d *discard) WriteMsg(m *dns.Msg) (err error) {
	d.last = m
	d.wire, err = m.PackBuffer(d.wire[:0])
	return err
}
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) Close() error                { return nil }
func (d *discard) TsigStatus() error           { return nil }
func (d *discard) TsigTimersOnly(bool)         {}
func (d *discard) Hijack()                     {}
