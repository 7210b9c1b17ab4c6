// Package portalproc runs portal roles as child processes for the
// benchmarks under bench/ and the tests under test/: start with readiness timing, stop on every exit
// path, and read their RSS and CPU time from /proc.
package portalproc
