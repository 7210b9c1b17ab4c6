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
