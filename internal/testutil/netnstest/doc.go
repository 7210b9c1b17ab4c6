// Package netnstest keeps tests that create interfaces, namespaces or
// traffic off the host's real network. Main re-executes a test binary
// inside a fresh network (and mount) namespace that has only loopback, so
// nothing the tests do can leave the machine and every bind mount and
// interface disappears with the namespace. Require skips a test that needs
// that isolation when it is not available; NewNetns gives a test further
// named namespaces ("nodes", "clients") that are removed at cleanup.
package netnstest
