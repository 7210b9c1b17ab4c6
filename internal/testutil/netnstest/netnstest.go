package netnstest

import (
	"os"
	"testing"
)

// EnvIsolated is set to "1" in a process that runs inside a network
// namespace made for tests (by Main or by hack/in-netns.sh).
const EnvIsolated = "PORTAL_NETNS_ISOLATED"

// Isolated reports whether this process runs in a test network namespace.
func Isolated() bool { return os.Getenv(EnvIsolated) == "1" }

// Require skips t unless the test runs as root inside a test network
// namespace, the only place where it may create interfaces or send
// packets.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netnstest: needs root to create network namespaces (run go test as root)")
	}
	if !Isolated() {
		t.Skipf("netnstest: not inside an isolated network namespace (%s != 1); call netnstest.Main from TestMain or run under hack/in-netns.sh", EnvIsolated)
	}
}
