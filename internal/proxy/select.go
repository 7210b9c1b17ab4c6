package proxy

import (
	"slices"

	v1 "k8s.io/api/core/v1"
)

// Topology label keys understood by topologyKeys. The seed documents also
// spell zone and region without the "topology." prefix; those, and the
// deprecated failure-domain labels, are treated as the same key.
const (
	labelZoneLegacy   = "failure-domain.beta.kubernetes.io/zone"
	labelRegionLegacy = "failure-domain.beta.kubernetes.io/region"
	labelZoneSeed     = "kubernetes.io/zone"
	labelRegionSeed   = "kubernetes.io/region"
	// TopologyKeyAny matches every endpoint.
	TopologyKeyAny = "*"
)

var (
	zoneKeys   = []string{v1.LabelTopologyZone, labelZoneLegacy, labelZoneSeed}
	regionKeys = []string{v1.LabelTopologyRegion, labelRegionLegacy, labelRegionSeed}
)

// NodeInfo is the node a selection is made for.
type NodeInfo struct {
	// Name decides which endpoints are local; when empty, Endpoint.IsLocal
	// does.
	Name string
	// Zone is the node's topology.kubernetes.io/zone; when empty it is read
	// from Labels.
	Zone   string
	Labels map[string]string
	// NodeLabels returns the labels of the node an endpoint runs on, for
	// topologyKeys other than hostname and zone; nil when unknown.
	NodeLabels func(nodeName string) map[string]string
}

// isLocal uses the node name when known, so one endpoint list can be
// evaluated for any node; Endpoint.IsLocal otherwise.
func (n NodeInfo) isLocal(e Endpoint) bool {
	if n.Name != "" {
		return e.NodeName == n.Name
	}
	return e.IsLocal
}

// IsRemote reports whether e is known to run on another node: it names
// its node, and that is not this one.
func (n NodeInfo) IsRemote(e Endpoint) bool {
	return e.NodeName != "" && !n.isLocal(e)
}

func (n NodeInfo) zone() string {
	if n.Zone != "" {
		return n.Zone
	}
	return firstLabel(n.Labels, zoneKeys)
}

// Selection is the endpoints a datapath programs for one service port on
// one node. An empty list with Reject set means "reject at once" (ICMP
// unreachable / TCP reset); empty without Reject means "drop". Its lists
// may be the endpoint list Select was given, or share one another's
// array: they are read-only.
type Selection struct {
	// Cluster is for traffic from inside the cluster to the cluster IPs
	// (internalTrafficPolicy, then topology).
	Cluster       []Endpoint
	ClusterReject bool
	// External is for traffic arriving on node ports, external IPs and
	// load-balancer IPs (externalTrafficPolicy, then topology for Cluster).
	External       []Endpoint
	ExternalReject bool
	// Local is this node's usable endpoints; its length is what the
	// healthCheckNodePort server reports.
	Local []Endpoint
	// HasEndpoints is false when the service has no usable endpoint
	// anywhere.
	HasEndpoints bool
}

// Select chooses the endpoints of one service port for one node.
//
// Usable endpoints are the ready ones; when none is ready, the serving and
// terminating ones (graceful termination). The node-local set falls back the
// same way on its own: a node whose local endpoints all terminate keeps
// using them even when other nodes have ready ones.
//
// Cluster-policy traffic then goes through topology, first rule that
// applies: spec.topologyKeys (first key matching any usable endpoint wins,
// "*" matches all, none matching → reject), spec.trafficDistribution
// (PreferSameZone/PreferClose: same zone if any, else all; PreferSameNode:
// same node, else same zone, else all), EndpointSlice hints when the
// topology-mode annotation enables them (used only when every usable
// endpoint has hints and one hints this node or zone). Local policies skip
// topology. No usable endpoint at all → reject; a Local policy with no local
// endpoint → drop, as kube-proxy does.
func Select(sp *ServicePort, eps []Endpoint, node NodeInfo) Selection {
	usable := usableEndpoints(eps, func(Endpoint) bool { return true })
	local := usableEndpoints(eps, node.isLocal)
	sel := Selection{Local: local, HasEndpoints: len(usable) > 0}
	if !sel.HasEndpoints {
		sel.ClusterReject, sel.ExternalReject = true, true
		return sel
	}
	var cluster []Endpoint
	clusterOK := true
	if !sp.InternalPolicyLocal || !sp.ExternalPolicyLocal {
		cluster, clusterOK = topology(sp, usable, node)
	}
	if sp.InternalPolicyLocal {
		sel.Cluster = local
	} else {
		sel.Cluster, sel.ClusterReject = cluster, !clusterOK
	}
	if sp.ExternalPolicyLocal {
		sel.External = local
	} else {
		sel.External, sel.ExternalReject = cluster, !clusterOK
	}
	return sel
}

func usableEndpoints(eps []Endpoint, keep func(Endpoint) bool) []Endpoint {
	if out := filter(eps, func(e Endpoint) bool { return e.Ready && keep(e) }); len(out) > 0 {
		return out
	}
	return filter(eps, func(e Endpoint) bool { return e.Serving && e.Terminating && keep(e) })
}

// filter returns the endpoints keep keeps: eps itself when it keeps every
// one (the common case: all ready, all usable; selections never modify
// an endpoint list), else a new slice of exactly their number.
func filter(eps []Endpoint, keep func(Endpoint) bool) []Endpoint {
	n := 0
	for _, e := range eps {
		if keep(e) {
			n++
		}
	}
	switch n {
	case 0:
		return nil
	case len(eps):
		return eps
	}
	out := make([]Endpoint, 0, n)
	for _, e := range eps {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// topology narrows the usable endpoints for cluster-policy traffic; ok is
// false only when topologyKeys match nothing.
func topology(sp *ServicePort, eps []Endpoint, node NodeInfo) ([]Endpoint, bool) {
	if len(sp.TopologyKeys) > 0 {
		return byTopologyKeys(sp.TopologyKeys, eps, node)
	}
	zone := node.zone()
	sameNode := func(e Endpoint) bool { return node.Name != "" && e.NodeName == node.Name }
	sameZone := func(e Endpoint) bool { return zone != "" && e.Zone == zone }
	switch sp.TrafficDistribution {
	case v1.ServiceTrafficDistributionPreferSameNode:
		return firstNonEmpty(eps, sameNode, sameZone), true
	case v1.ServiceTrafficDistributionPreferSameZone, v1.ServiceTrafficDistributionPreferClose:
		return firstNonEmpty(eps, sameZone), true
	case "":
		if hintsEnabled(sp.TopologyMode) {
			return byHints(eps, node.Name, zone), true
		}
	}
	return eps, true
}

// firstNonEmpty returns the endpoints of the first predicate that keeps any,
// else all of them.
func firstNonEmpty(eps []Endpoint, preds ...func(Endpoint) bool) []Endpoint {
	for _, p := range preds {
		if out := filter(eps, p); len(out) > 0 {
			return out
		}
	}
	return eps
}

func hintsEnabled(mode string) bool {
	return mode != "" && mode != "disabled" && mode != "Disabled"
}

// byHints follows the EndpointSlice controller's hints: node hints, then
// zone hints, each only when every endpoint carries that kind of hint (a
// partially hinted slice is mid-update and would overload the hinted ones).
func byHints(eps []Endpoint, nodeName, zone string) []Endpoint {
	all := func(has func(Endpoint) bool) bool {
		return !slices.ContainsFunc(eps, func(e Endpoint) bool { return !has(e) })
	}
	if nodeName != "" && all(func(e Endpoint) bool { return len(e.NodeHints()) > 0 }) {
		if out := filter(eps, func(e Endpoint) bool { return slices.Contains(e.NodeHints(), nodeName) }); len(out) > 0 {
			return out
		}
	}
	if zone != "" && all(func(e Endpoint) bool { return len(e.ZoneHints()) > 0 }) {
		if out := filter(eps, func(e Endpoint) bool { return slices.Contains(e.ZoneHints(), zone) }); len(out) > 0 {
			return out
		}
	}
	return eps
}

// byTopologyKeys implements the legacy spec.topologyKeys: an endpoint
// matches a key when its node has the same value for that label as this
// node; the first key matching any endpoint wins.
func byTopologyKeys(keys []string, eps []Endpoint, node NodeInfo) ([]Endpoint, bool) {
	for _, key := range keys {
		var match func(Endpoint) bool
		switch {
		case key == TopologyKeyAny:
			return eps, true
		case key == v1.LabelHostname:
			// Node names identify nodes; the hostname label may differ.
			match = func(e Endpoint) bool { return node.Name != "" && e.NodeName == node.Name }
		default:
			want := nodeTopologyValue(node, key)
			if want == "" {
				continue // this node has no such label: nothing is "the same"
			}
			match = func(e Endpoint) bool { return endpointTopologyValue(e, node.NodeLabels, key) == want }
		}
		if out := filter(eps, match); len(out) > 0 {
			return out, true
		}
	}
	return nil, false
}

// topologyAliases returns the label keys that mean the same as key.
func topologyAliases(key string) []string {
	switch {
	case slices.Contains(zoneKeys, key):
		return zoneKeys
	case slices.Contains(regionKeys, key):
		return regionKeys
	}
	return []string{key}
}

func firstLabel(labels map[string]string, keys []string) string {
	for _, k := range keys {
		if v := labels[k]; v != "" {
			return v
		}
	}
	return ""
}

func nodeTopologyValue(node NodeInfo, key string) string {
	if slices.Contains(zoneKeys, key) {
		if z := node.zone(); z != "" {
			return z
		}
	}
	return labelValue(node.Labels, key)
}

// endpointTopologyValue reads the zone from the slice (the controller copies
// it from the node) and everything else from the endpoint's node labels.
func endpointTopologyValue(e Endpoint, nodeLabels func(string) map[string]string, key string) string {
	if slices.Contains(zoneKeys, key) && e.Zone != "" {
		return e.Zone
	}
	if nodeLabels == nil || e.NodeName == "" {
		return ""
	}
	return labelValue(nodeLabels(e.NodeName), key)
}

// labelValue reads key, trying the key as written first, then its aliases.
func labelValue(labels map[string]string, key string) string {
	if v := labels[key]; v != "" {
		return v
	}
	return firstLabel(labels, topologyAliases(key))
}
