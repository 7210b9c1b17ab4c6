// Package registry turns a short description of a resource (Kind) into the
// k8s.io/apiserver generic registry storage that serves it: strategy
// (status handling, generation, validation hooks, warnings), field
// selectors, table output, short names and categories, status and scale
// subresources. Resource-specific behaviour lives in the functions a Kind
// carries and in the subpackages (service allocation, pod binding).
package registry
