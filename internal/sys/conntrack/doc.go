// Package conntrack owns removing stale entries from the kernel's
// connection-tracking table for the service proxy.
//
// Conntrack keeps a NAT decision for as long as a flow lives, and a UDP (or
// SCTP) "flow" never ends while a client keeps sending: after a backend
// goes away its clients keep being sent to the dead address, and packets
// that reached a service IP before it had endpoints stay pinned to the
// un-NATed address (a black hole) even after endpoints appear. The proxy
// describes, after each sync, every UDP and SCTP service frontend with the
// endpoints it may be served by; ClearStale then deletes, in one pass over
// the table, the flows to those frontends whose reply source is not one of
// them. Flows to endpoints that still exist are never touched, so a proxy
// restart interrupts nothing. TCP is never cleared: a TCP connection to a
// vanished backend fails on its own with a reset or time-out.
package conntrack
