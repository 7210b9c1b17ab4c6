// Command agent benchmarks portal's node agent and pod runtime: one
// `portal server` (controllers enabled) and one `portal agent` process on
// loopback, with temporary root and run dirs, measuring
//
//   - pod create → Running and → Ready latency (p50/p99), beside the floor
//     of exec'ing the same server (`portal-shim agnhost netexec`) directly
//     and polling it until /healthz answers;
//   - memory per pod with -pods pods running (supervisor, container and
//     agent shares), beside one bare agnhost netexec process;
//   - wall time to create -pods pods until all are Running and to delete
//     them until all are gone from the API, beside starting and stopping
//     as many bare processes;
//   - leaks after -cycles create/delete cycles: network namespaces, veths,
//     IPAM records, pod directories, processes and mounts, which must all
//     be 0, and the cycles per second.
//
// Every load is bounded in count and time; pods are deleted through the
// API before the agent stops, and whatever a failure left behind is killed
// and unmounted before the temporary dir goes. hack/bench.sh runs it in
// fresh network, mount and PID namespaces, so nothing outlives it.
package main
