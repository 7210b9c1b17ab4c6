package iptables

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Fake is a Runner that keeps the nat and filter tables in memory and
// checks restore input as iptables-restore --noflush would: chains are
// declared before use, a jump's target exists, -D finds its rule, -X
// deletes only an empty chain no rule jumps to; a section applies at its
// COMMIT or not at all (the whole input is refused on the first error).
type Fake struct {
	mu     sync.Mutex
	tables map[string]*fakeTable
	// Inputs are the restore inputs applied so far.
	Inputs []string
	// Saves counts Save calls (reading a whole table back).
	Saves int
	// FailNext, when set, is returned by the next Restore, which applies
	// nothing.
	FailNext error
}

type fakeTable struct {
	builtin []string
	chains  map[string][]string
}

func (t *fakeTable) clone() *fakeTable {
	c := &fakeTable{builtin: t.builtin, chains: make(map[string][]string, len(t.chains))}
	for k, v := range t.chains {
		c.chains[k] = slices.Clone(v)
	}
	return c
}

// NewFake returns a Fake with empty builtin chains.
func NewFake() *Fake {
	f := &Fake{tables: map[string]*fakeTable{}}
	for table, builtin := range map[string][]string{
		tableNAT:    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
		tableFilter: {"INPUT", "FORWARD", "OUTPUT"},
	} {
		t := &fakeTable{builtin: builtin, chains: map[string][]string{}}
		for _, c := range builtin {
			t.chains[c] = nil
		}
		f.tables[table] = t
	}
	return f
}

var fakeTargets = map[string]bool{"ACCEPT": true, "DROP": true, "RETURN": true, "REJECT": true, "DNAT": true,
	"SNAT": true, "MASQUERADE": true, "MARK": true}

// Restore implements Runner.
func (f *Fake) Restore(_ context.Context, input []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.FailNext; err != nil {
		f.FailNext = nil
		return err
	}
	next := map[string]*fakeTable{}
	for k, v := range f.tables {
		next[k] = v
	}
	var cur *fakeTable
	var curName string
	sc := bufio.NewScanner(bytes.NewReader(input))
	sc.Buffer(make([]byte, 0, 64*1024), 64*1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		fail := func(format string, a ...any) error {
			return fmt.Errorf("fake iptables-restore: line %d %q: %s", n, line, fmt.Sprintf(format, a...))
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "*") {
			t, ok := f.tables[line[1:]]
			if !ok || cur != nil {
				return fail("unknown table or missing COMMIT")
			}
			cur, curName = t.clone(), line[1:]
			continue
		}
		if cur == nil {
			return fail("outside a table")
		}
		if line == "COMMIT" {
			for chain, rules := range cur.chains {
				for _, r := range rules {
					if t := jumpTarget(r); t != "" && !fakeTargets[t] {
						if _, ok := cur.chains[t]; !ok {
							return fail("chain %s jumps to missing chain %s", chain, t)
						}
					}
				}
			}
			next[curName], cur = cur, nil
			continue
		}
		if strings.HasPrefix(line, ":") {
			name, _, _ := strings.Cut(line[1:], " ")
			if slices.Contains(cur.builtin, name) {
				return fail("declaring builtin chain %s would flush it", name)
			}
			if len(name) > 28 {
				return fail("chain name too long")
			}
			cur.chains[name] = nil
			continue
		}
		op, rest, _ := strings.Cut(line, " ")
		chain, spec, _ := strings.Cut(rest, " ")
		rules, ok := cur.chains[chain]
		if !ok {
			return fail("no chain %s", chain)
		}
		switch op {
		case "-A":
			cur.chains[chain] = append(rules, spec)
		case "-I":
			cur.chains[chain] = append([]string{spec}, rules...)
		case "-D":
			i := slices.Index(rules, spec)
			if i < 0 {
				return fail("no such rule")
			}
			cur.chains[chain] = slices.Delete(rules, i, i+1)
		case "-X":
			if slices.Contains(cur.builtin, chain) || len(rules) > 0 {
				return fail("chain %s is builtin or not empty", chain)
			}
			for other, rs := range cur.chains {
				for _, r := range rs {
					if jumpTarget(r) == chain {
						return fail("chain %s is referenced from %s", chain, other)
					}
				}
			}
			delete(cur.chains, chain)
		default:
			return fail("unknown command")
		}
	}
	if cur != nil {
		return fmt.Errorf("fake iptables-restore: no COMMIT for %s", curName)
	}
	f.tables = next
	f.Inputs = append(f.Inputs, string(input))
	return nil
}

// jumpTarget is the chain or target a rule's -j/-g names.
func jumpTarget(rule string) string {
	f := strings.Fields(rule)
	for i := range len(f) - 1 {
		if f[i] == "-j" || f[i] == "-g" {
			return f[i+1]
		}
	}
	return ""
}

// ListRules implements Runner, as `iptables -S chain` prints.
func (f *Fake) ListRules(_ context.Context, table, chain string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tables[table]
	if !ok {
		return nil, fmt.Errorf("fake iptables: no table %s", table)
	}
	rules, ok := t.chains[chain]
	if !ok {
		return nil, fmt.Errorf("fake iptables: no chain %s", chain)
	}
	var b bytes.Buffer
	if slices.Contains(t.builtin, chain) {
		b.WriteString("-P " + chain + " ACCEPT\n")
	} else {
		b.WriteString("-N " + chain + "\n")
	}
	for _, r := range rules {
		b.WriteString("-A " + chain + " " + r + "\n")
	}
	return b.Bytes(), nil
}

// ListChains implements Runner.
func (f *Fake) ListChains(_ context.Context, table string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tables[table]
	if !ok {
		return nil, fmt.Errorf("fake iptables: no table %s", table)
	}
	var names []string
	for _, c := range sortedKeys(t.chains) {
		if strings.HasPrefix(c, ChainPrefix) {
			names = append(names, c)
		}
	}
	return names, nil
}

// Save implements Runner, in iptables-save's format.
func (f *Fake) Save(_ context.Context, table string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Saves++
	t, ok := f.tables[table]
	if !ok {
		return nil, fmt.Errorf("fake iptables-save: no table %s", table)
	}
	var b bytes.Buffer
	b.WriteString("*" + table + "\n")
	names := sortedKeys(t.chains)
	for _, c := range t.builtin {
		b.WriteString(":" + c + " ACCEPT [0:0]\n")
	}
	for _, c := range names {
		if !slices.Contains(t.builtin, c) {
			b.WriteString(":" + c + " - [0:0]\n")
		}
	}
	order := slices.Clone(t.builtin)
	for _, c := range names {
		if !slices.Contains(t.builtin, c) {
			order = append(order, c)
		}
	}
	for _, c := range order {
		for _, r := range t.chains[c] {
			b.WriteString("-A " + c + " " + r + "\n")
		}
	}
	b.WriteString("COMMIT\n")
	return b.Bytes(), nil
}
