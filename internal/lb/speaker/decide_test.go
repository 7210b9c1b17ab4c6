package speaker

import (
	"fmt"
	"net/netip"
	"testing"
)

func nodes(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("node-%d", i+1)
	}
	return out
}

func addrs(n int) []netip.Addr {
	out := make([]netip.Addr, n)
	a := netip.MustParseAddr("192.0.2.0")
	for i := range out {
		a = a.Next()
		out[i] = a
	}
	return out
}

// Every node reaches the same answer whatever the order it sees the
// candidates in, and exactly one node announces each address.
func TestOneWinnerPerAddress(t *testing.T) {
	all := nodes(5)
	svcs := []Service{{Key: "default/a", IPs: addrs(200)}}
	count := map[netip.Addr]int{}
	for _, self := range all {
		reversed := append([]string(nil), all...)
		for i, j := 0, len(reversed)-1; i < j; i, j = i+1, j-1 {
			reversed[i], reversed[j] = reversed[j], reversed[i]
		}
		for ip := range Assign(self, reversed, nil, svcs) {
			count[ip]++
		}
	}
	per := map[string]int{}
	for _, ip := range addrs(200) {
		if count[ip] != 1 {
			t.Fatalf("%s announced by %d nodes", ip, count[ip])
		}
		per[Winner(ip, all)]++
	}
	// Rendezvous hashing spreads addresses: each of 5 nodes gets some.
	for _, n := range all {
		if per[n] < 20 {
			t.Errorf("%s wins %d of 200 addresses: %v", n, per[n], per)
		}
	}
}

// A node leaving moves only the addresses it held; one joining takes
// only addresses, never shuffles them between the others.
func TestMinimalMovement(t *testing.T) {
	all := nodes(4)
	ips := addrs(300)
	before := map[netip.Addr]string{}
	for _, ip := range ips {
		before[ip] = Winner(ip, all)
	}
	for _, ip := range ips {
		after := Winner(ip, all[:3]) // node-4 gone
		if before[ip] != "node-4" && after != before[ip] {
			t.Fatalf("%s moved from %s to %s when node-4 left", ip, before[ip], after)
		}
		if before[ip] == "node-4" && after == "node-4" {
			t.Fatalf("%s stays on the dead node", ip)
		}
	}
}

func TestAssignPolicies(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.10")
	all := nodes(3)
	win := Winner(ip, all)
	var other string
	for _, n := range all {
		if n != win {
			other = n
			break
		}
	}
	cluster := Service{Key: "default/c", IPs: []netip.Addr{ip}}
	local := Service{Key: "default/l", IPs: []netip.Addr{ip}, LocalOnly: true, ReadyNodes: map[string]bool{other: true}}

	if got := Assign(win, all, nil, []Service{cluster}); len(got[ip]) != 1 {
		t.Errorf("winner %s does not announce: %v", win, got)
	}
	if got := Assign(other, all, nil, []Service{cluster}); len(got) != 0 {
		t.Errorf("loser %s announces: %v", other, got)
	}
	// eTP Local: only the node with a ready endpoint.
	if got := Assign(other, all, nil, []Service{local}); len(got[ip]) != 1 || got[ip][0] != "default/l" {
		t.Errorf("local-endpoint node %s does not announce: %v", other, got)
	}
	if got := Assign(win, all, nil, []Service{local}); len(got) != 0 {
		t.Errorf("node %s without a local endpoint announces: %v", win, got)
	}
	noEndpoints := local
	noEndpoints.ReadyNodes = nil
	for _, n := range all {
		if got := Assign(n, all, nil, []Service{noEndpoints}); len(got) != 0 {
			t.Errorf("eTP Local without endpoints announced by %s", n)
		}
	}
	// Excluded or not live: never, and the next candidate takes over.
	if got := Assign(win, all, map[string]bool{win: true}, []Service{cluster}); len(got) != 0 {
		t.Errorf("excluded node announces")
	}
	if got := Assign(win, []string{other}, nil, []Service{cluster}); len(got) != 0 {
		t.Errorf("a node not in the live set announces")
	}
	rest := []string{}
	for _, n := range all {
		if n != win {
			rest = append(rest, n)
		}
	}
	next := Winner(ip, rest)
	if got := Assign(next, all, map[string]bool{win: true}, []Service{cluster}); len(got[ip]) != 1 {
		t.Errorf("%s does not take over from the excluded %s", next, win)
	}
	// A shared address is announced once, naming both services.
	if got := Assign(other, all, nil, []Service{cluster, local}); len(got[ip]) != 1 || got[ip][0] != "default/l" {
		t.Errorf("shared address for %s: %v", other, got)
	}
	if got := Assign(win, all, nil, []Service{cluster, {Key: "default/d", IPs: []netip.Addr{ip}}}); len(got[ip]) != 2 {
		t.Errorf("shared address for %s: %v", win, got)
	}
}

func TestLinksPick(t *testing.T) {
	ls := links{
		{name: "eth0", prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.11/24")}},
		{name: "eth1", prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.5/28"), netip.MustParsePrefix("2001:db8::5/64")}},
	}
	node := netip.MustParseAddr("198.51.100.11")
	for ip, want := range map[string]string{"192.0.2.10": "eth1", "2001:db8::10": "eth1", "198.51.100.240": "eth0", "203.0.113.1": "eth0"} {
		if got, err := ls.pick("", netip.MustParseAddr(ip), node); err != nil || got != want {
			t.Errorf("%s: %q %v, want %s", ip, got, err, want)
		}
	}
	if got, _ := ls.pick("bond0", netip.MustParseAddr("192.0.2.10"), node); got != "bond0" {
		t.Errorf("fixed interface: %q", got)
	}
	if _, err := ls.pick("", netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("10.9.9.9")); err == nil {
		t.Error("no interface fits, yet no error")
	}
}
