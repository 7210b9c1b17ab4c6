// Package nodelifecycle owns the node lifecycle controller: it judges node
// health from the node's Lease in kube-node-lease and its Ready heartbeat,
// marks silent nodes' conditions Unknown, keeps the not-ready/unreachable
// (and condition) taints in line with the node's state, marks the pods of a
// failed node not ready at once so Services stop sending them traffic, and
// evicts pods from nodes with NoExecute taints they do not tolerate, or
// tolerate only for a while.
//
// The decisions are pure functions of the objects and a time (health.go,
// taints.go, eviction.go); Controller feeds them from informers, a periodic
// health check and a clock that tests replace.
package nodelifecycle
