// Package sched holds the userspace proxy's schedulers: the rule that picks
// a backend for each new connection of a service port, with the semantics
// of the Linux IPVS schedulers of the same names (rr, wrr, lc, wlc, dh, sh,
// sed, nq) plus random. Each is a small pure type; none touches the
// network. New makes one by name.
//
// Every scheduler keeps its backends sorted by address
// (netip.AddrPort.Compare), so its choices depend on the backend set and
// never on the order Update was given it: rr and wrr go round in address
// order and lc, wlc, sed and nq break ties to the lowest address. A
// repeated address keeps its first entry; a negative weight counts as 0.
package sched

import (
	"net/netip"
)

// Backend is one endpoint a scheduler may pick.
type Backend struct {
	Addr netip.AddrPort
	// Weight is the backend's share (wrr, wlc, sed, nq, weighted sh/dh);
	// 0 means it takes no new connections (IPVS's quiesced server).
	Weight int
}

// Conn is what a scheduler knows of a new connection.
type Conn struct {
	Client netip.AddrPort // the client's address as the proxy sees it
	Dest   netip.AddrPort // the address the client connected to (ClusterIP, node port...)
}

// Scheduler picks backends. Pick and Update may be called concurrently.
type Scheduler interface {
	// Update replaces the backend set. State of backends that stay (round
	// robin position, weights' progress, hash buckets) is kept as far as
	// the algorithm allows: dh and sh map an unchanged set identically.
	Update(backends []Backend)
	// Pick returns the backend for c, skipping those usable() rejects
	// (e.g. ones that just refused, during a retry); ok is false when none
	// is left. active(b) is the number of connections open to b now
	// (lc, wlc, sed and nq read it; the caller keeps the counts).
	// usable nil means every backend is usable, active nil means none has
	// a connection. rr and wrr call usable with their lock held, so
	// neither callback may call back into the scheduler.
	Pick(c Conn, usable func(netip.AddrPort) bool, active func(netip.AddrPort) int) (b netip.AddrPort, ok bool)
}
