package proxy

import (
	"fmt"
	"net/netip"
	"testing"

	v1 "k8s.io/api/core/v1"
)

// sep builds an endpoint on node in zone; state is "ready", "notready",
// "term" (serving+terminating) or "termdown" (terminating, not serving).
func sep(ip, node, zone, state string) Endpoint {
	e := Endpoint{IP: netip.MustParseAddr(ip), Port: 80, NodeName: node, Zone: zone, IsLocal: node == "n1"}
	switch state {
	case "ready":
		e.Ready, e.Serving = true, true
	case "term":
		e.Serving, e.Terminating = true, true
	case "termdown":
		e.Terminating = true
	}
	return e
}

func hinted(e Endpoint, zones, nodes []string) Endpoint {
	e.Hints = &Hints{Zones: zones, Nodes: nodes}
	return e
}

// Nodes n1, n2 in zone a (region r1), n3 in zone b (region r1), n4 in zone c
// (region r2). The selection is always made on n1.
var testNodeLabels = map[string]map[string]string{
	"n1": {v1.LabelHostname: "n1", v1.LabelTopologyZone: "a", v1.LabelTopologyRegion: "r1", "rack": "x"},
	"n2": {v1.LabelHostname: "n2", v1.LabelTopologyZone: "a", v1.LabelTopologyRegion: "r1", "rack": "y"},
	"n3": {v1.LabelHostname: "n3", v1.LabelTopologyZone: "b", v1.LabelTopologyRegion: "r1", "rack": "x"},
	"n4": {v1.LabelHostname: "n4", v1.LabelTopologyZone: "c", v1.LabelTopologyRegion: "r2"},
}

var n1 = NodeInfo{Name: "n1", Labels: testNodeLabels["n1"], NodeLabels: func(n string) map[string]string { return testNodeLabels[n] }}

func TestSelect(t *testing.T) {
	local := sep("10.1.0.1", "n1", "a", "ready")
	sameZone := sep("10.1.0.2", "n2", "a", "ready")
	otherZone := sep("10.1.0.3", "n3", "b", "ready")
	otherRegion := sep("10.1.0.4", "n4", "c", "ready")
	all := []Endpoint{local, sameZone, otherZone, otherRegion}
	remote := []Endpoint{sameZone, otherZone, otherRegion}

	type sp = ServicePort
	cases := []struct {
		name string
		sp   sp
		eps  []Endpoint
		node *NodeInfo
		// want: "cluster | external | local", endpoints as last octets,
		// "reject"/"drop" for empty lists.
		want string
	}{
		{"no endpoints rejects", sp{}, nil, nil, "reject | reject | -"},
		{"only not-ready endpoints rejects", sp{}, []Endpoint{sep("10.1.0.1", "n1", "a", "notready"), sep("10.1.0.2", "n2", "a", "termdown")}, nil, "reject | reject | -"},
		{"ready only", sp{}, []Endpoint{local, sep("10.1.0.2", "n2", "a", "notready"), sep("10.1.0.3", "n3", "b", "term")}, nil, "1 | 1 | 1"},
		{"fallback to serving terminating", sp{}, []Endpoint{sep("10.1.0.1", "n1", "a", "term"), sep("10.1.0.2", "n2", "a", "termdown"), sep("10.1.0.3", "n3", "b", "term")}, nil, "1 3 | 1 3 | 1"},
		{"local falls back on its own", sp{ExternalPolicyLocal: true}, []Endpoint{sep("10.1.0.1", "n1", "a", "term"), otherZone}, nil, "3 | 1 | 1"},
		{"iTP Local", sp{InternalPolicyLocal: true}, all, nil, "1 | 1 2 3 4 | 1"},
		{"iTP Local without local endpoint drops", sp{InternalPolicyLocal: true}, remote, nil, "drop | 2 3 4 | -"},
		{"eTP Local", sp{ExternalPolicyLocal: true}, all, nil, "1 2 3 4 | 1 | 1"},
		{"eTP Local without local endpoint drops", sp{ExternalPolicyLocal: true}, remote, nil, "2 3 4 | drop | -"},
		{"both Local", sp{InternalPolicyLocal: true, ExternalPolicyLocal: true}, all, nil, "1 | 1 | 1"},

		{"PreferSameZone", sp{TrafficDistribution: "PreferSameZone"}, all, nil, "1 2 | 1 2 | 1"},
		{"PreferClose is PreferSameZone", sp{TrafficDistribution: "PreferClose"}, remote, nil, "2 | 2 | -"},
		{"PreferSameZone none in zone: all", sp{TrafficDistribution: "PreferSameZone"}, []Endpoint{otherZone, otherRegion}, nil, "3 4 | 3 4 | -"},
		{"PreferSameZone zone from NodeInfo.Zone", sp{TrafficDistribution: "PreferSameZone"}, all, &NodeInfo{Name: "n3", Zone: "b"}, "3 | 3 | 3"},
		{"PreferSameZone node without zone: all", sp{TrafficDistribution: "PreferSameZone"}, all, &NodeInfo{Name: "n9"}, "1 2 3 4 | 1 2 3 4 | -"},
		{"locality from IsLocal when the node has no name", sp{ExternalPolicyLocal: true}, all, &NodeInfo{}, "1 2 3 4 | 1 | 1"},
		{"PreferSameZone not-ready same-zone ignored", sp{TrafficDistribution: "PreferSameZone"}, []Endpoint{sep("10.1.0.2", "n2", "a", "notready"), otherZone}, nil, "3 | 3 | -"},
		{"PreferSameNode", sp{TrafficDistribution: "PreferSameNode"}, all, nil, "1 | 1 | 1"},
		{"PreferSameNode falls to zone", sp{TrafficDistribution: "PreferSameNode"}, remote, nil, "2 | 2 | -"},
		{"PreferSameNode falls to all", sp{TrafficDistribution: "PreferSameNode"}, []Endpoint{otherZone, otherRegion}, nil, "3 4 | 3 4 | -"},
		{"topology with eTP Local: external stays local", sp{TrafficDistribution: "PreferSameZone", ExternalPolicyLocal: true}, all, nil, "1 2 | 1 | 1"},
		{"unknown trafficDistribution: all", sp{TrafficDistribution: "PreferMoon"}, all, nil, "1 2 3 4 | 1 2 3 4 | 1"},

		{"hints ignored without annotation", sp{}, []Endpoint{hinted(local, []string{"b"}, nil), hinted(otherZone, []string{"b"}, nil)}, nil, "1 3 | 1 3 | 1"},
		{"zone hints", sp{TopologyMode: "Auto"}, []Endpoint{hinted(local, []string{"b"}, nil), hinted(otherZone, []string{"a"}, nil)}, nil, "3 | 3 | 1"},
		{"zone hints incomplete: all", sp{TopologyMode: "Auto"}, []Endpoint{hinted(local, []string{"b"}, nil), otherZone}, nil, "1 3 | 1 3 | 1"},
		{"zone hints none for this zone: all", sp{TopologyMode: "Auto"}, []Endpoint{hinted(local, []string{"b"}, nil), hinted(otherZone, []string{"c"}, nil)}, nil, "1 3 | 1 3 | 1"},
		{"hints disabled", sp{TopologyMode: "Disabled"}, []Endpoint{hinted(local, []string{"b"}, nil), hinted(otherZone, []string{"a"}, nil)}, nil, "1 3 | 1 3 | 1"},
		{"node hints", sp{TopologyMode: "Auto"}, []Endpoint{hinted(local, []string{"a"}, []string{"n2"}), hinted(sameZone, []string{"a"}, []string{"n1"})}, nil, "2 | 2 | 1"},
		{"trafficDistribution beats hints", sp{TopologyMode: "Auto", TrafficDistribution: "PreferSameNode"}, []Endpoint{hinted(local, []string{"b"}, nil), hinted(otherZone, []string{"a"}, nil)}, nil, "1 | 1 | 1"},

		{"topologyKeys hostname", sp{TopologyKeys: []string{"kubernetes.io/hostname", "*"}}, all, nil, "1 | 1 | 1"},
		{"topologyKeys hostname falls to *", sp{TopologyKeys: []string{"kubernetes.io/hostname", "*"}}, remote, nil, "2 3 4 | 2 3 4 | -"},
		{"topologyKeys zone", sp{TopologyKeys: []string{"topology.kubernetes.io/zone"}}, remote, nil, "2 | 2 | -"},
		{"topologyKeys legacy zone key", sp{TopologyKeys: []string{"failure-domain.beta.kubernetes.io/zone"}}, remote, nil, "2 | 2 | -"},
		{"topologyKeys seed zone key", sp{TopologyKeys: []string{"kubernetes.io/zone"}}, remote, nil, "2 | 2 | -"},
		{"topologyKeys region", sp{TopologyKeys: []string{"kubernetes.io/hostname", "topology.kubernetes.io/region"}}, []Endpoint{otherZone, otherRegion}, nil, "3 | 3 | -"},
		{"topologyKeys seed region key", sp{TopologyKeys: []string{"kubernetes.io/region"}}, []Endpoint{otherZone, otherRegion}, nil, "3 | 3 | -"},
		{"topologyKeys custom label", sp{TopologyKeys: []string{"rack"}}, remote, nil, "3 | 3 | -"},
		{"topologyKeys no match rejects", sp{TopologyKeys: []string{"kubernetes.io/hostname", "topology.kubernetes.io/zone"}}, []Endpoint{otherZone, otherRegion}, nil, "reject | reject | -"},
		{"topologyKeys key this node lacks is skipped", sp{TopologyKeys: []string{"gpu", "*"}}, remote, nil, "2 3 4 | 2 3 4 | -"},
		{"topologyKeys beat trafficDistribution and hints", sp{TopologyKeys: []string{"topology.kubernetes.io/region"}, TrafficDistribution: "PreferSameNode", TopologyMode: "Auto"},
			[]Endpoint{local, hinted(otherZone, []string{"a"}, nil), otherRegion}, nil, "1 3 | 1 3 | 1"},
		{"topologyKeys on serving-terminating fallback", sp{TopologyKeys: []string{"kubernetes.io/hostname", "*"}}, []Endpoint{sep("10.1.0.1", "n1", "a", "term"), sep("10.1.0.2", "n2", "a", "term")}, nil, "1 | 1 | 1"},
		{"topologyKeys with eTP Local", sp{TopologyKeys: []string{"kubernetes.io/hostname"}, ExternalPolicyLocal: true}, remote, nil, "reject | drop | -"},
	}
	render := func(eps []Endpoint, reject bool) string {
		if len(eps) == 0 {
			if reject {
				return "reject"
			}
			return "drop"
		}
		s := ""
		for i, e := range eps {
			if i > 0 {
				s += " "
			}
			s += fmt.Sprint(e.IP.As4()[3])
		}
		return s
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node := n1
			if tc.node != nil {
				node = *tc.node
			}
			sel := Select(&tc.sp, tc.eps, node)
			loc := render(sel.Local, false)
			if len(sel.Local) == 0 {
				loc = "-"
			}
			got := render(sel.Cluster, sel.ClusterReject) + " | " + render(sel.External, sel.ExternalReject) + " | " + loc
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			usable := false
			for _, e := range tc.eps {
				usable = usable || e.Ready || (e.Serving && e.Terminating)
			}
			if sel.HasEndpoints != usable {
				t.Fatalf("HasEndpoints = %v", sel.HasEndpoints)
			}
		})
	}
}
