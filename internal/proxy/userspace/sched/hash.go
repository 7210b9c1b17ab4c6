package sched

import (
	"encoding/binary"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
)

// HashBuckets is the size of the dh and sh bucket tables. IPVS uses 256 by
// default. Here buckets are assigned by hashing rather than dealt out, so
// a backend's bucket count varies around its share (by about
// 1/sqrt(share*HashBuckets)); 4096 keeps that near 5% for ten backends,
// for 16 KiB per table.
const HashBuckets = 4096

// DestinationHash is IPVS's dh: the backend is looked up in a fixed table
// by a hash of the address the client connected to (Conn.Dest's IP, not
// its port), so all connections to one destination go to one backend.
// Behind a ClusterIP that is one backend per service IP; it suits caches
// keyed by destination. See SourceHash for the table and the fallback.
// The zero value is ready to use.
type DestinationHash struct{ h hashSched }

// Update implements Scheduler.
func (d *DestinationHash) Update(backends []Backend) { d.h.update(backends) }

// Pick implements Scheduler.
func (d *DestinationHash) Pick(c Conn, usable func(netip.AddrPort) bool, _ func(netip.AddrPort) int) (netip.AddrPort, bool) {
	return d.h.pick(c.Dest.Addr(), usable)
}

// SourceHash is IPVS's sh: the backend is looked up in a fixed table by a
// hash of the client's IP (not its port, like IPVS without sh-port), so a
// client sticks to one backend while the set is unchanged. IPv4 and
// IPv4-mapped IPv6 forms of an address hash alike.
//
// The table has HashBuckets buckets. Where IPVS deals the buckets out to
// servers in list order by weight — so that any change reshuffles most
// addresses — each bucket here goes to the backend with the highest
// weighted rendezvous score for it (weight / -ln(h), h a hash of bucket and
// backend address in (0,1)). So the table is a pure function of the set
// (two proxies, or one restarted, agree), adding a backend or raising its
// weight only moves buckets to it, and removing one or setting its weight
// to 0 only moves the buckets it held. Weight-0 backends hold no bucket.
//
// A backend usable rejects is handled as IPVS's sh-fallback flag does: the
// following buckets of the table are tried in turn, wrapping, and the first
// usable backend found is picked; as the buckets' backends are scattered,
// a failed backend's clients spread over the others. The zero value is
// ready to use.
type SourceHash struct{ h hashSched }

// Update implements Scheduler.
func (s *SourceHash) Update(backends []Backend) { s.h.update(backends) }

// Pick implements Scheduler.
func (s *SourceHash) Pick(c Conn, usable func(netip.AddrPort) bool, _ func(netip.AddrPort) int) (netip.AddrPort, bool) {
	return s.h.pick(c.Client.Addr(), usable)
}

type hashTable struct {
	set     *set
	holders int                // backends holding at least one bucket
	bucket  [HashBuckets]int32 // index into set.b; unused when holders == 0
}

type hashSched struct {
	mu sync.Mutex // serialises Update; Pick only loads t
	t  atomic.Pointer[hashTable]
}

func (h *hashSched) update(backends []Backend) {
	s := newSet(backends)
	h.mu.Lock()
	defer h.mu.Unlock()
	if old := h.t.Load(); old != nil && old.set.equal(s) {
		return // same set, same table: skip the rebuild
	}
	h.t.Store(buildTable(s))
}

func (h *hashSched) pick(a netip.Addr, usable func(netip.AddrPort) bool) (netip.AddrPort, bool) {
	t := h.t.Load()
	if t == nil || t.holders == 0 {
		return netip.AddrPort{}, false
	}
	start := addrHash(a) & (HashBuckets - 1)
	first := t.set.b[t.bucket[start]].Addr
	if isUsable(usable, first) {
		return first, true
	}
	// Fallback: walk the following buckets; ask usable at most once per
	// backend and stop when every holder has refused.
	rejected := make([]uint64, (len(t.set.b)+63)/64)
	idx := t.bucket[start]
	rejected[idx/64] |= 1 << (idx % 64)
	nrej := 1
	for k := uint64(1); k < HashBuckets && nrej < t.holders; k++ {
		idx := t.bucket[(start+k)&(HashBuckets-1)]
		if rejected[idx/64]&(1<<(idx%64)) != 0 {
			continue
		}
		b := t.set.b[idx].Addr
		if usable(b) {
			return b, true
		}
		rejected[idx/64] |= 1 << (idx % 64)
		nrej++
	}
	return netip.AddrPort{}, false
}

func buildTable(s *set) *hashTable {
	t := &hashTable{set: s}
	type cand struct {
		idx    int32
		key    uint64
		weight float64
	}
	var cands []cand
	sameWeight := true
	for i, b := range s.b {
		if b.Weight <= 0 {
			continue
		}
		if b.Weight != s.max {
			sameWeight = false
		}
		cands = append(cands, cand{int32(i), backendKey(b.Addr), float64(b.Weight)})
	}
	if len(cands) == 0 {
		return t
	}
	held := make([]bool, len(s.b))
	for i := range HashBuckets {
		salt := mix64(uint64(i) + 0x5851f42d4c957f2d)
		best, bestU, bestScore := int32(-1), uint64(0), 0.0
		for _, c := range cands {
			u := mix64(c.key ^ salt)
			var score float64
			if !sameWeight {
				// Weighted rendezvous: larger is better; with equal
				// weights it orders as u does, so that case skips
				// the logarithm.
				score = c.weight / -math.Log((float64(u>>11)+0.5)/(1<<53))
			}
			// Ties (astronomically rare) go to the larger hash, then
			// the lower address.
			if best < 0 || score > bestScore || score == bestScore && u > bestU {
				best, bestU, bestScore = c.idx, u, score
			}
		}
		t.bucket[i] = best
		if !held[best] {
			held[best] = true
			t.holders++
		}
	}
	return t
}

// addrHash hashes an IP for bucket lookup; zones are ignored.
func addrHash(a netip.Addr) uint64 {
	b := a.As16()
	return mix64(mix64(binary.BigEndian.Uint64(b[:8])^0x9e3779b97f4a7c15) ^ binary.BigEndian.Uint64(b[8:]))
}

func backendKey(ap netip.AddrPort) uint64 {
	b := ap.Addr().As16()
	h := mix64(binary.BigEndian.Uint64(b[:8]) ^ 0xd1b54a32d192ed03)
	h = mix64(h ^ binary.BigEndian.Uint64(b[8:]))
	return mix64(h ^ uint64(ap.Port()))
}

// mix64 is the splitmix64 finaliser: a fixed (unseeded) bijection whose
// output bits all depend on all input bits. Fixed so that the tables are the
// same in every process.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
