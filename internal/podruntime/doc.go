// Package podruntime runs pods on a node: a network namespace with a veth
// into the node bridge and an IP from host-local IPAM (subpackage network),
// and one supervisor process per pod (subpackage shim) that runs the
// containers as processes, keeps their logs and outlives the agent. The
// agent talks to it only through the Runtime interface, so a CRI runtime
// can be added behind the same interface later.
package podruntime
