// Package daemonset owns the DaemonSet controller: one pod per node that
// should run it (node selector, required node affinity and taints judged by
// the scheduler's own predicates in package fit), pinned to its node with a
// metadata.name node-affinity term so that the scheduler binds it. It keeps
// ControllerRevisions of the pod template, labels pods with their revision
// hash, rolls them with RollingUpdate (maxUnavailable / maxSurge) or leaves
// them for OnDelete, replaces failed pods, removes pods from nodes that no
// longer qualify, and reports the status `kubectl rollout status ds` reads.
//
// Resource requests are not part of the decision: like upstream, a daemon
// pod that does not fit a node's free resources is created anyway and
// stays Pending in the scheduler until room appears.
package daemonset
