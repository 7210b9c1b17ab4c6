// Package validation checks k8s.io/api v1 objects the way the Kubernetes
// 1.37 API server does, returning field.ErrorLists whose paths, types and
// messages match upstream so that clients (kubectl, controllers, tests that
// parse error text) see the same 422 responses.
//
// portal stores v1 structs directly, so these validators run on v1 types
// after package defaults has been applied; like upstream, they assume
// defaulting (and, for Services, IP/port allocation) already happened.
// Range checks that upstream performs in its allocators (clusterIP inside
// the service CIDR, nodePort inside the node-port range) are done here from
// ServiceOptions so that a request is rejected before anything is allocated.
package validation
