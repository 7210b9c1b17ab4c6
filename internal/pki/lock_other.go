//go:build !unix

package pki

// lockDir is a no-op where flock is unavailable; atomic renames still keep
// every file whole.
func lockDir(string) (func(), error) { return func() {}, nil }
