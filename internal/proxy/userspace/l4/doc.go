// Package l4 is the forwarding engine of the userspace proxy mode: for one
// service port it accepts TCP connections (TCPProxy) or UDP datagrams
// (UDPProxy) on a socket the caller hands over, asks a sched.Scheduler for
// a backend, connects to it and relays bytes until either side ends.
//
// What it owns: connecting with a bounded number of attempts to different
// backends (a client sees no error while any backend works), a short
// back-off for backends that keep failing, ClientIP session affinity,
// per-backend active/total/failure counts (the active count also feeds
// least-connection schedulers), graceful backend removal, UDP sessions with
// idle expiry and a cap. What it does not own: choosing the proxy port, the
// nftables rules that redirect service traffic to it, and recovering the
// original destination (the caller passes a function for that).
//
// TCP bytes are relayed with (*net.TCPConn).ReadFrom from another
// *net.TCPConn, which Go's net package implements with splice(2) on Linux,
// so payload does not cross into user space.
package l4
