// Package apitest starts a real portal API server (embedded etcd on free
// loopback ports, temporary data dir) inside a test, so controller and
// scheduler tests run against the same validation, defaulting, finalizers and
// watch semantics that production code sees.
package apitest
