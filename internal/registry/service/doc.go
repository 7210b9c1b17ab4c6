// Package service owns the Service resource: its Kind (defaulting,
// validation, topologyKeys warnings) and the allocation of ClusterIPs,
// NodePorts and healthCheckNodePorts, which happens atomically with the
// create or update that needs them and is released on delete and type
// change.
package service
