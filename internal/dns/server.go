package dns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// Resolver answers for the cluster zone (records.Cluster implements it).
type Resolver interface {
	// Resolve answers req if its name is ours; ok=false means forward upstream.
	// The reply already is dns.Msg.SetReply(req) with Rcode/Answer/Ns/Extra set;
	// it answers SERVFAIL for our names until synced.
	Resolve(req *dns.Msg) (resp *dns.Msg, ok bool)
	// PodNamespace returns the namespace of the pod with this IP.
	PodNamespace(ip netip.Addr) (string, bool)
	// Generation changes whenever an answer of Resolve may change: the
	// server reuses an answer only while it is the same.
	Generation() uint64
}

// Config configures a Server.
type Config struct {
	Resolver Resolver
	// Zone is the cluster domain, e.g. "cluster.local".
	Zone string
	// Upstreams are the forwarders for names outside the zone; empty: the
	// nameservers of ResolvConf.
	Upstreams []netip.AddrPort
	// ResolvConf is the node's resolv.conf (default /etc/resolv.conf). Its
	// nameservers are the default upstreams, its search domains extend the
	// autopath search list as kubelet extends a ClusterFirst pod's.
	ResolvConf string
	// CacheSize is the number of upstream answers kept (default 10000;
	// negative: no cache). Positive answers are kept for min(TTL, 1 h),
	// negative ones for the SOA minimum as RFC 2308 says (at most 30 min).
	CacheSize int
	// Autopath answers the first search-path query of a pod with the final
	// answer; see the package documentation for when that is safe.
	Autopath bool
	// Registry, when set, receives the metrics.
	Registry prometheus.Registerer
}

const (
	// maxUDPSize caps the EDNS0 buffer size we honour and advertise.
	maxUDPSize = 4096
	// negativeTTLFallback is the CNAME TTL of an autopath answer that has
	// neither records nor an SOA to take one from.
	negativeTTLFallback = 5
)

// Server is the cluster DNS server. It is a dns.Handler; Start or
// ListenAndServe also bind it to addresses.
type Server struct {
	res      Resolver
	zone     string // lower case, fully qualified
	autopath bool
	search   []string // node search domains, fully qualified
	cache    *cache
	fwd      *forwarder
	m        *metrics
	now      func() time.Time // the cache's clock

	labels sync.Map // netip.AddrPort → server label

	flightMu sync.Mutex
	flights  map[cacheKey]*flight

	mu      sync.Mutex
	started bool
	addrs   []netip.AddrPort
	done    chan struct{}
	errs    []error
}

// New builds a Server. Without upstreams (neither Config.Upstreams nor a
// nameserver in ResolvConf) names outside the zone get SERVFAIL.
func New(cfg Config) (*Server, error) {
	if cfg.Resolver == nil {
		return nil, errors.New("dns: Config.Resolver is required")
	}
	zone := strings.ToLower(dns.Fqdn(cfg.Zone))
	if cfg.Zone == "" || zone == "." {
		return nil, errors.New("dns: Config.Zone is required")
	}
	if _, ok := dns.IsDomainName(zone); !ok {
		return nil, fmt.Errorf("dns: invalid zone %q", cfg.Zone)
	}
	path := cfg.ResolvConf
	if path == "" {
		path = "/etc/resolv.conf"
	}
	// Without upstreams (no resolv.conf, or no nameserver in it) the
	// cluster's names still resolve; other names get SERVFAIL.
	rc, _ := readResolvConf(path)
	ups := cfg.Upstreams
	if len(ups) == 0 {
		ups = rc.nameservers
	}
	size := cfg.CacheSize
	if size == 0 {
		size = 10000
	}
	s := &Server{
		res:      cfg.Resolver,
		zone:     zone,
		autopath: cfg.Autopath,
		search:   rc.search,
		cache:    newCache(size),
		now:      time.Now,
		flights:  map[cacheKey]*flight{},
	}
	m, err := newMetrics(cfg.Registry, func() float64 { return float64(s.cache.len()) })
	if err != nil {
		return nil, fmt.Errorf("dns: registering metrics: %w", err)
	}
	s.m = m
	s.fwd = newForwarder(ups, m)
	return s, nil
}

// ServeDNS answers one query; the server label of its metrics is
// "dns://" and the writer's local address.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	s.serve(w, r, s.serverLabel(w.LocalAddr()))
}

// outcome is what serve tells its transport about an answer: whether the
// same query may get the same bytes again while the Resolver's generation
// is unchanged, and the metrics such a repeat counts in.
type outcome struct {
	cacheable bool
	series    answerSeries
}

// answerSeries are the metric series one answer counts in; a repeat of a
// cached answer counts in the same.
type answerSeries struct {
	requests  prometheus.Counter
	responses prometheus.Counter
	duration  prometheus.Observer
}

// serverLabel formats a local address once per address, not per query.
func (s *Server) serverLabel(a net.Addr) string {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	default:
		return "dns://" + a.String()
	}
	if l, ok := s.labels.Load(ap); ok {
		return l.(string)
	}
	l := "dns://" + netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
	s.labels.Store(ap, l)
	return l
}

func (s *Server) serve(w dns.ResponseWriter, r *dns.Msg, server string) outcome {
	start := time.Now()
	if r.Response {
		return outcome{} // never answer answers: that is how reflection loops start
	}
	k := requestKey{server: server}
	var client netip.Addr
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		client, _ = netip.AddrFromSlice(a.IP)
	case *net.TCPAddr:
		k.tcp = true
		client, _ = netip.AddrFromSlice(a.IP)
	}
	client = client.Unmap()
	k.v6 = client.Is6()
	if len(r.Question) > 0 {
		k.qtype = r.Question[0].Qtype
		k.inZone = s.inZone(r.Question[0].Name)
	}
	rm := s.m.forRequest(k, s.zone)
	rm.requests.Inc()

	opt := r.IsEdns0()
	var resp *dns.Msg
	plugin, cacheable := "", false
	switch {
	case r.Opcode != dns.OpcodeQuery:
		resp = new(dns.Msg).SetRcode(r, dns.RcodeNotImplemented)
	case len(r.Question) != 1:
		resp = new(dns.Msg).SetRcode(r, dns.RcodeFormatError)
	case opt != nil && opt.Version() != 0:
		resp = new(dns.Msg).SetRcode(r, dns.RcodeBadVers)
	default:
		resp, plugin, cacheable = s.answer(r, client, server, start.Add(forwardTimeout))
	}
	// Counted before writing, so a client that sees the answer also sees it counted.
	rc := s.m.forResponse(responseKey{server: server, inZone: k.inZone, rcode: resp.Rcode, plugin: plugin}, s.zone)
	rc.Inc()
	s.write(w, r, resp, opt, k.tcp)
	rm.duration.Observe(time.Since(start).Seconds())
	return outcome{cacheable: cacheable, series: answerSeries{requests: rm.requests, responses: rc, duration: rm.duration}}
}

// inZone tells whether name is the cluster zone or below it. It is
// IsSubDomain without the allocations, for a fully qualified zone.
func (s *Server) inZone(name string) bool {
	z := s.zone
	switch {
	case len(name) == len(z):
		return strings.EqualFold(name, z)
	case len(name) > len(z):
		i := len(name) - len(z)
		return name[i-1] == '.' && (i < 2 || name[i-2] != '\\') && strings.EqualFold(name[i:], z)
	}
	return false
}

// write sends resp with our OPT record when the client sent one, cut to the
// client's UDP buffer size or to the 64 KiB of a TCP message.
func (s *Server) write(w dns.ResponseWriter, req, resp *dns.Msg, opt *dns.OPT, tcp bool) {
	resp.Id = req.Id
	if hasOPT(resp.Extra) {
		extra := make([]dns.RR, 0, len(resp.Extra))
		for _, rr := range resp.Extra {
			if rr.Header().Rrtype != dns.TypeOPT {
				extra = append(extra, rr)
			}
		}
		resp.Extra = extra
	}
	size := dns.MinMsgSize
	if opt != nil {
		size = min(max(int(opt.UDPSize()), dns.MinMsgSize), maxUDPSize)
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(maxUDPSize)
		o.SetDo(opt.Do())
		// Extra is rebuilt rather than appended to: it may share its array
		// with the Resolver's precomputed records.
		resp.Extra = append(resp.Extra[:len(resp.Extra):len(resp.Extra)], o)
	}
	if tcp {
		size = dns.MaxMsgSize
	}
	resp.Truncate(size)
	if err := w.WriteMsg(resp); err != nil {
		// Most likely a record that cannot be packed; say so rather than
		// leaving the client to time out.
		fail := new(dns.Msg).SetRcode(req, dns.RcodeServerFailure)
		_ = w.WriteMsg(fail)
	}
}

func hasOPT(rrs []dns.RR) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			return true
		}
	}
	return false
}

// answer decides who answers r: the Resolver for its names (then autopath
// and the ExternalName chase may extend that answer), SERVFAIL for other
// names of our zone, the cache or the upstreams for everything else.
// cacheable says the answer came from the Resolver's state alone: neither
// the client nor an upstream had a say.
func (s *Server) answer(r *dns.Msg, client netip.Addr, server string, deadline time.Time) (resp *dns.Msg, plugin string, cacheable bool) {
	if resp, ok := s.res.Resolve(r); ok {
		if resp.Rcode == dns.RcodeNameError && s.autopath {
			if ap := s.autopathAnswer(r, client, server, deadline); ap != nil {
				return ap, "autopath", false
			}
			// Another client's NXDOMAIN may be autopath's to extend.
			return resp, "kubernetes", false
		}
		resp, asked := s.chase(r, resp, server, deadline)
		return resp, "kubernetes", !asked
	}
	resp, plugin = s.forward(r, server, deadline)
	return resp, plugin, false
}

// lookup answers name (of r's type and class) as if a client had asked it,
// without autopath.
func (s *Server) lookup(r *dns.Msg, name, server string, deadline time.Time) (*dns.Msg, string) {
	sub := new(dns.Msg)
	sub.Id = r.Id
	sub.RecursionDesired = r.RecursionDesired
	sub.CheckingDisabled = r.CheckingDisabled
	sub.Question = []dns.Question{{Name: name, Qtype: r.Question[0].Qtype, Qclass: r.Question[0].Qclass}}
	if opt := r.IsEdns0(); opt != nil {
		sub.SetEdns0(opt.UDPSize(), opt.Do())
	}
	if resp, ok := s.res.Resolve(sub); ok {
		resp, _ := s.chase(sub, resp, server, deadline)
		return resp, "kubernetes"
	}
	return s.forward(sub, server, deadline)
}

// forward answers r from the cache or the upstreams. Names of the cluster
// zone are never forwarded: the Resolver not owning one is our bug, and
// the world has no better answer for it.
func (s *Server) forward(r *dns.Msg, server string, deadline time.Time) (*dns.Msg, string) {
	q := r.Question[0]
	if s.inZone(q.Name) {
		return new(dns.Msg).SetRcode(r, dns.RcodeServerFailure), ""
	}
	if q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR {
		return new(dns.Msg).SetRcode(r, dns.RcodeRefused), ""
	}
	do := false
	if opt := r.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	key := cacheKey{name: strings.ToLower(q.Name), qtype: q.Qtype, class: q.Qclass, do: do, cd: r.CheckingDisabled}
	now := s.now()
	if e, ok := s.cache.get(key, now); ok {
		kind := "success"
		if e.negative {
			kind = "denial"
		}
		s.m.cacheHits.WithLabelValues(server, kind).Inc()
		return e.reply(r, now), "cache"
	}
	s.m.cacheMisses.WithLabelValues(server).Inc()
	up, err := s.exchangeOnce(key, q, r.CheckingDisabled, deadline)
	if err != nil {
		resp := new(dns.Msg).SetRcode(r, dns.RcodeServerFailure)
		resp.RecursionAvailable = true
		return resp, "forward"
	}
	resp := new(dns.Msg).SetReply(r)
	resp.Rcode = up.Rcode
	resp.RecursionAvailable = up.RecursionAvailable
	resp.AuthenticatedData = up.AuthenticatedData && (do || r.AuthenticatedData)
	resp.Answer, resp.Ns, resp.Extra = up.Answer, up.Ns, up.Extra
	return resp, "forward"
}

// flight is one upstream exchange that concurrent identical misses share.
type flight struct {
	done chan struct{}
	msg  *dns.Msg // read only once done
	err  error
}

// exchangeOnce forwards q, or waits for the same question already on its
// way upstream, so a burst of clients asking one name costs one upstream
// query. The leader caches the answer before releasing the others.
func (s *Server) exchangeOnce(key cacheKey, q dns.Question, cd bool, deadline time.Time) (*dns.Msg, error) {
	s.flightMu.Lock()
	if f, ok := s.flights[key]; ok {
		s.flightMu.Unlock()
		<-f.done // the leader's exchange is bounded by forwardTimeout
		return f.msg, f.err
	}
	f := &flight{done: make(chan struct{})}
	s.flights[key] = f
	s.flightMu.Unlock()

	f.msg, f.err = s.fwd.exchange(q, key.do, cd, deadline)
	if f.err == nil {
		s.cache.put(key, f.msg, s.now())
	}
	s.flightMu.Lock()
	delete(s.flights, key)
	s.flightMu.Unlock()
	close(f.done)
	return f.msg, f.err
}

// chase completes an ExternalName answer as CoreDNS does: when an A or
// AAAA question was answered with only CNAMEs ending outside the zone, the
// target's records of the asked type are looked up upstream and appended
// after the CNAMEs. When the lookup fails the CNAME is answered alone; the
// client may chase it itself. asked says the upstreams were consulted.
func (s *Server) chase(r, resp *dns.Msg, server string, deadline time.Time) (_ *dns.Msg, asked bool) {
	q := r.Question[0]
	if (q.Qtype != dns.TypeA && q.Qtype != dns.TypeAAAA) || resp.Rcode != dns.RcodeSuccess || len(resp.Answer) == 0 {
		return resp, false
	}
	var target string
	for _, rr := range resp.Answer {
		c, ok := rr.(*dns.CNAME)
		if !ok {
			return resp, false
		}
		target = c.Target
	}
	if s.inZone(target) {
		return resp, false
	}
	sub := new(dns.Msg)
	sub.Id = r.Id
	sub.RecursionDesired = true
	sub.Question = []dns.Question{{Name: target, Qtype: q.Qtype, Qclass: q.Qclass}}
	up, _ := s.forward(sub, server, deadline)
	if up.Rcode != dns.RcodeSuccess || len(up.Answer) == 0 {
		return resp, true
	}
	answer := make([]dns.RR, 0, len(resp.Answer)+len(up.Answer))
	answer = append(answer, resp.Answer...)
	resp.Answer = append(answer, up.Answer...)
	return resp, true
}

// autopathAnswer walks the rest of the client pod's search list for a
// first-search-domain query that did not exist, and answers with the first
// candidate that is not NXDOMAIN, behind a CNAME from the asked name. nil
// means: answer the original NXDOMAIN.
func (s *Server) autopathAnswer(r *dns.Msg, client netip.Addr, server string, deadline time.Time) *dns.Msg {
	if !client.IsValid() {
		return nil
	}
	ns, ok := s.res.PodNamespace(client)
	if !ok || ns == "" {
		return nil
	}
	first := "." + strings.ToLower(ns) + ".svc." + s.zone
	qname := r.Question[0].Name
	if len(qname) <= len(first) || !strings.EqualFold(qname[len(qname)-len(first):], first) {
		return nil
	}
	base := qname[:len(qname)-len(first)+1] // keeps the dot: "example.com."
	cands := make([]string, 0, 3+len(s.search))
	cands = append(cands, base+"svc."+s.zone, base+s.zone)
	for _, d := range s.search {
		cands = append(cands, base+d)
	}
	cands = append(cands, base)
	for _, name := range cands {
		if !strings.HasSuffix(name, ".") || len(name) > 255 {
			continue
		}
		m, _ := s.lookup(r, name, server, deadline)
		switch m.Rcode {
		case dns.RcodeNameError:
			continue
		case dns.RcodeSuccess:
		default:
			return nil // on failure the client's own search is the better judge
		}
		resp := new(dns.Msg).SetReply(r)
		resp.Rcode = m.Rcode
		resp.RecursionAvailable = true
		cname := &dns.CNAME{
			Hdr:    dns.RR_Header{Name: qname, Rrtype: dns.TypeCNAME, Class: r.Question[0].Qclass, Ttl: answerTTL(m)},
			Target: name,
		}
		resp.Answer = make([]dns.RR, 0, 1+len(m.Answer))
		resp.Answer = append(append(resp.Answer, cname), m.Answer...)
		resp.Ns, resp.Extra = m.Ns, m.Extra
		s.m.autopath.WithLabelValues(server).Inc()
		return resp
	}
	return nil
}

// answerTTL is the TTL for a CNAME leading to m's answer: the least TTL of
// its records, else its negative TTL.
func answerTTL(m *dns.Msg) uint32 {
	if len(m.Answer) > 0 {
		ttl := m.Answer[0].Header().Ttl
		for _, rr := range m.Answer[1:] {
			ttl = min(ttl, rr.Header().Ttl)
		}
		return ttl
	}
	if soa := findSOA(m.Ns); soa != nil {
		return min(soa.Hdr.Ttl, soa.Minttl)
	}
	return negativeTTLFallback
}
