// Package agnhost is the built-in stand-in for Kubernetes' agnhost test
// image: the same subcommands, flags, endpoints and log lines for the
// parts conformance and e2e tests use (netexec, serve-hostname, pause,
// liveness, porter), as a function the shim binary dispatches to.
//
// Differences from upstream: netexec's /shell answers 403 unless the pod
// opts in with --enable-shell or AGNHOST_ENABLE_SHELL=1 (the container is
// a host process, so the shell would be the host's); /upload and SCTP are
// not supported (--sctp-port is logged and ignored); pause exits 0 on
// SIGTERM/SIGINT (upstream exits 2/1).
package agnhost
