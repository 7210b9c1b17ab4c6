// Package records owns the cluster's DNS data and the authoritative answers
// for the cluster zone. It is pure and in memory: informer handlers feed it
// Services, EndpointSlices, Pods and Namespaces, and Resolve turns one DNS
// question into the reply the server sends. It opens no sockets; EDNS0,
// truncation, forwarding and caching belong to package dns.
//
// The records follow the Kubernetes DNS-Based Service Discovery
// specification 1.1.0 and, where the specification is silent, the behaviour
// of CoreDNS's kubernetes plugin (with "pods insecure", as kubeadm
// configures it), so that the two answer the same questions the same way.
// The places where we deliberately differ from CoreDNS are listed on
// Resolve.
package records
