// Command bench-lb measures the failover of a LoadBalancer address
// announced in L2 mode (issue 9): three `portal agent` nodes and an
// outside client on one bridge, pods only on node-2 and node-3, and an
// address node-1 announces. Each round takes node-1's link down while the
// client sends a bounded stream of requests, and measures the time until
// traffic flows again, the failed requests, the new announcer's takeover
// time from its log, and the failback when the link comes up. In the same
// run it measures the baseline: hashicorp/memberlist, configured as
// MetalLB's speaker configures it (bench/tools/memberlist), detecting the
// same node loss — a lower bound for MetalLB's failover. It runs inside
// the namespaces hack/bench.sh makes and removes everything it made on
// every exit path. See bench/README.md.
package main
