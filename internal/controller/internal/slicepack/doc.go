// Package slicepack owns the pure packing of desired endpoints into
// EndpointSlices, shared by the EndpointSlice and mirroring controllers. It
// turns "these endpoints, grouped by port set" plus "the slices that exist"
// into the smallest create/update/delete plan: slices whose contents did not
// change are never rewritten, endpoints stay in the slice they already live
// in, and new endpoints first fill slices that are being rewritten anyway.
package slicepack
