package dataplane

import (
	"net/netip"
	"slices"
	"testing"
)

func TestChangedPorts(t *testing.T) {
	a := []ServicePort{{Name: "ns/a:/tcp", Port: 80}, {Name: "ns/b:/tcp", Port: 80}, {Name: "ns/c:/tcp", Port: 80}}
	b := []ServicePort{{Name: "ns/a:/tcp", Port: 80}, {Name: "ns/c:/tcp", Port: 81}, {Name: "ns/d:/tcp", Port: 80,
		Endpoints: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:80")}}}
	s := State{Services: b}
	if _, _, ok := s.ChangedPorts(); ok {
		t.Fatal("ChangedPorts ok without Changed")
	}
	s.Changed = ChangedNames(a, b)
	names, ports, ok := s.ChangedPorts()
	if !ok || !slices.Equal(names, []string{"ns/b:/tcp", "ns/c:/tcp", "ns/d:/tcp"}) {
		t.Fatalf("names %v ok %v", names, ok)
	}
	if ports[0] != nil || ports[1] != &b[1] || ports[2] != &b[2] {
		t.Errorf("ports %v: want gone, b[1], b[2]", ports)
	}
}

func TestNeedsHairpinAndEqual(t *testing.T) {
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	sp := ServicePort{Name: "default/web:http/tcp", RemoteEndpoints: []netip.Addr{a("10.0.0.3"), a("10.0.0.7")}}
	for ip, want := range map[string]bool{"10.0.0.2": true, "10.0.0.3": false, "10.0.0.7": false, "10.0.0.9": true} {
		if got := sp.NeedsHairpin(a(ip)); got != want {
			t.Errorf("NeedsHairpin(%s) = %v, want %v", ip, got, want)
		}
	}
	if none := (ServicePort{}); !none.NeedsHairpin(a("10.0.0.3")) {
		t.Error("with no remote endpoints every endpoint needs hairpin")
	}
	other := sp
	other.RemoteEndpoints = []netip.Addr{a("10.0.0.3")}
	if sp.Equal(&other) {
		t.Error("service ports with different remote endpoints are Equal")
	}
}
