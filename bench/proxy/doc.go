// Command bench-proxy measures portal's service proxy (`portal agent
// --proxy-only`) beside upstream kube-proxy in the same run, against the
// same API data: rule programming at N services (first full sync, one more
// service until a packet gets through, memory), requests/s through a
// ClusterIP against the endpoint directly, and connect latency through a
// ClusterIP as the number of services grows. It runs inside the network
// namespace hack/bench.sh makes, builds a small lab there (a dummy
// interface and a backend namespace behind a veth) and removes everything
// it made on every exit path. See bench/README.md.
package main
