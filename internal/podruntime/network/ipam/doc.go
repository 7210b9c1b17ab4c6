// Package ipam owns host-local IP address management for a node's pod
// CIDR: which pod (by id) holds which address. The state lives in a
// directory so that it survives a restart of the agent and is shared by
// every process that opens the same directory: one file per allocated
// address (named after the address, holding the owner's id), the last
// address handed out (allocation continues round-robin after it, so an
// address just released is not reused at once), the CIDR the directory
// belongs to, and a lock file taken with flock around every operation.
package ipam
