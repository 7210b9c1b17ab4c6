//go:build linux

package nftables

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"k8s.io/klog/v2"
	"sigs.k8s.io/knftables"

	"github.com/portal-net/portal/internal/proxy/dataplane"
)

// Backend programs a dataplane.State into the table TableName: chains,
// rules, set and map declarations and the small interval sets through an
// nftables interface (knftables.New(knftables.IPv4Family, TableName) or
// a Fake), the elements of the large sets and maps through Elements. It
// remembers the last ruleset it applied so that a sync writes only what
// changed.
type Backend struct {
	nft knftables.Interface
	el  Elements

	mu      sync.Mutex
	applied *ruleset // nil: the next sync is a full one
}

// New returns a Backend writing elements over netlink
// (NewNetlinkElements); its first Sync is a full sync.
func New(nft knftables.Interface) *Backend { return NewBackend(nft, NewNetlinkElements()) }

// NewBackend returns a Backend writing the structure through nft and the
// elements of the large sets and maps through el (NewNetlinkElements, or
// a FakeElements over nft's Fake in tests).
func NewBackend(nft knftables.Interface, el Elements) *Backend {
	return &Backend{nft: nft, el: el}
}

// Sync makes the table match s. The first call, any call after a failed
// one, and a call whose pod CIDR differs from the last one are full
// syncs (see full); other calls re-render only the service ports that
// changed and write, in this order, new chains and sets (text), the
// element changes (one netlink batch), then deletions of chains and sets
// nothing refers to any more (text). Each step leaves a working table.
func (b *Backend) Sync(ctx context.Context, s dataplane.State) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.applied
	if r == nil || r.podCIDR != s.PodCIDR {
		return b.full(ctx, render(s))
	}
	// r is updated in place; if a step fails it is dropped and the next
	// sync is a full one.
	b.applied = nil
	picks := make(map[string]bool, len(r.picks))
	for name := range r.picks {
		picks[name] = true
	}
	r.delta = map[elemRef]*elemChange{}
	r.touchedChains = map[string]priorChain{}
	r.touchedSets = map[string]bool{}
	r.update(s)
	before := b.nft.NewTransaction()
	for _, name := range sortedKeys(r.picks) {
		if !picks[name] {
			addPick(before, name, r.picks[name])
		}
	}
	writeAffinity(before, r, true)
	textDel, textAdd, ops := touchedOps(r)
	for _, op := range textAdd {
		before.Add(byName(op.Container).elementOf(op.Key, op.Value))
	}
	after := b.nft.NewTransaction()
	for _, op := range textDel {
		after.Delete(byName(op.Container).elementOf(op.Key, op.Value))
	}
	writeAffinity(after, r, false)
	r.delta, r.touchedChains, r.touchedSets = nil, nil, nil
	if err := b.run(ctx, before); err != nil {
		return fmt.Errorf("nftables: partial sync: %w", err)
	}
	if len(ops) > 0 {
		if err := b.el.Apply(ctx, ops); err != nil {
			return fmt.Errorf("nftables: partial sync: %w", err)
		}
	}
	if err := b.run(ctx, after); err != nil {
		return fmt.Errorf("nftables: partial sync: %w", err)
	}
	b.applied = r
	return nil
}

func (b *Backend) run(ctx context.Context, tx *knftables.Transaction) error {
	if tx.NumOperations() == 0 {
		return nil
	}
	return b.nft.Run(ctx, tx)
}

// FullSync rewrites the table to match s, as the first Sync does; it is
// for the periodic resync that repairs anything changed behind our back.
func (b *Backend) FullSync(ctx context.Context, s dataplane.State) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.full(ctx, render(s))
}

// full brings the table to want in three steps, none of which leaves a
// live table without a rule or element it had and still needs, so a
// restarted proxy keeps established and new connections working:
//
//  1. text: add the table and every set and map (the netlink-managed ones
//     are not flushed), flush and rewrite every chain of want, add its
//     affinity sets, refill the interval sets — one transaction;
//  2. netlink: in one batch, flush each netlink-managed set and map and
//     add all of want's elements (replaceOps);
//  3. text: delete the chains and affinity sets want no longer has, now
//     that no element refers to them.
//
// If step 1 fails on an existing table whose sets, maps or base chains
// have other definitions (an older layout), the table is deleted and
// created again in one transaction: until step 2 its service addresses
// are rejected, the price of a layout change.
func (b *Backend) full(ctx context.Context, want *ruleset) error {
	b.applied = nil
	// Chains of an earlier run (another endpoint count in use) are
	// deleted once nothing refers to them.
	existing, err := b.nft.List(ctx, "chains")
	if err != nil && !knftables.IsNotFound(err) {
		return fmt.Errorf("nftables: list chains: %w", err)
	}
	// Sets (stale affinity ones) only when the table exists, which its
	// base chains show: knftables' netlink mode reports a missing table
	// here as an unwrapped error, not as IsNotFound.
	var sets, maps []string
	if len(existing) > 0 {
		if sets, err = b.nft.List(ctx, "sets"); err != nil && !knftables.IsNotFound(err) {
			return fmt.Errorf("nftables: list sets: %w", err)
		}
		if maps, err = b.nft.List(ctx, "maps"); err != nil && !knftables.IsNotFound(err) {
			return fmt.Errorf("nftables: list maps: %w", err)
		}
	}
	tx := b.nft.NewTransaction()
	structureTx(tx, want)
	if err := b.nft.Run(ctx, tx); err != nil {
		if !b.layoutChanged(ctx) {
			return fmt.Errorf("nftables: full sync: %w", err)
		}
		klog.InfoS("nftables table has another layout; recreating it (service traffic is rejected until its elements are written)", "table", TableName, "err", err)
		tx = b.nft.NewTransaction()
		tx.Delete(&knftables.Table{})
		structureTx(tx, want)
		if err := b.nft.Run(ctx, tx); err != nil {
			return fmt.Errorf("nftables: full sync: recreate table: %w", err)
		}
		existing, sets, maps = nil, nil, nil
	}
	if err := b.el.Apply(ctx, replaceOps(want)); err != nil {
		return fmt.Errorf("nftables: full sync: %w", err)
	}
	tx = b.nft.NewTransaction()
	cleanupTx(tx, want, existing, sets, maps)
	if err := b.run(ctx, tx); err != nil {
		return fmt.Errorf("nftables: full sync: delete stale chains: %w", err)
	}
	want.all = nil // written; the ruleset keeps no elements
	b.applied = want
	return nil
}

// layoutChanged says whether the existing table declares a set, map or
// base chain differently from this version: declaring them again (a
// no-op when they match) is then refused.
func (b *Backend) layoutChanged(ctx context.Context) bool {
	tx := b.nft.NewTransaction()
	tx.Add(&knftables.Table{})
	for _, c := range containers {
		tx.Add(c.object())
	}
	for _, c := range baseChains {
		tx.Add(c.object())
	}
	return b.nft.Check(ctx, tx) != nil
}

// replaceOps is step 2 of a full sync: flush every netlink-managed set
// and map and add all of want's elements, in one batch. The kernel
// commits a batch at once, so packets see the old elements or the new,
// never an empty map; elements that stay are deleted and added again
// within the batch, which no packet can observe. (Reading the kernel's
// elements to write only the difference costs more than this at scale:
// the kernel dumps a set in 32 KiB steps, each walking the set from its
// start, 3.7 s of CPU for 185,000 elements here against 0.6–0.9 s to
// replace them.)
//
// Each container's ops are consecutive: the netlink writer packs a run of
// one container's elements into few messages.
func replaceOps(want *ruleset) []ElementOp {
	index := make(map[string]int, len(containers))
	for i, c := range containers {
		index[c.name] = i
	}
	// next[i]: where container i's next element goes.
	next := make([]int, len(containers))
	for _, e := range want.all {
		next[index[e.container]]++
	}
	n := 0
	for i, c := range containers {
		count := next[i]
		next[i] = -1
		if c.viaNetlink() {
			next[i] = n + 1 // after its flush
			n += 1 + count
		}
	}
	ops := make([]ElementOp, n)
	for i, c := range containers {
		if next[i] >= 0 {
			ops[next[i]-1] = ElementOp{Flush: true, Container: c.name}
		}
	}
	for _, e := range want.all {
		if i := index[e.container]; next[i] >= 0 {
			ops[next[i]] = ElementOp{Container: e.container, Key: e.key, Value: e.value}
			next[i]++
		}
	}
	return ops
}

// structureTx is step 1 of a full sync: everything but the elements of
// the netlink-managed sets and maps. Chains are flushed one by one, never
// the table: a flushed table would drop every rule until the same
// transaction adds them back, which is atomic, but it would also leave
// stale pick chains empty while elements still jump to them.
//
// Affinity sets are added (a no-op when they exist) but not flushed:
// they hold the clients' pins, and each is named after its endpoint, so
// what is in them is still right.
func structureTx(tx *knftables.Transaction, want *ruleset) {
	tx.Add(&knftables.Table{})
	for _, c := range containers {
		tx.Add(c.object())
		if !c.viaNetlink() {
			tx.Flush(c.object())
		}
	}
	for _, name := range sortedKeys(want.sets) {
		tx.Add(affinitySet(name))
	}
	// Every chain first, then the rules: rules jump to each other.
	type chain struct {
		obj   *knftables.Chain
		rules []string
	}
	var chains []chain
	for _, c := range baseChains {
		chains = append(chains, chain{c.object(), c.rules})
	}
	for _, name := range sortedKeys(want.picks) {
		chains = append(chains, chain{&knftables.Chain{Name: name}, want.picks[name]})
	}
	for _, name := range sortedKeys(want.chains) {
		chains = append(chains, chain{&knftables.Chain{Name: name}, want.chains[name]})
	}
	for _, c := range chains {
		tx.Add(c.obj)
		tx.Flush(c.obj)
	}
	for _, c := range chains {
		for _, rule := range c.rules {
			tx.Add(&knftables.Rule{Chain: c.obj.Name, Rule: rule})
		}
	}
	var text []entry
	for _, e := range want.all {
		if !byName(e.container).viaNetlink() {
			text = append(text, e)
		}
	}
	slices.SortFunc(text, func(a, b entry) int {
		return cmp.Or(strings.Compare(a.container, b.container), strings.Compare(a.key, b.key))
	})
	for _, e := range text {
		tx.Add(byName(e.container).elementOf(e.key, e.value))
	}
}

// cleanupTx is step 3 of a full sync: chains and affinity sets of an
// earlier run that want does not have, and sets and maps this version no
// longer declares (an older layout's, e.g. the single "backends" map
// before there was one per protocol: step 1 added the new containers
// beside them and step 2 moved every element over, so an upgrade needs no
// recreated table). Their rules go with them; the chains go before the
// sets their rules refer to.
func cleanupTx(tx *knftables.Transaction, want *ruleset, existing, existingSets, existingMaps []string) {
	keep := map[string]bool{}
	for _, c := range baseChains {
		keep[c.name] = true
	}
	for name := range want.picks {
		keep[name] = true
	}
	for name := range want.chains {
		keep[name] = true
	}
	slices.Sort(existing)
	for _, name := range existing {
		if !keep[name] {
			tx.Flush(&knftables.Chain{Name: name})
			tx.Delete(&knftables.Chain{Name: name})
		}
	}
	slices.Sort(existingSets)
	for _, name := range existingSets {
		if _, ours := lookup(name); ours || want.sets[name] {
			continue
		}
		tx.Delete(&knftables.Set{Name: name})
	}
	slices.Sort(existingMaps)
	for _, name := range existingMaps {
		if _, ours := lookup(name); !ours {
			tx.Delete(&knftables.Map{Name: name})
		}
	}
}

// writeAffinity writes the affinity chains and sets an update touched.
// Before the element changes (before) it adds new sets and chains and
// rewrites changed chains, so new dispatch elements find them; after
// them it deletes chains no element refers to any more, then sets no
// rule refers to. A kept set keeps its elements (the pins).
func writeAffinity(tx *knftables.Transaction, r *ruleset, before bool) {
	chains := sortedKeys(r.touchedChains)
	sets := sortedKeys(r.touchedSets)
	if before {
		for _, name := range sets {
			if r.sets[name] && !r.touchedSets[name] {
				tx.Add(affinitySet(name))
			}
		}
		for _, name := range chains {
			was := r.touchedChains[name]
			now, ok := r.chains[name]
			switch {
			case !ok:
				if was.existed {
					tx.Flush(&knftables.Chain{Name: name})
				}
			case !was.existed:
				addPick(tx, name, now)
			case !slices.Equal(was.rules, now):
				tx.Flush(&knftables.Chain{Name: name})
				for _, rule := range now {
					tx.Add(&knftables.Rule{Chain: name, Rule: rule})
				}
			}
		}
		return
	}
	for _, name := range chains {
		if _, ok := r.chains[name]; !ok && r.touchedChains[name].existed {
			tx.Delete(&knftables.Chain{Name: name})
		}
	}
	for _, name := range sets {
		if !r.sets[name] && r.touchedSets[name] {
			tx.Delete(&knftables.Set{Name: name})
		}
	}
}

func addPick(tx *knftables.Transaction, name string, rules []string) {
	tx.Add(&knftables.Chain{Name: name})
	for _, rule := range rules {
		tx.Add(&knftables.Rule{Chain: name, Rule: rule})
	}
}

// touchedOps returns the net change of every element r.update touched:
// the text-managed (interval set) deletions and additions, and the
// netlink ops, deletions first, so a map element whose value changed is
// deleted and added again (the kernel will not overwrite it). Pick chains
// no longer used stay until the next full sync; they are one rule each.
func touchedOps(r *ruleset) (textDel, textAdd, ops []ElementOp) {
	refs := make([]elemRef, 0, len(r.delta))
	for ref := range r.delta {
		refs = append(refs, ref)
	}
	order := map[string]int{}
	for i, c := range containers {
		order[c.name] = i
	}
	slices.SortFunc(refs, func(a, b elemRef) int {
		if d := order[a.container] - order[b.container]; d != 0 {
			return d
		}
		return strings.Compare(a.key, b.key)
	})
	var adds []ElementOp
	for _, ref := range refs {
		ch := r.delta[ref]
		netlink := byName(ref.container).viaNetlink()
		if ch.existed && (!ch.exists || ch.now != ch.was) {
			op := ElementOp{Delete: true, Container: ref.container, Key: ref.key, Value: ch.was}
			if netlink {
				ops = append(ops, op)
			} else {
				textDel = append(textDel, op)
			}
		}
		if ch.exists && (!ch.existed || ch.now != ch.was) {
			op := ElementOp{Container: ref.container, Key: ref.key, Value: ch.now}
			if netlink {
				adds = append(adds, op)
			} else {
				textAdd = append(textAdd, op)
			}
		}
	}
	return textDel, textAdd, append(ops, adds...)
}
