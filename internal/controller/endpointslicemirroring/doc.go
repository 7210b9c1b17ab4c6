// Package endpointslicemirroring owns the EndpointSlice mirroring
// controller: hand-written Endpoints of a selector-less Service are copied
// into EndpointSlices (managed-by endpointslicemirroring-controller.k8s.io)
// so that slice consumers such as kube-proxy see them. Endpoints labelled
// skip-mirror (those written by the Endpoints controller) and slices managed
// by anyone else are left alone. Reconcile is the pure core; Controller is
// the informer-driven loop around it.
package endpointslicemirroring
