// Package compat holds the differential test of portal's cluster DNS
// against CoreDNS's kubernetes plugin (issue 7): the same cluster state,
// the same questions to both servers, every difference reported unless it
// is a documented, deliberate deviation (allowlist_test.go).
//
// It runs only with binaries: `make test-compat`, or
//
//	go test ./test/compat -portal /path/to/portal -coredns /path/to/coredns
package compat
