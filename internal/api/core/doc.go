// Package core holds the few core/v1 types that portal serves with a different
// Go shape than k8s.io/api: the Service, whose spec keeps the seed's
// spec.topologyKeys (removed upstream in Kubernetes 1.22).
//
// The wire format stays core/v1: JSON is the v1 JSON plus the optional
// "topologyKeys" array inside spec, and protobuf is the v1 message plus the
// historical field 16 of ServiceSpec, so clients built on k8s.io/api read
// these objects unchanged (they simply ignore the extra field).
package core
