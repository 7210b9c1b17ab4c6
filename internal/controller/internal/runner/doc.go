// Package runner owns the plumbing shared by portal's controller loops: the
// rate-limited workqueue worker pool, informer event helpers, and a tracker
// that keeps a controller from acting on an informer cache that has not yet
// observed its own writes (which would otherwise create duplicate slices).
package runner
