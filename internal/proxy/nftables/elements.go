//go:build linux

package nftables

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"sigs.k8s.io/knftables"
)

// Elements reads and writes the elements of the large sets and maps of
// the table (every container with a key layout, see containers). The
// `nft` binary spends seconds parsing 100,000 `add element` lines; the
// real implementation (NewNetlinkElements) talks netlink instead. Keys
// and values are in nft's string form ("10.96.0.10 . tcp . 80"), the
// form the ruleset model keeps, so a fake needs no encoding.
type Elements interface {
	// List returns the elements of one set or map: key → value ("" in
	// sets). Syncs never need it (a full sync replaces the elements, see
	// replaceOps); it is there to check what the kernel holds.
	List(ctx context.Context, container string) (map[string]string, error)
	// Apply runs ops in order in one atomic batch: all or nothing.
	Apply(ctx context.Context, ops []ElementOp) error
}

// ElementOp adds or deletes one element, or flushes a set or map. A map
// element whose value changes is deleted and added again in the same
// batch: the kernel does not overwrite a value.
type ElementOp struct {
	Delete    bool
	Flush     bool // delete every element of Container; Key and Value unused
	Container string
	Key       string
	Value     string // maps only; ignored by deletions
}

// String renders op as the nft command that would do the same, as
// knftables writes it.
func (op ElementOp) String() string {
	if op.Flush {
		kind := "set"
		if c, ok := lookup(op.Container); ok && c.isMap {
			kind = "map"
		}
		return fmt.Sprintf("flush %s ip %s %s", kind, TableName, op.Container)
	}
	verb, body := "add", op.Key
	if op.Delete {
		verb = "delete"
	} else if op.Value != "" {
		body += " : " + op.Value
	}
	return fmt.Sprintf("%s element ip %s %s { %s }", verb, TableName, op.Container, body)
}

var errNoTable = errors.New("table does not exist")

// FakeElements is an in-memory Elements for tests. It checks what the
// kernel checks (the container exists in the text table, a verdict's
// chain exists, no duplicate add with another value, no delete of a
// missing element) and records every batch.
type FakeElements struct {
	nft *knftables.Fake // the text side: containers and chains must exist there

	mu      sync.Mutex
	elems   map[string]map[string]string
	batches [][]ElementOp
	failErr error
}

// NewFakeElements returns an empty FakeElements whose containers and
// chains are looked up in nft (nil: not checked).
func NewFakeElements(nft *knftables.Fake) *FakeElements {
	return &FakeElements{nft: nft, elems: map[string]map[string]string{}}
}

// FailNext makes the next Apply fail with err and change nothing.
func (f *FakeElements) FailNext(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failErr = err
}

// Batches returns every batch applied so far.
func (f *FakeElements) Batches() [][]ElementOp {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.batches)
}

// List implements Elements.
func (f *FakeElements) List(ctx context.Context, container string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkContainer(container); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(f.elems[container]))
	for k, v := range f.elems[container] {
		out[k] = v
	}
	return out, nil
}

// Apply implements Elements.
func (f *FakeElements) Apply(ctx context.Context, ops []ElementOp) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failErr; err != nil {
		f.failErr = nil
		return err
	}
	next := make(map[string]map[string]string, len(f.elems))
	for c, m := range f.elems {
		next[c] = make(map[string]string, len(m))
		for k, v := range m {
			next[c][k] = v
		}
	}
	for _, op := range ops {
		if err := f.checkContainer(op.Container); err != nil {
			return err
		}
		m := next[op.Container]
		if m == nil {
			m = map[string]string{}
			next[op.Container] = m
		}
		old, exists := m[op.Key]
		switch {
		case op.Flush:
			clear(m)
		case op.Delete && !exists:
			return fmt.Errorf("%s: no such element", op)
		case op.Delete:
			delete(m, op.Key)
		case exists && old != op.Value:
			return fmt.Errorf("%s: element exists with value %q", op, old)
		default:
			if chain, ok := verdictChain(op.Value); ok && f.nft != nil {
				if tbl := f.table(); tbl == nil || tbl.Chains[chain] == nil {
					return fmt.Errorf("%s: no such chain %q", op, chain)
				}
			}
			m[op.Key] = op.Value
		}
	}
	f.elems = next
	f.batches = append(f.batches, slices.Clone(ops))
	return nil
}

// Dump returns every element as an `add element` line, sorted, in the
// form knftables.Fake.Dump writes them.
func (f *FakeElements) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lines []string
	for c, m := range f.elems {
		for k, v := range m {
			lines = append(lines, ElementOp{Container: c, Key: k, Value: v}.String())
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

func (f *FakeElements) table() *knftables.FakeTable {
	return f.nft.Tables[knftables.IPv4Family][TableName]
}

func (f *FakeElements) checkContainer(name string) error {
	if c, ok := lookup(name); !ok || c.key == nil {
		return fmt.Errorf("%q is not a netlink-managed set or map", name)
	}
	if f.nft == nil {
		return nil
	}
	tbl := f.table()
	if tbl == nil {
		return fmt.Errorf("no table %s: %w", TableName, errNoTable)
	}
	if tbl.Sets[name] == nil && tbl.Maps[name] == nil {
		return fmt.Errorf("no set or map %q in table %s", name, TableName)
	}
	return nil
}

// verdictChain returns the chain a "goto X" or "jump X" value names.
func verdictChain(v string) (string, bool) {
	for _, p := range []string{"goto ", "jump "} {
		if c, ok := strings.CutPrefix(v, p); ok {
			return c, true
		}
	}
	return "", false
}
