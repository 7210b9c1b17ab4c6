// Package nftables is the nftables datapath of the service proxy. It turns
// a dataplane.State (service ports with the endpoints already chosen for
// this node) into the rules of one table, "ip portal-proxy", and keeps
// them in step: the first Sync (and any Sync after a failure, and
// FullSync) rewrites the whole table; later ones add and delete only the
// set and map elements that changed.
//
// Two channels write the table. Chains, rules, set and map declarations
// and the two small interval sets (service-cidrs, lb-source-allowed) go
// through knftables (the nft binary); the elements of the large sets and
// maps go over netlink (Elements: one nfnetlink batch encoded in batch.go,
// listed back with github.com/google/nftables), because nft spends
// seconds parsing 100,000 `add element` lines. A full sync is
// three steps (Backend.full): (1) one text transaction adds the table and
// containers, flushes and rewrites every chain we own, adds new chains
// and sets; (2) one netlink batch flushes each large set and map and
// refills it, which the kernel commits atomically; (3) one text
// transaction deletes chains and sets nothing refers to any more. No step
// leaves a live table without something it still needs, so a restarted
// proxy keeps established and new connections working. When the table
// does not exist yet, or had another layout and is recreated (logged),
// its service addresses are rejected between (1) and (2): acceptable at a
// first start, when nothing was programmed. A partial sync is the same
// three steps with only what changed: new chains and sets, the element
// changes, deletions.
//
// Layout (see docs/proxy-nftables.md): services and endpoints are elements
// of a few sets and verdict maps, never chains of their own. A service
// address . protocol . port is one element of @dispatch that jumps to a
// pick-<proto>-<N> chain for its protocol and endpoint count N; that chain
// DNATs through @backends-<proto> with the key daddr . proto . dport .
// (numgen random mod N). There is one pick chain per protocol, endpoint
// count in use and kind of traffic (cluster, external, external with
// externalTrafficPolicy Local, and the same two for NodePorts), so the
// number of chains stays in the tens. The backends maps are per protocol
// because nft turns a map's declared value type (`ip daddr . udp dport`)
// into a protocol match in the DNAT rule: one map for all protocols
// stopped DNATing UDP and SCTP. An older layout's containers and chains
// are deleted in step (3) once nothing refers to them.
//
// Session affinity (ClientIP) is the exception: an affinity service port
// gets its own chains (one for cluster traffic, one for external and
// NodePort traffic) and one dynamic set per endpoint of the clients
// pinned to it (per-element timeouts, refreshed on every new connection).
// The chain sends a client in an endpoint's set there, else picks at
// random with per-rule probabilities 1/(N-k) and records the pick. Set
// names carry the endpoint, so an endpoint change rewrites that service
// port's chains, deletes only the removed endpoint's set (its clients
// move at once) and keeps every other pin; full syncs never flush these
// sets. See affinity.go.
//
// A delta sync re-renders only the service ports whose
// dataplane.ServicePort changed (State.Changed names them; the old
// contribution is rendered again from the applied service port, so the
// backend keeps service ports, not elements) and writes the net element
// changes. At 10,000 service ports × 10
// endpoints (TestSyncScale) a full sync costs ~0.5 s of CPU, a restart's
// ~0.4 s, an added service ~3 ms; see docs/proxy-nftables.md.
//
// Masquerade: pick chains set mark 0x4000 for ClusterIP traffic from
// outside the pod CIDR and for external traffic unless
// externalTrafficPolicy is Local; nat-postrouting masquerades marked
// packets. Hairpin (a pod reaching itself through a service): nft cannot
// compare ip saddr with ip daddr, so @hairpin holds "ep . ep" for every
// endpoint address that may be on this node (not for those the
// EndpointSlice places on another node: their packets to the service are
// translated on their own node) and postrouting masquerades `ct status
// dnat ip saddr . ip daddr @hairpin`. The pod network must put its bridge ports in hairpin
// mode: with br_netfilter the DNATed frame is bridged back out of the port
// it came in on.
//
// Rejects (no endpoints: TCP reset, ICMP port unreachable otherwise; any
// other address or port in the service CIDRs) and the source-range drop
// run in filter chains on the prerouting and output hooks at priority
// dstnat-10, before DNAT, and only for new connections (ct state new), as
// kube-proxy: a service briefly without ready endpoints must not reset the
// connections it has.
//
// The Backend is Linux-only: knftables v0.0.22 and the element writer
// import github.com/google/nftables, which does not build elsewhere.
package nftables
