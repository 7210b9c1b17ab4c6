// Package controller is the parent of portal's in-process controllers. Each
// sub-package owns one controller, split into a pure reconcile core (desired
// state computed from informer snapshots, no I/O) and a thin loop that feeds
// it from shared informers through a rate-limited workqueue.
package controller
