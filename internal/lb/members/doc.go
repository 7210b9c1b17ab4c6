// Package members tells a node agent, within a second or so, which nodes
// are alive and able to announce LoadBalancer addresses, so that the
// node announcing an address (ARP/NDP, see package l2) can be replaced
// quickly when it dies. It owns one UDP socket on the node's own address
// and the heartbeats exchanged over it; it owns neither the peer list
// (the caller feeds it from Node objects through SetPeers) nor the
// decision which node announces what (the caller derives that from
// Live, e.g. by ranking the live nodes per address, and re-derives it on
// every Changes signal).
//
// It deliberately does not use the API server: LoadBalancer traffic
// keeps flowing while the control plane is down, and a failover must
// still happen then. Every agent sends a heartbeat to every peer each
// Interval; a peer is live while its last heartbeat is younger than
// DeadAfter and said it was ready. Expiry runs on a timer set to the
// next deadline, so a crashed node is noticed DeadAfter after its last
// packet (1 s by default) regardless of other traffic. A node that stops
// cleanly sends a final "leaving" heartbeat, and peers drop it at once.
//
// Self counts as live only after SetReady(true) and a warm-up of
// DeadAfter from the start of Run: by then every live peer has been
// heard, so a restarted node does not grab addresses from nodes it does
// not know about yet. Heartbeats carry the sender's own liveness as the
// ready flag, so a warming-up or unready node is not counted by its
// peers either, and every node converges on the same live set.
//
// A heartbeat is accepted only from a known peer name whose configured
// address and the member port match the packet's source; anything else
// is dropped and counted in Stats. With Config.Key set, packets also
// carry an HMAC-SHA256 and unauthenticated ones are dropped. Each
// process has an incarnation (its start time in nanoseconds) and numbers
// its packets; a packet not newer than the last one accepted from that
// peer is ignored as stale. A lower incarnation is accepted only after
// the peer has expired, so an agent restarted with a clock that went
// back is taken back after DeadAfter. The same rule means that with a
// key, an attacker who recorded an expired peer's packets could replay
// them; the key guards against misdirected and forged traffic, not
// against an attacker on the node network, who could also answer ARP
// directly.
//
// Every member must use the same Port, Key and address family (Bind and
// the peer addresses both IPv4 or both IPv6). Interval and DeadAfter
// should match too, or the faster nodes expire the slower ones.
//
// # Packet format (version 1)
//
// All integers are big-endian. The packet is exactly as long as the
// fields below; anything else is malformed.
//
//	offset  size  field
//	0       4     magic "PMHB"
//	4       1     version, 1
//	5       1     flags: 0x01 ready, 0x02 leaving, 0x04 MAC present;
//	              other bits must be zero; ready and leaving exclude
//	              each other
//	6       8     incarnation of the sending process
//	14      8     sequence number, increasing within an incarnation
//	22      1     length n of the sender's node name, 1-255
//	23      n     node name
//	23+n    32    HMAC-SHA256(key, bytes 0 to 23+n), when flag 0x04
package members
