// Package iptables is the iptables datapath of the service proxy. It turns
// a dataplane.State into chains of the nat and filter tables, written by
// iptables-restore --noflush (whichever iptables-restore is on PATH, or the
// one Options names), so nothing of the host's own rules is touched: every
// chain it owns starts with ChainPrefix, and each builtin chain it needs
// gets exactly one jump rule carrying JumpComment.
//
// Layout (nat):
//
//	PREROUTING, OUTPUT → PORTAL-SERVICES
//	  -d 0.0.0.K/0.0.0.255 → PORTAL-DST-K     one per last octet in use (≤ 256)
//	    -d VIP -p P --dport N → PORTAL-SVC-<h> (cluster) | PORTAL-EXT-<h> (externalIPs, LB IPs)
//	  -d <node IP> → PORTAL-NODEPORTS
//	    -p P --dport lo:hi → PORTAL-NP-P-K     NodePorts bucketed by port / 128
//	      -p P --dport N → PORTAL-EXT-<h>
//	PORTAL-SVC-<h>, PORTAL-EXT-<h>: mark 0x4000 where masquerade is due, then
//	  N DNAT rules, rule i matching with probability 1/(N-i)
//	POSTROUTING → PORTAL-POSTROUTING: marked → PORTAL-MASQ (clear mark,
//	  MASQUERADE); DNATed → PORTAL-HAIRPIN → PORTAL-HP-K (by source's last
//	  octet) → -s EP -d EP MASQUERADE, for the endpoints that may be on
//	  this node (not those the EndpointSlice places on another)
//
// so a new connection walks at most ~256 bucket rules plus one bucket
// (~40 rules at 10,000 services) instead of one rule per service, and a
// change rewrites only the changed service port's chains and its buckets.
//
// Filter (new connections only; INPUT, FORWARD, OUTPUT → PORTAL-FILTER):
// loadBalancerSourceRanges are checked against the connection's original
// destination (conntrack), after DNAT; a service port without endpoints is
// rejected (TCP reset, ICMP port unreachable) or dropped (ClusterDrop,
// ExternalDrop) in PORTAL-FDST-K / PORTAL-FNODEPORTS; anything else to the
// service CIDRs is rejected.
//
// Session affinity (ClientIP) gives the service port one PORTAL-SEP-<h>
// chain per endpoint whose DNAT rule records the client in an xt_recent
// list of the same name; the service chain first sends a client seen
// within the timeout to its endpoint's chain. A removed endpoint's rule
// and list go away, so its clients move at once. xt_recent keeps at most
// ip_list_tot (default 100) clients per list, as in kube-proxy.
//
// Sync writes one iptables-restore input per sync: the first Sync, any
// Sync after a failure and every FullSync declare (flush) and rewrite
// every chain of ours and delete stale ones; other syncs rewrite only the
// chains that changed. A change of the node-wide inputs (service CIDRs,
// pod CIDR, node IPs) is a full sync. Each table is its own COMMIT:
// filter is written first, so a reject is in place before the DNAT it
// replaces goes. No sync reads whole tables back: the first full sync of
// a Backend lists the names of our chains (over netlink with
// iptables-nft, 0.25 s at 10,000 services where iptables-save took 5.3 s;
// iptables-save with the legacy backend) to delete those of an earlier
// run, later ones know the chains they wrote, and each reads the builtin
// chains for the jumps.
//
// Between syncs the Backend keeps, per service port, its ServicePort and
// the names of its own chains, not their rules: the DNAT, affinity and
// hairpin rules (~100,000 strings, ~40 MB at 10,000 × 10) are rendered
// again when a chain is written, and the old form of a changed chain
// from the ServicePort it had. Only the bucket and top chains' rules are
// kept as text.
//
// Cost with iptables-nft 1.8.9 at 10,000 service ports × 10 endpoints
// (~200,000 rules, ~10,800 chains): iptables-nft finds a rule's chain by
// walking its name-sorted chain list, so the restore input declares
// chains in descending name order, each followed by its rules (3× less
// userspace time on a first sync; nothing helps once the chains exist
// already). Every commit to the nat table makes the kernel validate all
// rules reachable from its base chains (nft_table_validate), which puts
// a floor of ~0.1–0.2 s under any delta at that size.
package iptables

// ChainPrefix starts the name of every chain (and xt_recent list) this
// package owns, in the nat and filter tables.
const ChainPrefix = "PORTAL-"

// JumpComment is the comment of the jump rules this package puts in the
// builtin chains (PREROUTING, OUTPUT, POSTROUTING in nat; INPUT, FORWARD,
// OUTPUT in filter).
const JumpComment = "portal service proxy"
