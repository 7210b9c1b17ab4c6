// Package portalproc runs portal roles as child processes for the
// benchmarks under bench/: start with readiness timing, stop on every exit
// path, and read their RSS and CPU time from /proc.
package portalproc
