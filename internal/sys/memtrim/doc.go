// Package memtrim gives back memory that start-up needed and the steady
// state does not: the heap's garbage, and the mappings of the portal
// binary's read-only pages (its code, read-only data and tables).
//
// The one portal binary holds the API server, etcd, the controllers and
// kubectl; an agent runs a small part of it, but the package initialisers
// and start-up paths touch pages all over it, and the kernel maps
// them (sometimes as 2 MiB huge pages) until the process exits: about
// 65 MB of file pages in the RSS of `portal agent --proxy-only` at 10,000
// services. UnmapText maps those regions with normal pages from then on
// and unmaps what is mapped now; what the process uses again faults back
// in from the page cache, a page cache folio at a time (kernel 6.18 maps
// a whole folio per fault: large ones for a binary the linker has just
// written, so the file part after the trim was 56–60 MB from a fresh
// build and 19 MB from pages read back from disk). The page cache itself,
// shared with every other portal process, is not touched.
package memtrim

import (
	"runtime/debug"

	"k8s.io/klog/v2"
)

// ReleaseStartup hands back start-up garbage to the OS (the runtime would
// keep it for reuse up to its next GC goal) and unmaps the binary's pages
// (UnmapText). Call it after a start-up-like peak: initial lists decoded,
// a full sync written.
func ReleaseStartup() {
	debug.FreeOSMemory()
	if _, err := UnmapText(); err != nil {
		klog.V(2).InfoS("Could not unmap the binary's read-only pages", "err", err)
	}
}
