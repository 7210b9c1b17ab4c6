package conntrack

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
)

var (
	ap     = netip.MustParseAddrPort
	client = ap("10.244.1.5:40000")
	dnsSvc = ap("10.96.0.10:53")
	podA   = ap("10.244.0.2:5353")
	podB   = ap("10.244.0.3:5353")
	podC   = ap("10.244.0.4:5353")
)

func fe(proto uint8, s string) Frontend {
	a := netip.MustParseAddrPort(s)
	return Frontend{Proto: proto, Addr: a.Addr(), Port: a.Port()}
}

func TestClearStale(t *testing.T) {
	tests := []struct {
		name        string
		flows       []Flow
		svcs        []Service
		wantDeleted []Flow
	}{{
		name:        "removed endpoint's flow goes, remaining endpoint's stays",
		flows:       []Flow{NATFlow(UDP, client, dnsSvc, podA), NATFlow(UDP, ap("10.244.1.6:40000"), dnsSvc, podB)},
		svcs:        []Service{{fe(UDP, "10.96.0.10:53"), []netip.AddrPort{podA}}},
		wantDeleted: []Flow{NATFlow(UDP, ap("10.244.1.6:40000"), dnsSvc, podB)},
	}, {
		name:        "black hole from before the first endpoint goes",
		flows:       []Flow{NATFlow(UDP, client, dnsSvc, dnsSvc)},
		svcs:        []Service{{fe(UDP, "10.96.0.10:53"), []netip.AddrPort{podC}}},
		wantDeleted: []Flow{NATFlow(UDP, client, dnsSvc, dnsSvc)},
	}, {
		name:  "restart with unchanged endpoints deletes nothing",
		flows: []Flow{NATFlow(UDP, client, dnsSvc, podA), NATFlow(UDP, ap("10.244.1.6:1"), dnsSvc, podB)},
		svcs:  []Service{{fe(UDP, "10.96.0.10:53"), []netip.AddrPort{podA, podB}}},
	}, {
		name:        "removed service: no endpoints, every flow goes",
		flows:       []Flow{NATFlow(UDP, client, dnsSvc, podA), NATFlow(UDP, ap("10.244.1.6:1"), dnsSvc, podB)},
		svcs:        []Service{{Frontend: fe(UDP, "10.96.0.10:53")}},
		wantDeleted: []Flow{NATFlow(UDP, client, dnsSvc, podA), NATFlow(UDP, ap("10.244.1.6:1"), dnsSvc, podB)},
	}, {
		name:        "endpoint port matters when given (targetPort changed)",
		flows:       []Flow{NATFlow(UDP, client, dnsSvc, podA)},
		svcs:        []Service{{fe(UDP, "10.96.0.10:53"), []netip.AddrPort{ap("10.244.0.2:53")}}},
		wantDeleted: []Flow{NATFlow(UDP, client, dnsSvc, podA)},
	}, {
		name:  "endpoint port 0 accepts any port",
		flows: []Flow{NATFlow(UDP, client, dnsSvc, podA)},
		svcs:  []Service{{fe(UDP, "10.96.0.10:53"), []netip.AddrPort{ap("10.244.0.2:0")}}},
	}, {
		name: "other destinations, ports and protocols are untouched",
		flows: []Flow{
			NATFlow(UDP, client, podB, podB),                               // straight to a pod
			NATFlow(UDP, client, ap("10.96.0.10:54"), ap("10.96.0.10:54")), // other port
			NATFlow(SCTP, client, dnsSvc, podB),                            // same port, other protocol
			NATFlow(6, client, dnsSvc, podB),                               // TCP
		},
		svcs: []Service{{fe(UDP, "10.96.0.10:53"), []netip.AddrPort{podA}}},
	}, {
		name:        "SCTP flows are cleared like UDP",
		flows:       []Flow{NATFlow(SCTP, client, ap("10.96.0.20:9000"), ap("10.244.0.9:9000"))},
		svcs:        []Service{{fe(SCTP, "10.96.0.20:9000"), nil}},
		wantDeleted: []Flow{NATFlow(SCTP, client, ap("10.96.0.20:9000"), ap("10.244.0.9:9000"))},
	}, {
		name: "node port on every address, including a black hole",
		flows: []Flow{
			NATFlow(UDP, ap("192.0.2.7:5000"), ap("172.18.0.2:30053"), podA),
			NATFlow(UDP, ap("192.0.2.7:5001"), ap("172.18.0.2:30053"), podB),
			NATFlow(UDP, ap("192.0.2.7:5002"), ap("10.0.0.9:30053"), ap("10.0.0.9:30053")),
		},
		svcs: []Service{{fe(UDP, "0.0.0.0:30053"), []netip.AddrPort{podA}}},
		wantDeleted: []Flow{
			NATFlow(UDP, ap("192.0.2.7:5001"), ap("172.18.0.2:30053"), podB),
			NATFlow(UDP, ap("192.0.2.7:5002"), ap("10.0.0.9:30053"), ap("10.0.0.9:30053")),
		},
	}, {
		name:  "exact frontend wins over a node port with the same number",
		flows: []Flow{NATFlow(UDP, client, ap("10.96.0.30:30053"), podC)},
		svcs: []Service{
			{fe(UDP, "10.96.0.30:30053"), []netip.AddrPort{podC}},
			{fe(UDP, "0.0.0.0:30053"), []netip.AddrPort{podA}},
		},
	}, {
		name:  "external and load-balancer IPs with the union of duplicate frontends",
		flows: []Flow{NATFlow(UDP, client, ap("203.0.113.10:53"), podA), NATFlow(UDP, client, ap("203.0.113.10:53"), podB)},
		svcs: []Service{
			{fe(UDP, "203.0.113.10:53"), []netip.AddrPort{podA}},
			{fe(UDP, "203.0.113.10:53"), []netip.AddrPort{podB}},
		},
	}, {
		name: "IPv6 and IPv4-mapped addresses",
		flows: []Flow{
			NATFlow(UDP, ap("[fd00::5]:4000"), ap("[fd00:96::a]:53"), ap("[fd00:244::2]:5353")),
			NATFlow(UDP, ap("[fd00::5]:4001"), ap("[fd00:96::a]:53"), ap("[fd00:244::3]:5353")),
			NATFlow(UDP, ap("[::ffff:10.244.1.5]:1"), ap("[::ffff:10.96.0.10]:53"), ap("[::ffff:10.244.0.3]:5353")),
		},
		svcs: []Service{
			{fe(UDP, "[fd00:96::a]:53"), []netip.AddrPort{ap("[fd00:244::2]:5353")}},
			{fe(UDP, "[::ffff:10.96.0.10]:53"), []netip.AddrPort{ap("[::ffff:10.244.0.2]:5353")}},
		},
		wantDeleted: []Flow{
			NATFlow(UDP, ap("[fd00::5]:4001"), ap("[fd00:96::a]:53"), ap("[fd00:244::3]:5353")),
			NATFlow(UDP, ap("[::ffff:10.244.1.5]:1"), ap("[::ffff:10.96.0.10]:53"), ap("[::ffff:10.244.0.3]:5353")),
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFake(tt.flows...)
			n, err := f.ClearStale(tt.svcs)
			if err != nil {
				t.Fatalf("ClearStale: %v", err)
			}
			if n != len(tt.wantDeleted) || !slices.Equal(f.Deleted(), tt.wantDeleted) {
				t.Fatalf("deleted %d: %v\nwant %v", n, f.Deleted(), tt.wantDeleted)
			}
			var wantLeft []Flow
			for _, fl := range tt.flows {
				if !slices.Contains(tt.wantDeleted, fl) {
					wantLeft = append(wantLeft, fl)
				}
			}
			if got := f.Flows(); !slices.Equal(got, wantLeft) {
				t.Fatalf("left %v\nwant %v", got, wantLeft)
			}
		})
	}
}

func TestClearStaleRejectsInvalid(t *testing.T) {
	tests := []struct {
		name string
		svc  Service
	}{
		{"TCP is never flushed", Service{Frontend: fe(6, "10.96.0.10:80")}},
		{"no address", Service{Frontend: Frontend{Proto: UDP, Port: 53}}},
		{"port 0", Service{Frontend: fe(UDP, "10.96.0.10:0")}},
		{"endpoint of other family", Service{fe(UDP, "10.96.0.10:53"), []netip.AddrPort{ap("[fd00::1]:53")}}},
		{"endpoint without address", Service{fe(UDP, "10.96.0.10:53"), []netip.AddrPort{{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFake(NATFlow(UDP, client, dnsSvc, podA))
			n, err := f.ClearStale([]Service{{Frontend: fe(UDP, "10.96.0.10:53")}, tt.svc})
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if n != 0 || len(f.Flows()) != 1 || f.Calls() != 0 {
				t.Fatalf("an invalid call deleted %d flows (left %d, calls %d); want nothing touched", n, len(f.Flows()), f.Calls())
			}
		})
	}
}

func TestMatcherFamilies(t *testing.T) {
	m, err := NewMatcher([]Service{{Frontend: fe(UDP, "[::ffff:10.96.0.10]:53")}})
	if err != nil {
		t.Fatal(err)
	}
	if v4, v6 := m.Families(); !v4 || v6 {
		t.Fatalf("Families() = %v, %v; a mapped IPv4 frontend needs only the IPv4 table", v4, v6)
	}
}
