// Package l2 announces LoadBalancer addresses on a node's L2 segment,
// as MetalLB's L2 mode does: an Announcer owns one raw packet socket on
// one interface and, for every address it is told to announce, answers
// ARP requests (IPv4) and Neighbor Solicitations (IPv6) with the
// interface's MAC. On Announce it sends a short burst of gratuitous ARP
// (a broadcast request and reply) or unsolicited Neighbor Advertisements
// with the override flag, so neighbours move the address to this node at
// once: that burst is the takeover signal when another node held the
// address before. Which node announces which address is decided
// elsewhere (leader election); this package only does what it is told.
//
// The address is never added to the interface, so the kernel neither
// answers for it nor owns it. Packets for it arrive with the node's MAC
// and the kernel would route them on (or drop them without forwarding),
// so the node needs: the service proxy's nftables rules that DNAT the
// address's service ports in prerouting and drop or reject whatever else
// is sent to it (else it is forwarded by the node's routing table), and
// net.ipv4.ip_forward / net.ipv6.conf.all.forwarding for the DNATed
// traffic to pods. A local route for the address (ip route add local ...)
// is not needed and should be avoided: with the default arp_ignore=0 the
// kernel would then answer ARP for it itself, even after Withdraw.
//
// What neighbours need for a fast takeover: Linux updates an existing
// neighbour entry from a gratuitous ARP by default (arp_accept=0): the
// frame counts as an override, bypassing the 1 s locktime, as long as
// net.ipv4.conf.<if>.drop_gratuitous_arp is 0 (the tests check both).
// net.ipv4.conf.<if>.arp_accept (1, or 2 for same-subnet senders only) is
// needed only to create an entry from a gratuitous ARP where none
// existed, which a takeover does not need. For IPv6, an unsolicited NA with the override flag
// updates an existing entry by default (accept_untracked_na only matters
// for creating one). Routers and firewalls that ignore gratuitous ARP
// keep the old MAC until their entry goes stale and is re-probed — the
// old node then stays silent and the new one answers — which takes up to
// their reachable time plus a probe, typically tens of seconds.
//
// Withdraw and Close send nothing; a node that loses an address simply
// stops answering. Stats exposes counters per address.
package l2
