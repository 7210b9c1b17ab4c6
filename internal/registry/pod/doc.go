// Package pod owns the Pod resource and its subresources: status, binding
// (how the scheduler assigns a node) and log.
package pod
