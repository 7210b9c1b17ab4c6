// Package fit owns the pure node-fit predicates and scores shared by the
// scheduler and the DaemonSet controller: whether a pod may run on a node
// (unschedulable, taints, node affinity/selector, host ports, resource
// requests) with kube-scheduler's reason strings, and how good a feasible
// node is. Nothing here does I/O; callers build NodeInfo snapshots from
// their informer caches.
package fit
