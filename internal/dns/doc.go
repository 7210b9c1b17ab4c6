// Package dns is the transport of the cluster DNS server: it listens on UDP
// and TCP, applies EDNS0 and truncation rules, and decides who answers a
// question. Names of the cluster zone (and reverse names the Resolver owns)
// are answered by a Resolver (records.Cluster in production); every other
// name is forwarded to the node's upstream resolvers through a bounded
// cache. Two CoreDNS behaviours live here because they straddle both
// worlds: ExternalName CNAMEs are chased through the forwarder, and
// autopath answers the first search-path query of a pod with the final
// answer.
//
// The package never builds cluster records itself; see internal/dns/records.
//
// # Forwarding
//
// Upstreams are asked in order (UDP, then TCP when the answer is
// truncated), failing over on timeout, network error, SERVFAIL or REFUSED,
// within 2 s for the whole question; an upstream that timed out or was
// unreachable is asked last for the next 10 s. Concurrent misses for one
// question share one upstream exchange. Answers are cached by lower-cased
// name, type, class, DO and CD bits; SERVFAILs are not cached. Names of the
// cluster zone are never forwarded.
//
// # Serving
//
// Start binds and returns once the server answers (Addrs gives the bound
// ports); Wait returns after the context ended and the sockets closed;
// ListenAndServe is both.
//
// UDP on a specific address is read by our own loop, one per CPU on
// SO_REUSEPORT sockets, up to 32 datagrams per recvmmsg. An answer that
// came from the Resolver alone (no upstream, no autopath, no client
// address involved) is kept packed, keyed by the query's bytes after its
// ID, and valid while Resolver.Generation is unchanged: a repeated
// question is answered inline by copying it and setting the ID, a batch
// per sendmmsg, without unpacking or allocating. Everything else (and
// every first question) is answered by the full handler in a goroutine of
// its own. TCP, and UDP on a wildcard address (which needs per-packet
// control messages to answer from the right address), go through
// miekg/dns's server.
//
// # Metrics
//
// Registered on Config.Registry when set, named as CoreDNS names them so
// its dashboards apply. Label sets are kept small:
//
//	coredns_dns_requests_total{server,zone,proto,family,type}
//	coredns_dns_responses_total{server,zone,rcode,plugin}
//	coredns_dns_request_duration_seconds{server,zone,type}   (histogram)
//	coredns_cache_hits_total{server,type}                    type: success|denial
//	coredns_cache_misses_total{server}
//	coredns_cache_entries                                    (gauge)
//	coredns_forward_requests_total{to}
//	coredns_forward_responses_total{to,rcode}               rcode "error": timeout, network error
//	coredns_autopath_success_count_total{server}
//
// server is "dns://<listen address>"; zone is the cluster zone (with a
// trailing dot) for names in it and "." for everything else; type is one of
// a fixed set of common query types or "other"; plugin names who wrote the
// answer: "kubernetes" (the Resolver), "forward", "cache", "autopath", or ""
// for errors the transport answers itself (FORMERR, NOTIMP, ...).
//
// # Autopath
//
// A ClusterFirst pod's resolv.conf is
//
//	search <ns>.svc.<zone> svc.<zone> <zone> <node search domains...>
//	options ndots:5
//
// so a lookup of "example.com" is first asked as
// "example.com.<ns>.svc.<zone>", and only after three or more NXDOMAINs as
// "example.com.". With Config.Autopath, when such a first query comes from
// a client whose namespace Resolver.PodNamespace knows, ends in
// ".<that ns>.svc.<zone>", and does not exist, the server walks the rest of
// the search list itself (svc.<zone>, <zone>, the node's search domains
// from ResolvConf, then the bare name) and answers with the first candidate
// that is not NXDOMAIN: a CNAME from the asked name to the found name,
// followed by the found records. Any failure (SERVFAIL, timeout) on the way
// returns the original NXDOMAIN, so the client falls back to its own search.
//
// It is exactly as safe as PodNamespace is precise: it must only map IPs of
// pods whose resolv.conf really is the ClusterFirst one above, i.e.
// dnsPolicy ClusterFirst (or ClusterFirstWithHostNet) without
// spec.dnsConfig.searches, and never hostNetwork pods (their IP is the
// node's, shared with every other hostNetwork pod). A pod with extra search
// domains would otherwise see the bare name win over its own domains. The
// remaining visible difference is that a deliberate absolute query for a
// missing name in the pod's own namespace ("nosuch.<ns>.svc.<zone>.") gets
// the search result instead of NXDOMAIN. Because of that change of meaning
// the default (Config.Autopath false) keeps it off, as CoreDNS does.
package dns
