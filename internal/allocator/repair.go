package allocator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Claim is what one stored Service holds: its ClusterIPs and its node
// ports (NodePorts and healthCheckNodePort).
type Claim struct {
	Owner Owner
	IPs   []net.IP
	Ports []int
}

// RepairSummary counts what a repair pass found and did, for logging.
type RepairSummary struct {
	Checked    int // allocations found in the store
	Kept       int // allocations held by a Service that claims them
	Restored   int // claimed values with no allocation, reserved again
	Reassigned int // stale allocations of one Service moved to the Service claiming them
	Released   int // allocations no Service claims, released
	Pending    int // unclaimed allocations younger than minAge, left alone
	Skipped    int // planned actions that lost a race with a concurrent change
	// Conflicts and OutOfRange describe problems repair cannot fix (two
	// Services claiming one value, values outside the configured ranges).
	Conflicts  []string
	OutOfRange []string
}

func (s RepairSummary) String() string {
	return fmt.Sprintf("checked=%d kept=%d restored=%d reassigned=%d released=%d pending=%d skipped=%d conflicts=%d out-of-range=%d",
		s.Checked, s.Kept, s.Restored, s.Reassigned, s.Released, s.Pending, s.Skipped, len(s.Conflicts), len(s.OutOfRange))
}

type itemKind int

const (
	kindIP itemKind = iota
	kindPort
)

// item is one allocatable value, named as in its etcd key.
type item struct {
	kind itemKind
	name string
}

func (i item) String() string {
	if i.kind == kindIP {
		return "IP " + i.name
	}
	return "port " + i.name
}

// allocation is a stored key as planRepair sees it.
type allocation struct {
	item
	record
	revision int64
}

type actionKind int

const (
	actReserve actionKind = iota
	actRelease
)

type action struct {
	kind     actionKind
	item     item
	owner    Owner // reserve: for whom
	revision int64 // release: only if still at this revision
	// reassign marks the release and reserve pair that moves a value.
	reassign bool
}

type repairPlan struct {
	actions    []action
	kept       int
	pending    int
	conflicts  []string
	outOfRange []string
}

// planRepair decides how to make the allocations agree with the claims.
// inRange reports whether an item can be allocated at all. Claims are
// ranked by their order: when several Services claim a value nobody holds,
// the first gets it. Allocations younger than minAge are never released or
// moved, because their Service may be being created on another API server
// right now. Foreign allocations (not made for a Service by this package)
// are never touched.
func planRepair(claims []Claim, allocs []allocation, inRange func(item) bool, now time.Time, minAge time.Duration) repairPlan {
	var p repairPlan
	claimants := map[item][]Owner{}
	var order []item
	for _, c := range claims {
		for _, it := range claimItems(c) {
			owners := claimants[it]
			if containsOwner(owners, c.Owner) {
				continue // e.g. one nodePort shared by the TCP and UDP ports
			}
			if owners == nil {
				order = append(order, it)
			}
			claimants[it] = append(owners, c.Owner)
		}
	}
	held := map[item]allocation{}
	for _, a := range allocs {
		held[a.item] = a
	}
	old := func(a allocation) bool { return a.created.IsZero() || now.Sub(a.created) >= minAge }

	for _, it := range order {
		owners := claimants[it]
		if len(owners) > 1 {
			p.conflicts = append(p.conflicts, fmt.Sprintf("%s is claimed by %d services: %s", it, len(owners), joinOwners(owners)))
		}
		if !inRange(it) {
			p.outOfRange = append(p.outOfRange, fmt.Sprintf("%s of service %s is not in the configured range", it, owners[0]))
			continue
		}
		if _, ok := held[it]; !ok {
			p.actions = append(p.actions, action{kind: actReserve, item: it, owner: owners[0]})
		}
	}

	sorted := append([]allocation(nil), allocs...)
	sort.Slice(sorted, func(i, j int) bool { return itemLess(sorted[i].item, sorted[j].item) })
	for _, a := range sorted {
		owners := claimants[a.item]
		switch {
		case a.foreign:
			if len(owners) > 0 {
				p.conflicts = append(p.conflicts, fmt.Sprintf("%s is claimed by service %s but held by an allocation not made for a service", a.item, owners[0]))
			}
		case containsOwner(owners, a.owner):
			p.kept++
		case len(owners) > 0 && !old(a):
			p.conflicts = append(p.conflicts, fmt.Sprintf("%s is claimed by service %s but was just allocated to service %s", a.item, owners[0], a.owner))
		case len(owners) > 0 && inRange(a.item):
			p.actions = append(p.actions,
				action{kind: actRelease, item: a.item, revision: a.revision, reassign: true},
				action{kind: actReserve, item: a.item, owner: owners[0], reassign: true})
		case old(a):
			p.actions = append(p.actions, action{kind: actRelease, item: a.item, revision: a.revision})
		default:
			p.pending++
		}
	}
	return p
}

func claimItems(c Claim) []item {
	var items []item
	for _, ip := range c.IPs {
		if a, ok := netip.AddrFromSlice(ip); ok {
			items = append(items, item{kind: kindIP, name: a.Unmap().String()})
		}
	}
	for _, p := range c.Ports {
		if p > 0 {
			items = append(items, item{kind: kindPort, name: strconv.Itoa(p)})
		}
	}
	return items
}

func containsOwner(owners []Owner, o Owner) bool {
	for _, x := range owners {
		if x == o {
			return true
		}
	}
	return false
}

func joinOwners(owners []Owner) string {
	s := make([]string, len(owners))
	for i, o := range owners {
		s[i] = o.String()
	}
	return strings.Join(s, ", ")
}

func itemLess(a, b item) bool {
	if a.kind != b.kind {
		return a.kind < b.kind
	}
	return a.name < b.name
}

// Repair reconciles the stored allocations with claims, the IPs and ports
// of every stored Service, and returns what it did. Run it at start-up
// (before serving) and periodically: it re-reserves allocations lost in a
// crash between allocating and storing, and releases allocations whose
// Service is gone, once they are older than minAge. Individual failures
// do not stop the pass; they are returned joined. All ClusterIP allocators
// must share one store and etcd prefix (they share the ipaddresses key
// space); the first one's is listed.
func (s *Allocators) Repair(ctx context.Context, claims []Claim, minAge time.Duration) (RepairSummary, error) {
	var sum RepairSummary
	var allocs []allocation
	var ipCore, portCore *core
	if len(s.ClusterIPs) > 0 {
		ipCore = s.ClusterIPs[0].c
	}
	if s.NodePorts != nil {
		portCore = s.NodePorts.c
	}
	now := time.Now
	for _, c := range []*core{ipCore, portCore} {
		if c == nil {
			continue
		}
		now = c.opts.Now
		entries, _, err := c.store.List(ctx, c.keyPrefix)
		if err != nil {
			return sum, fmt.Errorf("repair: %w", err)
		}
		for key, e := range entries {
			name := strings.TrimPrefix(key, c.keyPrefix)
			it := item{kind: kindPort, name: name}
			if c == ipCore {
				it.kind = kindIP
				if _, ok := parseIPName(name); !ok {
					continue
				}
			} else if _, ok := parsePortName(name); !ok {
				continue
			}
			allocs = append(allocs, allocation{item: it, record: c.decode(e.Value), revision: e.Revision})
		}
	}
	sum.Checked = len(allocs)

	// Claims for a kind nobody allocates here (no IP allocator, say) are
	// not this pass's business.
	var relevant []Claim
	for _, c := range claims {
		rc := Claim{Owner: c.Owner}
		if ipCore != nil {
			rc.IPs = c.IPs
		}
		if portCore != nil {
			rc.Ports = c.Ports
		}
		relevant = append(relevant, rc)
	}

	plan := planRepair(relevant, allocs, s.itemInRange, now(), minAge)
	sum.Kept, sum.Pending = plan.kept, plan.pending
	sum.Conflicts, sum.OutOfRange = plan.conflicts, plan.outOfRange

	var errs []error
	skipReserve := map[item]bool{}
	for _, act := range plan.actions {
		c := ipCore
		if act.item.kind == kindPort {
			c = portCore
		}
		switch act.kind {
		case actRelease:
			err := c.store.Release(ctx, c.keyPrefix+act.item.name, act.revision)
			switch {
			case errors.Is(err, ErrModified):
				sum.Skipped++
				skipReserve[act.item] = true
			case err != nil:
				errs = append(errs, err)
				skipReserve[act.item] = true
			default:
				s.forget(act.item)
				if !act.reassign {
					sum.Released++
				}
			}
		case actReserve:
			if skipReserve[act.item] {
				continue
			}
			err := s.reserveItem(ctx, act.owner, act.item)
			switch {
			case errors.Is(err, ErrAllocated):
				sum.Skipped++
			case err != nil:
				errs = append(errs, err)
			case act.reassign:
				sum.Reassigned++
			default:
				sum.Restored++
			}
		}
	}
	return sum, errors.Join(errs...)
}

func (s *Allocators) itemInRange(it item) bool {
	if it.kind == kindPort {
		p, ok := parsePortName(it.name)
		return ok && s.NodePorts != nil && s.NodePorts.r.Contains(p)
	}
	ip := net.ParseIP(it.name)
	return ip != nil && s.forIPInRange(ip) != nil
}

func (s *Allocators) forIPInRange(ip net.IP) *ClusterIPAllocator {
	for _, a := range s.ClusterIPs {
		if a.r.Contains(ip) {
			return a
		}
	}
	return nil
}

func (s *Allocators) reserveItem(ctx context.Context, o Owner, it item) error {
	if it.kind == kindPort {
		p, _ := parsePortName(it.name)
		return s.NodePorts.Allocate(ctx, o, p)
	}
	ip := net.ParseIP(it.name)
	a := s.forIPInRange(ip)
	if a == nil {
		return ipNotInRange(it.name, "")
	}
	return a.Allocate(ctx, o, ip)
}

// forget drops a released item from the local views that track it.
func (s *Allocators) forget(it item) {
	if it.kind == kindPort {
		if p, ok := parsePortName(it.name); ok {
			if off, ok := s.NodePorts.r.Offset(p); ok {
				s.NodePorts.c.forget(off)
			}
		}
		return
	}
	if ip := net.ParseIP(it.name); ip != nil {
		if a := s.forIPInRange(ip); a != nil {
			off, _ := a.r.Offset(ip)
			a.c.forget(off)
		}
	}
}
