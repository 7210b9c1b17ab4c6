package proxy

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
)

// endpointsOf feeds slices to a fresh tracker and returns the merged map.
func endpointsOf(t *testing.T, slices ...*discoveryv1.EndpointSlice) EndpointsMap {
	t.Helper()
	tr := NewTracker(TrackerConfig{NodeName: "n1"})
	for _, s := range slices {
		tr.Endpoints.Update(nil, s)
	}
	return tr.Take().Endpoints
}

func TestEndpointsMerge(t *testing.T) {
	http := []slicePortSpec{{"http", 8080, v1.ProtocolTCP}}
	cases := []struct {
		name   string
		slices []*discoveryv1.EndpointSlice
		want   map[ServicePortName][]string
	}{
		{
			"two slices merged and sorted",
			[]*discoveryv1.EndpointSlice{
				slice("web-b", "web", http, ep("10.1.0.9", "n2", "")),
				slice("web-a", "web", http, ep("10.1.0.3", "n1", ""), ep("10.1.0.10", "n1", "")),
			},
			map[ServicePortName][]string{spn("web", "http", v1.ProtocolTCP): {"10.1.0.3:8080", "10.1.0.9:8080", "10.1.0.10:8080"}},
		},
		{
			// A named targetPort resolves to different numbers on different
			// pods; the controller puts them in separate slices with the
			// service port's name.
			"named port with different numbers",
			[]*discoveryv1.EndpointSlice{
				slice("web-a", "web", http, ep("10.1.0.1", "", "")),
				slice("web-b", "web", []slicePortSpec{{"http", 9090, v1.ProtocolTCP}}, ep("10.1.0.2", "", "")),
			},
			map[ServicePortName][]string{spn("web", "http", v1.ProtocolTCP): {"10.1.0.1:8080", "10.1.0.2:9090"}},
		},
		{
			"duplicate across slices listed once",
			[]*discoveryv1.EndpointSlice{
				slice("web-a", "web", http, ep("10.1.0.1", "", ""), ep("10.1.0.2", "", "")),
				slice("web-b", "web", http, ep("10.1.0.1", "", "")),
			},
			map[ServicePortName][]string{spn("web", "http", v1.ProtocolTCP): {"10.1.0.1:8080", "10.1.0.2:8080"}},
		},
		{
			"multi-port and protocols, default TCP",
			[]*discoveryv1.EndpointSlice{
				slice("dns-a", "dns", []slicePortSpec{{"dns", 53, v1.ProtocolUDP}, {"dns-tcp", 53, ""}}, ep("10.1.0.5", "", "")),
			},
			map[ServicePortName][]string{
				spn("dns", "dns", v1.ProtocolUDP):     {"10.1.0.5:53"},
				spn("dns", "dns-tcp", v1.ProtocolTCP): {"10.1.0.5:53"},
			},
		},
		{
			"ignored: no service label, FQDN, bad address, no port",
			[]*discoveryv1.EndpointSlice{
				func() *discoveryv1.EndpointSlice {
					s := slice("orphan", "x", http, ep("10.1.0.1", "", ""))
					s.Labels = nil
					return s
				}(),
				func() *discoveryv1.EndpointSlice {
					s := slice("fqdn", "x", http, ep("example.com", "", ""))
					s.AddressType = discoveryv1.AddressTypeFQDN
					return s
				}(),
				slice("bad", "y", http, ep("not-an-ip", "", ""), ep("10.1.0.7", "", "")),
				slice("noport", "z", nil, ep("10.1.0.8", "", "")),
			},
			map[ServicePortName][]string{spn("y", "http", v1.ProtocolTCP): {"10.1.0.7:8080"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := map[ServicePortName][]string{}
			for n, eps := range endpointsOf(t, tc.slices...) {
				got[n] = epStrings(eps)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestEndpointFields(t *testing.T) {
	s := slice("web-a", "web", []slicePortSpec{{"", 80, v1.ProtocolTCP}},
		ep("10.1.0.1", "n1", "z1"),
		ep("10.1.0.2", "n2", "z2").notReady(),
		ep("10.1.0.3", "n1", "z1").term(true),
		sliceEP{ip: "10.1.0.4", zoneHints: []string{"z2", "z1", "z1"}, nodeHints: []string{"n1"}},
	)
	s.Endpoints[0].Addresses = append(s.Endpoints[0].Addresses, "10.9.9.9") // only the first counts
	s.Endpoints[0].TargetRef = &v1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-7d9f"}
	s.Endpoints[1].TargetRef = &v1.ObjectReference{Kind: "Node", Name: "n2"} // not a pod: no Pod
	// ready=false with serving unset: serving follows ready.
	s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.1.0.5"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}})
	got := endpointsOf(t, s)[spn("web", "", v1.ProtocolTCP)]
	ip := func(s string) Endpoint { return Endpoint{IP: addr(t, s), Port: 80} }
	want := []Endpoint{
		func() Endpoint {
			e := ip("10.1.0.1")
			e.Ready, e.Serving, e.NodeName, e.Zone, e.IsLocal, e.Pod = true, true, "n1", "z1", true, "web-7d9f"
			return e
		}(),
		func() Endpoint { e := ip("10.1.0.2"); e.NodeName, e.Zone = "n2", "z2"; return e }(),
		func() Endpoint {
			e := ip("10.1.0.3")
			e.Serving, e.Terminating, e.NodeName, e.Zone, e.IsLocal = true, true, "n1", "z1", true
			return e
		}(),
		func() Endpoint {
			e := ip("10.1.0.4")
			e.Ready, e.Serving, e.Hints = true, true, &Hints{Zones: []string{"z1", "z2"}, Nodes: []string{"n1"}}
			return e
		}(),
		ip("10.1.0.5"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

func TestDuplicatePrefersReady(t *testing.T) {
	p := []slicePortSpec{{"", 80, v1.ProtocolTCP}}
	got := endpointsOf(t,
		slice("a", "web", p, ep("10.1.0.1", "n2", "").notReady()),
		slice("b", "web", p, ep("10.1.0.1", "n2", "")),
	)[spn("web", "", v1.ProtocolTCP)]
	if len(got) != 1 || !got[0].Ready {
		t.Fatalf("got %+v, want one ready endpoint", got)
	}
}

// A service with one slice of one port shares the slice's trimmed
// endpoints as its merged list; that must be exactly what merging the
// same endpoints from two slices gives, duplicates and conditions too.
func TestSingleSliceMergeEqualsGeneralMerge(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	http := []slicePortSpec{{"http", 8080, v1.ProtocolTCP}}
	for round := range 200 {
		var eps []sliceEP
		for range rnd.IntN(8) {
			e := ep(fmt.Sprintf("10.1.0.%d", rnd.IntN(6)), []string{"n1", "n2"}[rnd.IntN(2)], "z1")
			switch rnd.IntN(3) {
			case 0:
				e = e.notReady()
			case 1:
				e = e.term(rnd.IntN(2) == 0)
			}
			eps = append(eps, e)
		}
		one := endpointsOf(t, slice("web-a", "web", http, eps...))
		half := len(eps) / 2
		two := endpointsOf(t, slice("web-a", "web", http, eps[:half]...), slice("web-b", "web", http, eps[half:]...))
		if len(one) != len(two) {
			t.Fatalf("round %d: %d ports from one slice, %d from two", round, len(one), len(two))
		}
		for name, want := range two {
			if got := one[name]; !endpointsEqual(got, want) {
				t.Fatalf("round %d: %v\none slice:  %+v\ntwo slices: %+v", round, name, got, want)
			}
		}
	}
}
