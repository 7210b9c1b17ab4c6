// Package proxy is the backend-neutral model of the service proxy: what to
// program for each Service port, and what changed since the last sync. It
// does no I/O; the nftables and iptables backends build on it.
//
// # Model
//
// ServicePorts turns a core/v1 Service into ServicePort values keyed by
// ServicePortName (namespace/name, port name, protocol). Headless and
// ExternalName services, services without a cluster IP, services labelled
// service.kubernetes.io/service-proxy-name and ports that are not TCP, UDP
// or SCTP are not proxied. Defaults are applied here (session affinity
// timeout 10800 s, load-balancer ipMode VIP, externalTrafficPolicy Local
// only counts for externally reachable services).
//
// EndpointSlices are merged per service into an EndpointsMap keyed by the
// slice port's name: a slice port named like the service port supplies its
// endpoints, which is how named target ports are resolved. An address:port
// listed by several slices appears once (the ready copy wins). Only the
// first address of an endpoint is used, as the API allows.
//
// spec.topologyKeys is not in k8s.io/api; TrackerConfig.TopologyKeys
// supplies it per Service (portal's API server keeps it in the raw object).
//
// # Change tracking
//
// Informer handlers call Tracker.Services.Update and Tracker.Endpoints.Update
// with the previous and current object (nil for add/delete), from any
// goroutine. The sync loop calls Tracker.Take, which applies everything
// pending and returns Changes: the full current maps (for a full sync; the
// tracker's own, read-only, valid until the next Take) and,
// per changed service port, the old and new ServicePort and endpoints (for
// a partial one). Take also lists the UDP/SCTP conntrack entries to delete
// (vanished backends, deleted or re-addressed ports, ports whose first
// usable endpoint appeared) and, per service, when the change was triggered
// so kubeproxy_network_programming_duration_seconds can be observed.
//
// # Endpoint selection
//
// Select is a pure function from a ServicePort, its endpoints and the node
// to the endpoints for cluster traffic and external traffic, in this order:
//
//  1. Usable endpoints: ready ones; if none is ready, serving+terminating
//     ones. None at all → reject.
//  2. internalTrafficPolicy Local: cluster traffic uses this node's usable
//     endpoints only (none → drop). externalTrafficPolicy Local: node-port,
//     external-IP and load-balancer traffic the same (none → drop).
//  3. Topology, for Cluster policies only, the first that is set wins:
//     a. spec.topologyKeys: keys in order; kubernetes.io/hostname means the
//     same node, topology.kubernetes.io/zone (also
//     failure-domain.beta.kubernetes.io/zone and the seed's
//     kubernetes.io/zone) the same zone, topology.kubernetes.io/region (and
//     its aliases) the same region, any other key the same node-label
//     value; "*" means any endpoint. The first key matching any endpoint
//     wins; no key matching → reject.
//     b. spec.trafficDistribution: PreferSameZone and PreferClose keep the
//     same zone's endpoints when there are any, else all; PreferSameNode
//     keeps the same node's, else the same zone's, else all.
//     c. EndpointSlice hints, only when the service.kubernetes.io/topology-mode
//     annotation enables them: forNodes then forZones, each used only when
//     every usable endpoint has that kind of hint and one names this
//     node/zone.
package proxy
