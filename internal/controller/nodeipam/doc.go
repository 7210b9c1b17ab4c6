// Package nodeipam owns the node IPAM controller: it gives every Node a pod
// CIDR (spec.podCIDR and spec.podCIDRs, one per cluster CIDR family) carved
// from the cluster CIDR, never handing the same block to two nodes. The pure
// core is CIDRSet, a bitmap over the node-sized blocks of one cluster CIDR;
// Controller feeds it from the node informer, first marking the blocks
// existing nodes already hold so a restart never reshuffles them.
package nodeipam
