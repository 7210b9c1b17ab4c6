// Package endpointslice owns the EndpointSlice controller: for every Service
// with a selector (ExternalName excluded) it keeps EndpointSlices listing the
// selected pods, grouped by resolved port set and capped per slice. The pure
// core (Reconcile) computes a minimal create/update/delete plan; Controller
// feeds it from shared informers and applies the plan through the API.
package endpointslice
