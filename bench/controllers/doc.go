// Command controllers benchmarks portal's controller manager, run as its
// own process (`portal controller-manager`) against `portal server
// --disable-controllers`, so its CPU and memory are its own:
//
//   - pod Ready → EndpointSlice updated latency (p50/p99), beside the API's
//     own watch latency for the same pod update (the floor any informer-based
//     controller sits on), at small state and again with the full load;
//   - CPU and RSS of the controllers with -services services × -pods pods
//     each (10,000 × 10 by default), beside the API server's in the same run;
//   - the time a restarted controller manager needs to resync all of that
//     (informers listed, every service synced once, queues empty) and how
//     many objects it rewrote doing so, beside the time to merely LIST the
//     same objects from the API.
//
// Everything runs on loopback on free ports with a temporary data dir;
// every load is bounded in count and time, and both children are stopped
// and the dir removed at the end, also on error or Ctrl-C. Run it with
// `make bench`, which puts it in a fresh network namespace.
package main
