// Package namespace owns the namespace controller: the second phase of
// namespace deletion. The API server marks a deleted namespace Terminating
// and keeps it while spec.finalizers holds "kubernetes"; this controller
// then deletes every namespaced object in it (found through discovery, so
// resources it has never heard of go too), reports progress in the
// namespace's status conditions as upstream does, waits until nothing is
// left, and removes its finalizer through namespaces/finalize, after which
// the API server removes the namespace.
package namespace
