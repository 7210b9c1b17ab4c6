// Package speaker decides which node announces each LoadBalancer address
// on the node network and makes this node answer ARP (IPv4) / NDP (IPv6)
// for the addresses it won (issue 9).
//
// There is no election round and no lock in the API server: every agent
// computes the same answer from the same inputs. For an address, the
// candidates are the nodes that are live (package members: heartbeats
// between agents, so a dead node is out within about a second and the
// decision needs no control plane), not labelled
// node.kubernetes.io/exclude-from-external-load-balancers, and — for
// externalTrafficPolicy Local — hosting a ready endpoint of the service.
// The winner is the candidate with the lowest SHA-256 of "node\x00address"
// (rendezvous hashing): each address lands on an effectively random
// node, and a node joining or leaving moves only the addresses it wins
// or held. The winner announces with a burst of gratuitous ARP /
// unsolicited NA so clients switch at once, and records an
// AddressAnnounced event on the service.
package speaker
