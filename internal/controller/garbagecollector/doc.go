// Package garbagecollector owns portal's garbage collector: it watches the
// metadata of every listable, watchable, deletable resource, keeps a graph of
// ownerReferences keyed by UID, and deletes dependents whose owners are gone
// (background), deletes dependents before their owner (foreground, the
// foregroundDeletion finalizer) or strips ownerReferences from dependents
// before their owner goes (the orphan finalizer).
//
// The graph (graph.go) and the decisions taken from it (decide.go) do no I/O;
// controller.go confirms every absence with a live GET before acting, because
// the graph only ever lags the API and must never be the sole reason to
// delete something.
package garbagecollector
