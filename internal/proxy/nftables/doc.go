// Package nftables is the nftables datapath of the service proxy. It turns
// a dataplane.State (service ports with the endpoints already chosen for
// this node) into the rules of one table, "ip portal-proxy", and keeps them in step:
// the first Sync (and any Sync after a failure) replaces the whole table in
// one atomic transaction; later ones add and delete only the set and map
// elements that changed.
//
// Layout (see docs/proxy-nftables.md): services and endpoints are elements
// of a few sets and verdict maps, never chains of their own. A service
// address . protocol . port is one element of @dispatch that jumps to a
// pick<N> chain for its endpoint count N; that chain DNATs through @backends
// with the key daddr . proto . dport . (numgen random mod N). There is one
// pick chain per endpoint count in use and per kind of traffic (cluster,
// external, external with externalTrafficPolicy Local, and the same two
// for NodePorts), so the number of chains stays in the tens.
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
// dataplane.ServicePort changed (each one's contribution is remembered) and writes the net
// element changes; at 10,000 service ports × 10 endpoints that is ~18 ms
// per added service, ~9 ms of it in nft.
//
// Masquerade: pick chains set mark 0x4000 for ClusterIP traffic from
// outside the pod CIDR and for external traffic unless
// externalTrafficPolicy is Local; nat-postrouting masquerades marked
// packets. Hairpin (a pod reaching itself through a service): nft cannot
// compare ip saddr with ip daddr, so @hairpin holds "ep . ep" for every
// endpoint address and postrouting masquerades `ct status dnat ip saddr .
// ip daddr @hairpin`. The pod network must put its bridge ports in hairpin
// mode: with br_netfilter the DNATed frame is bridged back out of the port
// it came in on.
//
// Rejects (no endpoints: TCP reset, ICMP port unreachable otherwise; any
// other address or port in the service CIDRs) run in filter chains on the
// prerouting and output hooks at priority dstnat-10, before DNAT.
//
// The Backend is Linux-only: knftables v0.0.22 imports
// github.com/google/nftables, which does not build elsewhere.
package nftables
