//go:build !unix

package ipam

import "os"

// Other platforms get no cross-process lock; the mutex still orders the
// goroutines of one process.
func flock(*os.File) error { return nil }
func funlock(*os.File)     {}
