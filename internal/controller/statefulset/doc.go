// Package statefulset owns the StatefulSet controller: it gives every
// ordinal of a set one pod with a stable name, hostname and DNS subdomain,
// creates and removes them in ordinal order (OrderedReady) or all at once
// (Parallel), rolls template changes from the highest ordinal down (honouring
// partition and maxUnavailable), records the template history as
// ControllerRevisions for kubectl rollout history/undo, and reports the
// status kubectl rollout status waits on.
//
// The pure core (Decide) computes the next actions from a set, its pods and
// its two revisions; Controller feeds it from shared informers and applies
// the actions through the API.
//
// PersistentVolumeClaims are not served by this cluster, so no claims are
// created: each volumeClaimTemplate becomes an emptyDir volume of the same
// name, so containers that mount it still start, without persistence.
package statefulset
