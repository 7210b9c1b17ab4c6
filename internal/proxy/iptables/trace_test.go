package iptables_test

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/portal-net/portal/internal/proxy/iptables"
)

// A packet-trace interpreter for the rules this package writes: it walks
// a new connection's first packet through nat (PREROUTING or OUTPUT),
// filter and nat POSTROUTING as the Fake holds them, following every
// statistic branch with its probability, so a test can assert the
// outcome distribution exactly.

type pkt struct {
	src, dst  netip.Addr
	proto     string
	dport     uint16
	mark      uint32
	origDst   netip.Addr
	origDport uint16
	dnat      bool
}

type outcome struct {
	p       float64
	pkt     pkt
	verdict string // "" (accepted), "DROP", "REJECT <with>"
	masq    bool
}

type tables map[string]map[string][]string // table → chain → rule specs

func loadTables(t *testing.T, fake *iptables.Fake) tables {
	t.Helper()
	tb := tables{}
	for _, table := range []string{"nat", "filter"} {
		out, err := fake.Save(context.Background(), table)
		if err != nil {
			t.Fatal(err)
		}
		tb[table] = map[string][]string{}
		for l := range strings.SplitSeq(string(out), "\n") {
			if chain, spec, ok := strings.Cut(strings.TrimPrefix(l, "-A "), " "); ok && strings.HasPrefix(l, "-A ") {
				tb[table][chain] = append(tb[table][chain], spec)
			}
		}
	}
	return tb
}

func fields(spec string) []string {
	var out []string
	for len(spec) > 0 {
		spec = strings.TrimLeft(spec, " ")
		if strings.HasPrefix(spec, `"`) {
			end := strings.Index(spec[1:], `"`) + 1
			out, spec = append(out, spec[1:end]), spec[end+1:]
			continue
		}
		f, rest, _ := strings.Cut(spec, " ")
		if f != "" {
			out = append(out, f)
		}
		spec = rest
	}
	return out
}

// inNet matches "a.b.c.d", "a.b.c.d/len" or "a.b.c.d/m.m.m.m".
func inNet(a netip.Addr, s string) bool {
	addr, mask, ok := strings.Cut(s, "/")
	base := netip.MustParseAddr(addr).As4()
	m := [4]byte{255, 255, 255, 255}
	if ok {
		if n, err := strconv.Atoi(mask); err == nil {
			v := uint32(math.MaxUint32) << (32 - n)
			if n == 0 {
				v = 0
			}
			m = [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
		} else {
			m = netip.MustParseAddr(mask).As4()
		}
	}
	x := a.As4()
	for i := range 4 {
		if x[i]&m[i] != base[i]&m[i] {
			return false
		}
	}
	return true
}

func portIn(p uint16, s string) bool {
	lo, hi, ok := strings.Cut(s, ":")
	l, _ := strconv.Atoi(lo)
	if !ok {
		return int(p) == l
	}
	h, _ := strconv.Atoi(hi)
	return int(p) >= l && int(p) <= h
}

func hexval(s string) uint32 { v, _ := strconv.ParseUint(s, 0, 32); return uint32(v) }

// walk runs chain on o and returns the outcomes: done ones carry a final
// verdict or DNAT; the others fell through (RETURN).
func (tb tables) walk(t *testing.T, table, chain string, o outcome) (done, through []outcome) {
	t.Helper()
	cur := []outcome{o}
	for _, spec := range tb[table][chain] {
		var next []outcome
		for _, o := range cur {
			f := fields(spec)
			matched, neg := true, false
			prob := 1.0
			var target []string
			for i := 0; i < len(f) && target == nil; i++ {
				m := true
				switch f[i] {
				case "!":
					neg = true
					continue
				case "-s":
					i++
					m = inNet(o.pkt.src, f[i])
				case "-d":
					i++
					m = inNet(o.pkt.dst, f[i])
				case "-p":
					i++
					m = o.pkt.proto == f[i]
				case "-m", "--comment", "--mode", "--name", "--seconds":
					i++
				case "--reap", "--set":
				case "--rcheck":
					m = false // every client is new to the trace
				case "--dport":
					i++
					m = portIn(o.pkt.dport, f[i])
				case "--probability":
					i++
					prob, _ = strconv.ParseFloat(f[i], 64)
				case "--mark":
					i++
					v, mask, _ := strings.Cut(f[i], "/")
					m = o.pkt.mark&hexval(mask) == hexval(v)
				case "--ctstate":
					i++
					m = (f[i] == "NEW") || (f[i] == "DNAT" && o.pkt.dnat)
				case "--ctorigdst":
					i++
					m = inNet(o.pkt.origDst, f[i])
				case "--ctorigdstport":
					i++
					m = portIn(o.pkt.origDport, f[i])
				case "-j":
					target = f[i+1:]
				default:
					t.Fatalf("trace: unknown token %q in %q", f[i], spec)
				}
				if m == neg {
					matched = false
				}
				neg = false
			}
			if !matched {
				next = append(next, o)
				continue
			}
			if prob < 1 {
				miss := o
				miss.p *= 1 - prob
				next = append(next, miss)
				o.p *= prob
			}
			switch target[0] {
			case "RETURN":
				through = append(through, o)
			case "DROP":
				o.verdict = "DROP"
				done = append(done, o)
			case "REJECT":
				o.verdict = "REJECT " + target[2]
				done = append(done, o)
			case "MASQUERADE":
				o.masq = true
				done = append(done, o)
			case "MARK":
				if target[1] == "--or-mark" {
					o.pkt.mark |= hexval(target[2])
				} else {
					o.pkt.mark ^= hexval(target[2])
				}
				next = append(next, o)
			case "DNAT":
				ap := netip.MustParseAddrPort(target[2])
				o.pkt.dst, o.pkt.dport, o.pkt.dnat = ap.Addr(), ap.Port(), true
				done = append(done, o)
			default:
				d, th := tb.walk(t, table, target[0], o)
				done = append(done, d...)
				next = append(next, th...)
			}
		}
		cur = next
	}
	return done, append(through, cur...)
}

// trace follows a new connection from src (local: from the node itself)
// to dst:dport and returns the outcomes by description.
func (tb tables) trace(t *testing.T, local bool, src, dst string, proto string, dport uint16) map[string]float64 {
	t.Helper()
	p := pkt{src: ip(src), dst: ip(dst), proto: proto, dport: dport}
	p.origDst, p.origDport = p.dst, p.dport
	hook := "PREROUTING"
	if local {
		hook = "OUTPUT"
	}
	natDone, natThrough := tb.walk(t, "nat", hook, outcome{p: 1, pkt: p})
	res := map[string]float64{}
	for _, o := range append(natDone, natThrough...) {
		fdone, fthrough := tb.walk(t, "filter", "FORWARD", o)
		for _, f := range fdone {
			res[f.verdict] += f.p
		}
		for _, f := range fthrough {
			post, rest := tb.walk(t, "nat", "POSTROUTING", f)
			for _, q := range append(post, rest...) {
				desc := "to " + q.pkt.dst.String() + ":" + strconv.Itoa(int(q.pkt.dport))
				if q.masq {
					desc += " masqueraded"
				}
				res[desc] += q.p
			}
		}
	}
	return res
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func TestPacketTrace(t *testing.T) {
	fake := iptables.NewFake()
	if err := iptables.New(iptables.Options{Runner: fake}).Sync(context.Background(), sampleState()); err != nil {
		t.Fatal(err)
	}
	tb := loadTables(t, fake)
	const third = 1.0 / 3
	for _, tc := range []struct {
		name            string
		local           bool
		src, dst, proto string
		dport           uint16
		want            map[string]float64
	}{
		{"ClusterIP from a pod: equal spread, no masquerade", false, "10.244.7.7", "10.96.0.10", "tcp", 80,
			map[string]float64{"to 10.244.1.2:8080": 0.5, "to 10.244.2.3:8080": 0.5}},
		{"three endpoints: a third each", false, "10.244.7.7", "10.96.0.53", "udp", 53,
			map[string]float64{"to 10.244.1.5:53": third, "to 10.244.2.5:53": third, "to 10.244.3.5:53": third}},
		{"ClusterIP from outside the pod CIDR is masqueraded", false, "192.168.1.50", "10.96.0.10", "tcp", 80,
			map[string]float64{"to 10.244.1.2:8080 masqueraded": 0.5, "to 10.244.2.3:8080 masqueraded": 0.5}},
		{"ClusterIP from the node", true, "192.168.1.10", "10.96.0.10", "tcp", 80,
			map[string]float64{"to 10.244.1.2:8080 masqueraded": 0.5, "to 10.244.2.3:8080 masqueraded": 0.5}},
		{"NodePort on the node IP", false, "198.51.100.9", "192.168.1.10", "tcp", 30080,
			map[string]float64{"to 10.244.1.2:8080 masqueraded": 0.5, "to 10.244.2.3:8080 masqueraded": 0.5}},
		{"no NodePort on 127.0.0.1", true, "127.0.0.1", "127.0.0.1", "tcp", 30080,
			map[string]float64{"to 127.0.0.1:30080": 1}},
		{"externalIP", false, "198.51.100.9", "203.0.113.7", "tcp", 80,
			map[string]float64{"to 10.244.1.2:8080 masqueraded": 0.5, "to 10.244.2.3:8080 masqueraded": 0.5}},
		{"eTP Local: local endpoint only, client address kept", false, "198.51.100.9", "192.168.1.10", "tcp", 30081,
			map[string]float64{"to 10.244.1.2:8080": 1}},
		{"eTP Local without local endpoints: NodePort dropped", false, "198.51.100.9", "192.168.1.10", "sctp", 30082,
			map[string]float64{"DROP": 1}},
		{"eTP Local without local endpoints: externalIP dropped", false, "198.51.100.9", "203.0.113.9", "sctp", 80,
			map[string]float64{"DROP": 1}},
		{"iTP Local without local endpoints: dropped", false, "10.244.7.7", "10.96.0.70", "tcp", 80,
			map[string]float64{"DROP": 1}},
		{"no endpoints: TCP reset", false, "10.244.7.7", "10.96.0.20", "tcp", 8080,
			map[string]float64{"REJECT tcp-reset": 1}},
		{"no endpoints: UDP port unreachable", false, "10.244.7.7", "10.96.0.20", "udp", 9090,
			map[string]float64{"REJECT icmp-port-unreachable": 1}},
		{"unallocated service address", false, "10.244.7.7", "10.96.3.3", "tcp", 80,
			map[string]float64{"REJECT tcp-reset": 1}},
		{"allocated address, other port", false, "10.244.7.7", "10.96.0.10", "udp", 81,
			map[string]float64{"REJECT icmp-port-unreachable": 1}},
		{"LB IP from an allowed range", false, "198.51.100.9", "203.0.113.60", "tcp", 443,
			map[string]float64{"to 10.244.1.2:8080 masqueraded": 0.5, "to 10.244.2.3:8080 masqueraded": 0.5}},
		{"LB IP from another source: dropped", false, "192.0.2.8", "203.0.113.60", "tcp", 443,
			map[string]float64{"DROP": 1}},
		{"source ranges do not filter the ClusterIP", false, "192.0.2.8", "10.96.0.60", "tcp", 443,
			map[string]float64{"to 10.244.1.2:8080 masqueraded": 0.5, "to 10.244.2.3:8080 masqueraded": 0.5}},
		{"hairpin: an endpoint reaching itself is masqueraded", false, "10.244.1.2", "10.96.0.10", "tcp", 80,
			map[string]float64{"to 10.244.1.2:8080 masqueraded": 0.5, "to 10.244.2.3:8080": 0.5}},
		{"affinity service: a new client is spread equally", false, "10.244.7.7", "10.96.0.80", "tcp", 80,
			map[string]float64{"to 10.244.1.2:8080": 0.5, "to 10.244.2.3:8080": 0.5}},
		{"other traffic is left alone", false, "10.244.7.7", "10.244.2.3", "tcp", 8080,
			map[string]float64{"to 10.244.2.3:8080": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tb.trace(t, tc.local, tc.src, tc.dst, tc.proto, tc.dport)
			ok := len(got) == len(tc.want)
			for k, v := range tc.want {
				ok = ok && near(got[k], v)
			}
			if !ok {
				t.Errorf("%s %s → %s:%d: got %v, want %v", tc.proto, tc.src, tc.dst, tc.dport, fmt.Sprint(got), tc.want)
			}
		})
	}
}
