// Package history owns the ControllerRevision bookkeeping shared by workload
// controllers that keep a template history (StatefulSet, DaemonSet): hashing
// a revision's data into a stable name, creating revisions with hash
// collision handling, finding the revisions a parent controls, and choosing
// which old revisions to prune. It knows nothing about what the data means;
// each controller decides what it stores.
package history
