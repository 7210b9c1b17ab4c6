package ipam

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
)

// Address is one assigned address and the pool it counts against.
type Address struct {
	IP   netip.Addr
	Pool string
}

// Assignment is what a Service holds: one address per IP family, in the
// order of its Request.Families.
type Assignment struct {
	Service   ServiceKey
	Addresses []Address
}

// IPs are the assigned addresses, for status.loadBalancer.ingress.
func (a Assignment) IPs() []netip.Addr {
	out := make([]netip.Addr, len(a.Addresses))
	for i, ad := range a.Addresses {
		out[i] = ad.IP
	}
	return out
}

// Orphan is an assigned address the current pools no longer allow the
// Service to hold. Err matches ErrNotInPool (out of every pool, or of the
// pool the Service asked for) or ErrNotAllowed (the pools holding it no
// longer admit the Service).
type Orphan struct {
	Service ServiceKey
	Address netip.Addr
	Err     error
}

type holding struct {
	req   Request
	addrs []Address
}

// Allocator assigns LoadBalancer addresses. It is safe for concurrent use.
// The zero value is not usable; call New.
type Allocator struct {
	mu     sync.Mutex
	pools  []*Pool // sorted by name
	byName map[string]*Pool
	held   map[netip.Addr][]ServiceKey // holders, sorted
	svcs   map[ServiceKey]*holding
}

// New returns an Allocator without pools.
func New() *Allocator {
	return &Allocator{
		byName: map[string]*Pool{},
		held:   map[netip.Addr][]ServiceKey{},
		svcs:   map[ServiceKey]*holding{},
	}
}

// SetPools replaces the pools. It fails, changing nothing, on a pool
// without a name or ranges, a duplicate name or an invalid range. It never
// moves or drops an assignment; the ones the new pools no longer allow are
// returned (sorted by service and address) for the controller to Assign
// again and report.
func (a *Allocator) SetPools(pools []Pool) ([]Orphan, error) {
	byName := make(map[string]*Pool, len(pools))
	sorted := make([]*Pool, 0, len(pools))
	for i := range pools {
		p := pools[i]
		if err := p.validate(); err != nil {
			return nil, err
		}
		if byName[p.Name] != nil {
			return nil, fmt.Errorf("duplicate address pool %s", p.Name)
		}
		p.Ranges = slices.Clone(p.Ranges)
		if p.AutoAssign != nil {
			v := *p.AutoAssign
			p.AutoAssign = &v
		}
		for j := range p.Ranges {
			p.Ranges[j].First, p.Ranges[j].Last = p.Ranges[j].First.Unmap(), p.Ranges[j].Last.Unmap()
		}
		slices.SortStableFunc(p.Ranges, func(x, y Range) int { return x.First.Compare(y.First) })
		byName[p.Name] = &p
		sorted = append(sorted, &p)
	}
	slices.SortFunc(sorted, func(x, y *Pool) int { return strings.Compare(x.Name, y.Name) })

	a.mu.Lock()
	defer a.mu.Unlock()
	a.pools, a.byName = sorted, byName
	var orphans []Orphan
	for _, key := range a.serviceKeys() {
		h := a.svcs[key]
		for i, ad := range h.addrs {
			if p := a.poolFor(&h.req, ad.IP); p != nil {
				h.addrs[i].Pool = p.Name
				continue
			}
			orphans = append(orphans, Orphan{Service: key, Address: ad.IP, Err: a.whyNot(&h.req, ad.IP, "held by")})
		}
	}
	return orphans, nil
}

// Assign gives req.Service its addresses. If the Service already holds
// addresses that satisfy req (requested addresses, pool, families,
// selectors, sharing), it keeps them. Otherwise it releases them and picks
// anew: exactly the requested addresses, or an automatic choice (see the
// package doc). On error the Service holds nothing.
func (a *Allocator) Assign(req Request) (Assignment, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	nreq, err := req.normalize()
	if err != nil {
		a.release(req.Service)
		return Assignment{}, err
	}
	req = nreq
	prev := a.svcs[req.Service]
	if prev != nil && a.satisfies(prev, &req) {
		prev.req = req
		prev.addrs = orderByFamily(prev.addrs, req.Families)
		return a.assignment(req.Service), nil
	}
	var prevAddrs []Address
	if prev != nil {
		prevAddrs = prev.addrs
		a.release(req.Service)
	}
	var addrs []Address
	if len(req.Addresses) > 0 {
		for _, ip := range req.Addresses {
			p, err := a.placeRequested(&req, ip)
			if err != nil {
				return Assignment{}, err
			}
			if err := a.conflict(&req, ip); err != nil {
				return Assignment{}, err
			}
			addrs = append(addrs, Address{IP: ip, Pool: p.Name})
		}
	} else if addrs, err = a.pick(&req, prevAddrs); err != nil {
		return Assignment{}, err
	}
	a.record(req, orderByFamily(addrs, req.Families))
	return a.assignment(req.Service), nil
}

// Restore records that svc already holds ips (from its status), so that a
// restarted controller keeps every Service's addresses: call it for every
// Service before the first Assign. It refuses, recording nothing, addresses
// in no pool or held by a Service svc may not share with; the controller
// then Assigns svc anew. An address in a pool that does not admit svc is
// recorded; the next Assign moves it.
func (a *Allocator) Restore(svc ServiceKey, ips []netip.Addr, req Request) (Assignment, error) {
	req.Service = svc
	a.mu.Lock()
	defer a.mu.Unlock()
	req, err := req.normalize()
	if err != nil {
		return Assignment{}, err
	}
	a.release(svc)
	var addrs []Address
	seen := map[netip.Addr]bool{}
	for _, ip := range ips {
		ip = ip.Unmap()
		if !ip.IsValid() || seen[ip] {
			return Assignment{}, &Error{kind: ErrInvalidRequest, service: svc, msg: fmt.Sprintf("cannot restore %v for %s: invalid or repeated address", ips, svc)}
		}
		seen[ip] = true
		p := a.poolFor(&req, ip)
		if p == nil {
			for _, q := range a.pools {
				if ok, _ := q.usable(ip); ok {
					p = q
					break
				}
			}
		}
		if p == nil {
			return Assignment{}, a.whyNot(&req, ip, "held by")
		}
		if err := a.conflict(&req, ip); err != nil {
			return Assignment{}, err
		}
		addrs = append(addrs, Address{IP: ip, Pool: p.Name})
	}
	if len(addrs) == 0 {
		return Assignment{Service: svc}, nil
	}
	a.record(req, orderByFamily(addrs, req.Families))
	return a.assignment(svc), nil
}

// Release frees what svc holds; an address shared with other Services
// stays theirs. It reports whether svc held anything.
func (a *Allocator) Release(svc ServiceKey) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.release(svc)
}

// Assigned returns what svc holds.
func (a *Allocator) Assigned(svc ServiceKey) (Assignment, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.svcs[svc] == nil {
		return Assignment{}, false
	}
	return a.assignment(svc), true
}

// Holders returns the Services holding ip, sorted.
func (a *Allocator) Holders(ip netip.Addr) []ServiceKey {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.held[ip.Unmap()])
}

func (a *Allocator) assignment(svc ServiceKey) Assignment {
	return Assignment{Service: svc, Addresses: slices.Clone(a.svcs[svc].addrs)}
}

func (a *Allocator) serviceKeys() []ServiceKey {
	keys := make([]ServiceKey, 0, len(a.svcs))
	for k := range a.svcs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	return keys
}

func (a *Allocator) record(req Request, addrs []Address) {
	a.svcs[req.Service] = &holding{req: req, addrs: addrs}
	for _, ad := range addrs {
		hs := a.held[ad.IP]
		i := sort.Search(len(hs), func(i int) bool { return !hs[i].less(req.Service) })
		a.held[ad.IP] = slices.Insert(hs, i, req.Service)
	}
}

func (a *Allocator) release(svc ServiceKey) bool {
	h := a.svcs[svc]
	if h == nil {
		return false
	}
	for _, ad := range h.addrs {
		hs := slices.DeleteFunc(a.held[ad.IP], func(k ServiceKey) bool { return k == svc })
		if len(hs) == 0 {
			delete(a.held, ad.IP)
		} else {
			a.held[ad.IP] = hs
		}
	}
	delete(a.svcs, svc)
	return true
}

// poolFor is the first pool (by name) that may hand ip to req, or nil.
func (a *Allocator) poolFor(req *Request, ip netip.Addr) *Pool {
	for _, p := range a.pools {
		if req.Pool != "" && p.Name != req.Pool {
			continue
		}
		if ok, _ := p.usable(ip); ok && p.admits(req) == "" {
			return p
		}
	}
	return nil
}

// whyNot explains why poolFor(req, ip) is nil. verb says how req relates
// to ip ("requested by", "held by").
func (a *Allocator) whyNot(req *Request, ip netip.Addr, verb string) error {
	e := &Error{service: req.Service, addr: ip}
	var in []*Pool
	heldBack := ""
	for _, p := range a.pools {
		if ok, why := p.usable(ip); ok {
			in = append(in, p)
		} else if why != "" && heldBack == "" {
			heldBack = why
		}
	}
	if req.Pool != "" {
		rp := a.byName[req.Pool]
		switch {
		case rp == nil:
			e.kind, e.msg = ErrNoPool, fmt.Sprintf("address pool %s, requested by %s, does not exist", req.Pool, req.Service)
			return e
		case !slices.Contains(in, rp):
			e.kind, e.msg = ErrNotInPool, fmt.Sprintf("%s, %s %s, is not in its requested pool %s", ip, verb, req.Service, req.Pool)
			if _, why := rp.usable(ip); why != "" {
				e.msg += ": " + why
			} else if len(in) > 0 {
				e.msg += fmt.Sprintf(" (it is in pool %s)", in[0].Name)
			}
			return e
		}
		in = []*Pool{rp}
	}
	if len(in) == 0 {
		e.kind = ErrNotInPool
		if heldBack != "" {
			e.msg = fmt.Sprintf("%s, %s %s, is not available: %s", ip, verb, req.Service, heldBack)
		} else {
			e.msg = fmt.Sprintf("%s, %s %s, is not in any address pool", ip, verb, req.Service)
		}
		return e
	}
	var whys []string
	for _, p := range in {
		whys = append(whys, p.admits(req))
	}
	e.kind, e.msg = ErrNotAllowed, fmt.Sprintf("%s, %s %s, may not be used: %s", ip, verb, req.Service, strings.Join(whys, "; "))
	return e
}

func (a *Allocator) placeRequested(req *Request, ip netip.Addr) (*Pool, error) {
	if p := a.poolFor(req, ip); p != nil {
		return p, nil
	}
	return nil, a.whyNot(req, ip, "requested by")
}

// conflict returns ErrInUse if a holder of ip other than req.Service may
// not share it with req.
func (a *Allocator) conflict(req *Request, ip netip.Addr) error {
	for _, h := range a.held[ip] {
		if h == req.Service {
			continue
		}
		if why := shareConflict(req, h, &a.svcs[h].req); why != "" {
			return &Error{kind: ErrInUse, service: req.Service, addr: ip, holder: h, msg: fmt.Sprintf("%s, for %s, is %s", ip, req.Service, why)}
		}
	}
	return nil
}

func (a *Allocator) satisfies(h *holding, req *Request) bool {
	if len(h.addrs) != len(req.Families) {
		return false
	}
	for _, f := range req.Families {
		if !slices.ContainsFunc(h.addrs, func(ad Address) bool { return familyOf(ad.IP) == f }) {
			return false
		}
	}
	for _, ip := range req.Addresses {
		if !slices.ContainsFunc(h.addrs, func(ad Address) bool { return ad.IP == ip }) {
			return false
		}
	}
	pools := make([]string, len(h.addrs))
	for i, ad := range h.addrs {
		p := a.poolFor(req, ad.IP)
		if p == nil || a.conflict(req, ad.IP) != nil {
			return false
		}
		pools[i] = p.Name
	}
	for i := range h.addrs {
		h.addrs[i].Pool = pools[i]
	}
	return true
}

// pick chooses addresses for a request without requested addresses.
func (a *Allocator) pick(req *Request, prev []Address) ([]Address, error) {
	if req.Pool != "" && a.byName[req.Pool] == nil {
		return nil, &Error{kind: ErrNoPool, service: req.Service, msg: fmt.Sprintf("address pool %s, requested by %s, does not exist", req.Pool, req.Service)}
	}
	var eligible []*Pool
	var whys []string
	for _, p := range a.pools {
		switch {
		case req.Pool != "" && p.Name != req.Pool:
			continue
		case req.Pool == "" && !p.autoAssign():
			whys = append(whys, fmt.Sprintf("pool %s does not auto-assign", p.Name))
			continue
		}
		if why := p.admits(req); why != "" {
			whys = append(whys, why)
			continue
		}
		missing := ""
		for _, f := range req.Families {
			if !p.hasFamily(f == corev1.IPv4Protocol) {
				missing = fmt.Sprintf("pool %s has no %s addresses", p.Name, f)
				break
			}
		}
		if missing != "" {
			whys = append(whys, missing)
			continue
		}
		eligible = append(eligible, p)
	}
	if len(eligible) == 0 {
		msg := fmt.Sprintf("no address pool can give %s %s addresses", req.Service, familiesString(req.Families))
		if len(whys) == 0 {
			msg += ": there are no address pools"
		} else {
			msg += ": " + strings.Join(whys, "; ")
		}
		return nil, &Error{kind: ErrNoPool, service: req.Service, msg: msg}
	}
	// First pass: a pool where every family can reuse the Service's own
	// previous address or share one, so sharing groups stay together and a
	// changed request moves as little as possible. Second pass: free
	// addresses too.
	for _, allowFree := range []bool{false, true} {
		for _, p := range eligible {
			if addrs := a.pickIn(p, req, prev, allowFree); addrs != nil {
				return addrs, nil
			}
		}
	}
	names := make([]string, len(eligible))
	for i, p := range eligible {
		names[i] = p.Name
	}
	return nil, &Error{kind: ErrPoolExhausted, service: req.Service, msg: fmt.Sprintf("no free %s address for %s in address pool %s", familiesString(req.Families), req.Service, strings.Join(names, ", "))}
}

func (a *Allocator) pickIn(p *Pool, req *Request, prev []Address, allowFree bool) []Address {
	var out []Address
	for _, f := range req.Families {
		v4 := f == corev1.IPv4Protocol
		ip, ok := a.preferred(p, req, prev, v4)
		if !ok && allowFree {
			ip, ok = a.lowestFree(p, v4)
		}
		if !ok {
			return nil
		}
		out = append(out, Address{IP: ip, Pool: p.Name})
	}
	return out
}

// preferred is the Service's own previous address of the family in p, or
// else the lowest address in p it may share.
func (a *Allocator) preferred(p *Pool, req *Request, prev []Address, v4 bool) (netip.Addr, bool) {
	for _, ad := range prev {
		if ad.IP.Is4() == v4 {
			if ok, _ := p.usable(ad.IP); ok && a.conflict(req, ad.IP) == nil {
				return ad.IP, true
			}
		}
	}
	if req.SharingKey == "" {
		return netip.Addr{}, false
	}
	var best netip.Addr
	for ip := range a.held {
		if ip.Is4() != v4 || (best.IsValid() && !ip.Less(best)) {
			continue
		}
		if ok, _ := p.usable(ip); ok && a.conflict(req, ip) == nil {
			best = ip
		}
	}
	return best, best.IsValid()
}

// lowestFree scans p's ranges in address order. Each step past the first
// free candidate lands on a held address, so the scan is bounded by the
// number of held addresses, whatever the size of the range.
func (a *Allocator) lowestFree(p *Pool, v4 bool) (netip.Addr, bool) {
	for _, r := range p.Ranges {
		if r.First.Is4() != v4 {
			continue
		}
		for ip := r.First; ip.IsValid() && !r.Last.Less(ip); ip = ip.Next() {
			if _, res := r.reserved(ip); res && !p.IncludeNetworkBroadcast {
				continue
			}
			if len(a.held[ip]) == 0 {
				return ip, true
			}
		}
	}
	return netip.Addr{}, false
}

func orderByFamily(addrs []Address, fams []corev1.IPFamily) []Address {
	rank := func(ad Address) int {
		if i := slices.Index(fams, familyOf(ad.IP)); i >= 0 {
			return i
		}
		return len(fams)
	}
	out := slices.Clone(addrs)
	slices.SortStableFunc(out, func(x, y Address) int { return rank(x) - rank(y) })
	return out
}

func familiesString(fams []corev1.IPFamily) string {
	s := make([]string, len(fams))
	for i, f := range fams {
		s[i] = string(f)
	}
	return strings.Join(s, " and ")
}
