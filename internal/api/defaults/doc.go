// Package defaults fills in the values the Kubernetes API server would set on
// k8s.io/api v1 objects before they are validated and stored.
//
// portal serves the v1 structs directly (there is no internal hub version), so
// the defaulting that upstream performs during conversion, plus the few
// admission and registry steps whose results users see on every object (pod
// tolerations and priority, service clusterIPs/ipFamilies), is re-implemented
// here as pure, idempotent functions that mutate their argument in place.
//
// The package owns defaulting only: allocation of IPs and ports, and any
// checking of user input, live elsewhere (see package validation).
package defaults
