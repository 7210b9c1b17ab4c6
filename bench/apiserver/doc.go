// Command apiserver benchmarks portal's API server and prints each figure
// beside a baseline measured in the same run, because the machines it runs
// on are shared and noisy: start time to the first 200 on /readyz (cold and
// restart), idle and loaded RSS, `kubectl apply -f` of many services,
// create throughput with concurrent client-go workers, and mutating-request
// latency under concurrent clients.
//
// It starts `portal server` itself on free loopback ports with a temporary
// data dir; the server and the dir are removed at the end, also on error
// or Ctrl-C. Every load is bounded both in count and in time. Run it with
// `make bench`, which puts it in a fresh network namespace with only
// loopback.
//
// Upstream kube-apiserver is deliberately not built as a baseline here: it
// needs k8s.io/kubernetes with its staging replaces, which belongs in a
// separate tools module. Its published create throughput on this class of
// machine is printed as the reference instead.
package main
