// Package replicaset owns the ReplicaSet (apps/v1) and ReplicationController
// (core/v1) controllers: keeping spec.replicas active pods per owner, adopting
// matching orphans, releasing pods that stopped matching, and reporting
// replica counts and the ReplicaFailure condition in the owner's status.
//
// Both kinds share one core; a small adapter (owner.go) hides the two
// differences that matter: the selector (a LabelSelector for ReplicaSets, a
// label map for ReplicationControllers) and the typed client calls.
package replicaset
