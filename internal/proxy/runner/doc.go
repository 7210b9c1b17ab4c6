// Package runner drives a service proxy datapath from the API: client-go
// informers of Services, EndpointSlices and Nodes feed the proxy model's
// change tracker; a sync loop (rate-limited by MinSyncPeriod, full every
// SyncPeriod) selects endpoints for this node, hands the datapath the
// desired state and clears stale UDP/SCTP conntrack entries afterwards.
package runner
