// Package pod owns the Pod resource and its subresources: status, binding
// (how the scheduler assigns a node), and log, exec and attach, which it
// serves by reaching the node agent of the pod's node (NodeConnection).
package pod
