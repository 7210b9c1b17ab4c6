//go:build !linux

package netnstest

import "testing"

// Main runs the tests; without Linux network namespaces the tests that
// need isolation skip through Require.
func Main(m *testing.M) { m.Run() }

// NewNetns skips: there are no network namespaces on this platform.
func NewNetns(t testing.TB, name string) string {
	t.Helper()
	t.Skip("netnstest: network namespaces need linux")
	return ""
}
