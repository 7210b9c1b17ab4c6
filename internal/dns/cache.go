package dns

import (
	"container/list"
	"sync"
	"time"

	"github.com/miekg/dns"
)

const (
	// maxTTL bounds how long a positive upstream answer is kept.
	maxTTL = 3600
	// maxNegativeTTL bounds a negative answer (RFC 2308 §5 suggests 1–3 hours;
	// CoreDNS's cache keeps denials at most 30 minutes).
	maxNegativeTTL = 1800
)

type cacheKey struct {
	name         string // lower case
	qtype, class uint16
	do, cd       bool
}

type cacheEntry struct {
	key               cacheKey
	rcode             int
	ra, ad            bool
	answer, ns, extra []dns.RR
	negative          bool
	stored, expires   time.Time
}

// cache is a bounded LRU of upstream answers. Entries hold the records as
// received; a hit hands out copies with TTLs lowered by the time spent in
// the cache.
type cache struct {
	mu    sync.Mutex
	max   int
	items map[cacheKey]*list.Element
	lru   *list.List // front: most recently used
}

func newCache(size int) *cache {
	return &cache{max: size, items: make(map[cacheKey]*list.Element), lru: list.New()}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

func (c *cache) get(k cacheKey, now time.Time) (*cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.lru.Remove(el)
		delete(c.items, k)
		return nil, false
	}
	c.lru.MoveToFront(el)
	return e, true
}

// put stores m if it is cacheable: NOERROR with records (for min(TTL,
// maxTTL)), or a negative answer (NXDOMAIN, or NOERROR without answers)
// carrying an SOA (for min(SOA TTL, SOA MINIMUM) as RFC 2308 §5). Anything
// else, and answers with TTL 0, is not kept.
func (c *cache) put(k cacheKey, m *dns.Msg, now time.Time) {
	if c.max <= 0 {
		return
	}
	e := &cacheEntry{key: k, rcode: m.Rcode, ra: m.RecursionAvailable, ad: m.AuthenticatedData, stored: now}
	e.answer = m.Answer
	e.ns = m.Ns
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			e.extra = append(e.extra, rr)
		}
	}
	var ttl uint32
	switch {
	case m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0:
		ttl = maxTTL
		for _, s := range [][]dns.RR{e.answer, e.ns, e.extra} {
			for _, rr := range s {
				ttl = min(ttl, rr.Header().Ttl)
			}
		}
	case m.Rcode == dns.RcodeNameError || m.Rcode == dns.RcodeSuccess:
		soa := findSOA(m.Ns)
		if soa == nil {
			return
		}
		e.negative = true
		ttl = min(soa.Hdr.Ttl, soa.Minttl, maxNegativeTTL)
	default:
		return
	}
	if ttl == 0 {
		return
	}
	e.expires = now.Add(time.Duration(ttl) * time.Second)

	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.items[k] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		last := c.lru.Back()
		c.lru.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}

func findSOA(rrs []dns.RR) *dns.SOA {
	for _, rr := range rrs {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa
		}
	}
	return nil
}

// reply builds the answer to req from a cached entry, TTLs lowered by the
// whole seconds the entry has been cached and capped by its remaining life.
func (e *cacheEntry) reply(req *dns.Msg, now time.Time) *dns.Msg {
	elapsed := uint32(now.Sub(e.stored) / time.Second)
	left := uint32((e.expires.Sub(now) + time.Second - 1) / time.Second)
	m := new(dns.Msg)
	m.SetReply(req)
	m.Rcode = e.rcode
	m.RecursionAvailable = e.ra
	m.AuthenticatedData = e.ad
	m.Answer = agedCopy(e.answer, elapsed, left)
	m.Ns = agedCopy(e.ns, elapsed, left)
	m.Extra = agedCopy(e.extra, elapsed, left)
	return m
}

func agedCopy(rrs []dns.RR, elapsed, left uint32) []dns.RR {
	if len(rrs) == 0 {
		return nil
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		c := dns.Copy(rr)
		h := c.Header()
		if h.Ttl > elapsed {
			h.Ttl -= elapsed
		} else {
			h.Ttl = 0
		}
		h.Ttl = min(h.Ttl, left)
		out[i] = c
	}
	return out
}
