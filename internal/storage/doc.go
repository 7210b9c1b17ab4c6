// Package storage owns the etcd that backs portal's API server: either an
// embedded single-member etcd whose data lives under <data-dir>/etcd and
// which listens on loopback only, or a connection to external etcd servers.
//
// Start returns a Backend with a ready etcd client, the values that fill
// k8s.io/apiserver's storagebackend transport config, a health check and an
// orderly Close. The embedded member keeps etcd's durability defaults (fsync
// on every commit): a write the API server acknowledged survives the process
// being killed.
//
// Embedded tuning, for one small node:
//
//   - backend quota 4 GiB (DefaultQuotaBackendBytes), so a runaway client
//     hits a NOSPACE alarm long before filling the disk;
//   - periodic auto-compaction keeping 5 minutes of history, the same
//     window the Kubernetes API server's own compactor uses, so history is
//     compacted even when another client writes outside the API server;
//   - a snapshot every 10000 applied entries, which bounds WAL replay time;
//   - no metrics listener, no gRPC gateway, no pprof; etcd logs at warn
//     level unless the caller passes a logger.
//
// storagetest starts throwaway embedded backends for other packages' tests.
package storage
