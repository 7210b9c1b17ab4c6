// Package ipam owns the choice of LoadBalancer addresses: which pool a
// Service may draw from, which address it gets, when two Services may share
// one, and why a request is refused.
//
// It is pure bookkeeping with no I/O and no Kubernetes clients. The LB
// controller feeds it pools (SetPools) and Services (Assign, Release), at
// start rebuilds it from the addresses already written to
// status.loadBalancer.ingress (Restore), and turns its results into ingress
// entries, conditions and events. Errors match the sentinels in errors.go
// with errors.Is and carry a message fit for an event; Reason maps them to
// a condition reason.
//
// Choices the controller can rely on:
//   - Deterministic: for the same pools, assignments and request, Assign
//     gives the same addresses. Auto-assignment walks eligible pools in name
//     order and takes, per IP family, the Service's own previous address if
//     still valid, else an address it may share (same sharing key, disjoint
//     ports), else the lowest free address of the pool. A dual-stack Service
//     gets its IPv4 and IPv6 addresses from the same pool.
//   - Requested addresses are honoured exactly or refused with an error
//     naming the reason; there is never a silent substitute.
//   - An Assign that returns an error leaves the Service holding nothing, so
//     the controller clears its ingress. An Assign whose request the current
//     addresses still satisfy returns them unchanged.
//   - SetPools never moves a Service: it reports assignments left outside
//     every pool (or in a pool that no longer admits the Service); the
//     controller calls Assign for them to move them or record the error.
//   - The network and broadcast addresses of an IPv4 CIDR shorter than /31
//     are never handed out unless the pool sets IncludeNetworkBroadcast.
//   - Pools may overlap: an address is tracked once, so it is never given
//     twice, and a Service may use it if any pool holding it admits it.
package ipam
