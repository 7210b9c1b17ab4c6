// Package allocator owns the allocation of Service ClusterIPs, NodePorts and
// healthCheckNodePorts.
//
// Every allocation is one etcd key created with a create-if-absent
// transaction, so any number of API servers sharing one etcd can allocate
// concurrently without handing out a value twice: etcd, not a local lock,
// decides who wins. ClusterIPs are stored as networking.k8s.io/v1 IPAddress
// objects under <prefix>/networking.k8s.io/ipaddresses/<ip> (the key the API server's storage factory gives group/resource), exactly where and how the API
// server's own storage keeps that resource, so the read-only ipaddresses
// endpoint shows the allocator's state. NodePorts live under
// <prefix>/portal.dev/nodeports/<port>.
//
// The package is layered:
//   - pure cores (IPRange, PortRange, band selection, planRepair) with no I/O;
//   - Store, a five-method view of etcd (EtcdStore) with an in-memory fake
//     (MemStore) that keeps the same transactional and watch semantics;
//   - ClusterIPAllocator and PortAllocator, which keep a local set of taken
//     offsets (fed by a watch) so random picks do not list etcd each time;
//   - Allocators.Begin returning a Reservation that the Service REST layer
//     commits or reverts, and Allocators.Repair, which reconciles allocations
//     with the stored Services after a crash.
//
// The local set is only a hint: a stale set costs a retry, never a
// duplicate, because the etcd transaction is the single source of truth.
package allocator
