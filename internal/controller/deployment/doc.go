// Package deployment owns the Deployment controller: for every Deployment it
// keeps one ReplicaSet per distinct pod template (named
// "<deployment>-<decimal template hash>"), moves replicas from old
// ReplicaSets to the new one according to the RollingUpdate or Recreate
// strategy, scales all of them proportionally when spec.replicas changes
// mid-rollout, records revisions in annotations (which `kubectl rollout
// history/undo` read), prunes old ReplicaSets beyond revisionHistoryLimit and
// reports status and the Available/Progressing conditions that `kubectl
// rollout status` reads.
//
// Pods are not its business: it only sizes ReplicaSets and reads their
// status (availability is what the ReplicaSet controller reports). The
// arithmetic of a rollout step (plan.go) and the status calculation
// (status.go) are pure functions; controller.go, replicasets.go and
// rollout.go feed them from informers and write the results through the API.
package deployment
