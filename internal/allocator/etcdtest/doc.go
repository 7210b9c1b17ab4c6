// Package etcdtest owns the test helper that starts a throwaway
// single-member etcd inside a test process (127.0.0.1, free ports, a
// t.TempDir() data directory), so packages that talk to etcd are tested
// against its real transaction and watch semantics instead of a fake. Only
// tests import it.
package etcdtest
