package iptables

import (
	"bufio"
	"bytes"
	"slices"
	"strings"
)

// tables is the order tables are written in: filter first, so a
// no-endpoints reject is in place before the DNAT rule it replaces goes.
var tables = []string{tableFilter, tableNAT}

// jump is the one rule a builtin chain gets, in iptables-save's form.
type jump struct{ table, chain, rule string }

var jumps = []jump{
	{tableNAT, "PREROUTING", "-m comment --comment " + strconvQuote(JumpComment) + " -j " + chainServices},
	{tableNAT, "OUTPUT", "-m comment --comment " + strconvQuote(JumpComment) + " -j " + chainServices},
	{tableNAT, "POSTROUTING", "-m comment --comment " + strconvQuote(JumpComment) + " -j " + chainPostrouting},
	{tableFilter, "INPUT", "-m conntrack --ctstate NEW -m comment --comment " + strconvQuote(JumpComment) + " -j " + chainFilter},
	{tableFilter, "FORWARD", "-m conntrack --ctstate NEW -m comment --comment " + strconvQuote(JumpComment) + " -j " + chainFilter},
	{tableFilter, "OUTPUT", "-m conntrack --ctstate NEW -m comment --comment " + strconvQuote(JumpComment) + " -j " + chainFilter},
}

// builtinChains are the builtin chains of table that get a jump (or
// once got one: every builtin chain of the table is checked).
func builtinChains(table string) []string {
	if table == tableNAT {
		return []string{"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"}
	}
	return []string{"INPUT", "FORWARD", "OUTPUT"}
}

func strconvQuote(s string) string { return `"` + s + `"` }

// saved is what iptables-save shows of one table that concerns us.
type saved struct {
	chains []string // chains of ours
	rules  []string // "CHAIN spec" of every rule in another chain that jumps to one of ours
}

// parseSave reads iptables-save output for one table.
func parseSave(out []byte) saved {
	var s saved
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ":"+ChainPrefix):
			name, _, _ := strings.Cut(line[1:], " ")
			s.chains = append(s.chains, name)
		case strings.HasPrefix(line, "-A ") && !strings.HasPrefix(line, "-A "+ChainPrefix):
			spec := line[3:]
			if strings.Contains(spec, " -j "+ChainPrefix) || strings.Contains(spec, " -g "+ChainPrefix) {
				s.rules = append(s.rules, spec)
			}
		}
	}
	return s
}

// writeChains declares and writes the chains in names: targets before
// the chains that jump to them, and otherwise in descending name order,
// each declaration followed by its rules. iptables-nft (1.8.9) finds a
// rule's chain by walking its name-sorted chain list from the start, so
// a rule for a chain declared in this order is appended while that chain
// is at the head of the list: at 10,000 service chains this cuts the
// userspace time of a first full sync about threefold.
func writeChains(b *bytes.Buffer, r *ruleset, names []string, table string) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	level := map[string]int{}
	var depth func(string) int
	depth = func(n string) int {
		if l, ok := level[n]; ok {
			return l
		}
		level[n] = 0 // no loops among our chains; guards anyway
		l := 0
		k := chainKey{table, n}
		for _, t := range r.targets(k, r.chains[k]) {
			if want[t] && t != n {
				l = max(l, depth(t)+1)
			}
		}
		level[n] = l
		return l
	}
	order := slices.Clone(names)
	for _, n := range order {
		depth(n)
	}
	slices.SortFunc(order, func(a, b string) int {
		if d := level[a] - level[b]; d != 0 {
			return d
		}
		return strings.Compare(b, a)
	})
	for _, name := range order {
		b.WriteString(":" + name + " - [0:0]\n")
		k := chainKey{table, name}
		for _, rule := range r.rules(k, r.chains[k]) {
			b.WriteString("-A " + name + " " + rule + "\n")
		}
	}
}

// ourTarget is the chain of ours a rule jumps to, or "".
func ourTarget(rule string) string {
	i := strings.LastIndex(rule, "-j "+ChainPrefix)
	if i < 0 {
		return ""
	}
	t := rule[i+3:]
	if j := strings.IndexByte(t, ' '); j >= 0 {
		t = t[:j]
	}
	return t
}

// size estimates the restore input for names without rendering it, so
// the buffer is allocated once (20 MB at 10,000 services × 10
// endpoints): a rendered chain's rules at ~100 bytes per endpoint.
func size(r *ruleset, names []string, table string) int {
	n := 0
	for _, name := range names {
		k := chainKey{table, name}
		c := r.chains[k]
		n += 2 * (len(name) + 16)
		switch {
		case c.owner != nil:
			n += (len(c.owner.sp.Endpoints) + 2) * (len(name) + 100)
		case c.hp:
			n += len(r.hairpin[hpOctet(k)]) * (len(name) + 50)
		default:
			for _, rule := range c.rules {
				n += len(name) + len(rule) + 5
			}
		}
	}
	return n
}

func chainNames(r *ruleset, table string) []string {
	var names []string
	for k := range r.chains {
		if k.table == table {
			names = append(names, k.name)
		}
	}
	slices.Sort(names)
	return names
}

// fullRestore is the input of a full sync: every chain of ours declared
// (which flushes it) and written, stale ones flushed and deleted, and
// exactly one jump rule in each builtin chain we use.
func fullRestore(r *ruleset, existing map[string]saved) []byte {
	var b bytes.Buffer
	named := map[string][]string{}
	total := 0
	for _, table := range tables {
		named[table] = chainNames(r, table)
		total += size(r, named[table], table) + 4096
	}
	b.Grow(total)
	for _, table := range tables {
		b.WriteString("*" + table + "\n")
		names := named[table]
		var stale []string
		for _, name := range existing[table].chains {
			if _, ok := r.chains[chainKey{table, name}]; !ok && !slices.Contains(stale, name) {
				stale = append(stale, name)
			}
		}
		slices.Sort(stale)
		for _, name := range stale {
			b.WriteString(":" + name + " - [0:0]\n")
		}
		writeChains(&b, r, names, table)
		for _, j := range jumps {
			if j.table != table {
				continue
			}
			want := j.chain + " " + j.rule
			var have []string
			for _, spec := range existing[table].rules {
				if strings.HasPrefix(spec, j.chain+" ") {
					have = append(have, spec)
				}
			}
			if len(have) == 1 && have[0] == want {
				continue
			}
			for _, spec := range have {
				b.WriteString("-D " + spec + "\n")
			}
			b.WriteString("-I " + want + "\n")
		}
		// Jumps from chains we do not use any more (another builtin).
		for _, spec := range existing[table].rules {
			chain, _, _ := strings.Cut(spec, " ")
			if !slices.ContainsFunc(jumps, func(j jump) bool { return j.table == table && j.chain == chain }) {
				b.WriteString("-D " + spec + "\n")
			}
		}
		for _, name := range stale {
			b.WriteString("-X " + name + "\n")
		}
		b.WriteString("COMMIT\n")
	}
	return b.Bytes()
}

// deltaRestore is the input of a partial sync: the chains r.prior
// recorded that differ now are declared (flushed) and rewritten, those
// gone are flushed and deleted. Empty when nothing changed.
func deltaRestore(r *ruleset) []byte {
	var b bytes.Buffer
	for _, table := range tables {
		var write, gone []string
		for k, was := range r.prior {
			if k.table != table {
				continue
			}
			now, ok := r.chains[k]
			switch {
			case ok && (!was.existed || !slices.Equal(r.rules(k, now), r.rules(k, was.chain))):
				write = append(write, k.name)
			case !ok && was.existed:
				gone = append(gone, k.name)
			}
		}
		if len(write)+len(gone) == 0 {
			continue
		}
		slices.Sort(write)
		slices.Sort(gone)
		b.WriteString("*" + table + "\n")
		for _, name := range gone {
			b.WriteString(":" + name + " - [0:0]\n")
		}
		writeChains(&b, r, write, table)
		for _, name := range gone {
			b.WriteString("-X " + name + "\n")
		}
		b.WriteString("COMMIT\n")
	}
	return b.Bytes()
}

// cleanupRestore removes every jump to a chain of ours and every chain of
// ours; empty when there is none.
func cleanupRestore(existing map[string]saved) []byte {
	var b bytes.Buffer
	for _, table := range tables {
		s := existing[table]
		if len(s.chains)+len(s.rules) == 0 {
			continue
		}
		b.WriteString("*" + table + "\n")
		for _, name := range s.chains {
			b.WriteString(":" + name + " - [0:0]\n")
		}
		for _, spec := range s.rules {
			b.WriteString("-D " + spec + "\n")
		}
		for _, name := range s.chains {
			b.WriteString("-X " + name + "\n")
		}
		b.WriteString("COMMIT\n")
	}
	return b.Bytes()
}
