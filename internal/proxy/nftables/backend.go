//go:build linux

package nftables

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"sigs.k8s.io/knftables"

	"github.com/portal-net/portal/internal/proxy/dataplane"
)

// Backend programs a dataplane.State into the table of an nftables interface (made
// with knftables.New(knftables.IPv4Family, TableName) or a Fake). It
// remembers the last ruleset it applied so that a sync writes only what
// changed.
type Backend struct {
	nft knftables.Interface

	mu      sync.Mutex
	applied *ruleset // nil: the next sync is a full one
}

// New returns a Backend whose first Sync is a full sync.
func New(nft knftables.Interface) *Backend { return &Backend{nft: nft} }

// Sync makes the table match s. The first call, any call after a failed
// one, and a call whose pod CIDR differs from the last one replace the
// whole table in one transaction; other calls re-render only the service
// ports that changed and write only the elements (and new pick chains)
// that differ, also in one transaction.
func (b *Backend) Sync(ctx context.Context, s dataplane.State) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.applied
	if r == nil || r.podCIDR != s.PodCIDR {
		return b.full(ctx, render(s))
	}
	// r is updated in place; if the transaction fails it is dropped and
	// the next sync is a full one.
	b.applied = nil
	picks := make(map[string]bool, len(r.picks))
	for name := range r.picks {
		picks[name] = true
	}
	r.touched = map[elemRef]prior{}
	r.touchedChains = map[string]priorChain{}
	r.touchedSets = map[string]bool{}
	r.update(s)
	tx := b.nft.NewTransaction()
	for _, name := range sortedKeys(r.picks) {
		if !picks[name] {
			addPick(tx, name, r.picks[name])
		}
	}
	writeAffinity(tx, r, true)
	writeTouched(tx, r)
	writeAffinity(tx, r, false)
	r.touched, r.touchedChains, r.touchedSets = nil, nil, nil
	if tx.NumOperations() > 0 {
		if err := b.nft.Run(ctx, tx); err != nil {
			return fmt.Errorf("nftables: partial sync: %w", err)
		}
	}
	b.applied = r
	return nil
}

// FullSync replaces the whole table with s, as the first Sync does; it is
// for the periodic resync that repairs anything changed behind our back.
func (b *Backend) FullSync(ctx context.Context, s dataplane.State) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.full(ctx, render(s))
}

func (b *Backend) full(ctx context.Context, want *ruleset) error {
	b.applied = nil
	// Chains of an earlier run (another endpoint count in use) are
	// deleted in the same transaction once nothing refers to them.
	existing, err := b.nft.List(ctx, "chains")
	if err != nil && !knftables.IsNotFound(err) {
		return fmt.Errorf("nftables: list chains: %w", err)
	}
	// Sets (stale affinity ones) only when the table exists, which its
	// base chains show: knftables' netlink mode reports a missing table
	// here as an unwrapped error, not as IsNotFound.
	var sets []string
	if len(existing) > 0 {
		if sets, err = b.nft.List(ctx, "sets"); err != nil && !knftables.IsNotFound(err) {
			return fmt.Errorf("nftables: list sets: %w", err)
		}
	}
	tx := b.nft.NewTransaction()
	fullTx(tx, want, existing, sets)
	if err := b.nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("nftables: full sync: %w", err)
	}
	b.applied = want
	return nil
}

// fullTx writes the whole table. Flushing the table drops every rule but
// not set and map elements, so each of those is flushed too; the table is
// never deleted, so conntrack entries of established flows keep working
// and no packet ever sees an empty table.
//
// Affinity sets are added (a no-op when they exist) but not flushed:
// they hold the clients' pins, and each is named after its endpoint, so
// what is in them is still right. Stale ones are deleted at the end,
// once the flush has emptied the chains that referred to them.
func fullTx(tx *knftables.Transaction, want *ruleset, existing, existingSets []string) {
	tx.Add(&knftables.Table{})
	tx.Flush(&knftables.Table{})
	for _, c := range containers {
		tx.Add(c.object())
		tx.Flush(c.object())
	}
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
	for _, name := range existing {
		if !keep[name] {
			// Add first: after the flush the chain is empty and unreferenced,
			// and add-then-delete works whether or not it still exists.
			tx.Add(&knftables.Chain{Name: name})
			tx.Delete(&knftables.Chain{Name: name})
		}
	}
	// Chains first: rules jump to each other in any order.
	for _, c := range baseChains {
		tx.Add(c.object())
	}
	for _, c := range baseChains {
		for _, rule := range c.rules {
			tx.Add(&knftables.Rule{Chain: c.name, Rule: rule})
		}
	}
	for _, name := range sortedKeys(want.picks) {
		addPick(tx, name, want.picks[name])
	}
	for _, name := range sortedKeys(want.sets) {
		tx.Add(affinitySet(name))
	}
	for _, name := range sortedKeys(want.chains) {
		addPick(tx, name, want.chains[name])
	}
	for _, c := range containers {
		elems := want.elems[c.name]
		for _, key := range sortedKeys(elems) {
			tx.Add(c.elementOf(key, elems[key]))
		}
	}
	for _, name := range existingSets {
		if strings.HasPrefix(name, affPrefix) && !want.sets[name] {
			tx.Add(affinitySet(name))
			tx.Delete(&knftables.Set{Name: name})
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

// writeTouched writes the net change of every element r.update touched:
// deletions first, then additions, so a map element whose value changed
// is deleted and added again (nft will not overwrite it). Pick chains no
// longer used stay until the next full sync; they are one rule each.
func writeTouched(tx *knftables.Transaction, r *ruleset) {
	refs := make([]elemRef, 0, len(r.touched))
	for ref := range r.touched {
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
	for _, ref := range refs {
		was := r.touched[ref]
		now, ok := r.elems[ref.container][ref.key]
		if was.existed && (!ok || now != was.value) {
			tx.Delete(byName(ref.container).elementOf(ref.key, was.value))
		}
	}
	for _, ref := range refs {
		was := r.touched[ref]
		now, ok := r.elems[ref.container][ref.key]
		if ok && (!was.existed || now != was.value) {
			tx.Add(byName(ref.container).elementOf(ref.key, now))
		}
	}
}
