// Package shim is the per-pod supervisor. One shim process runs per pod,
// as PID 1 of the pod's PID namespace and inside its network and UTS
// namespaces. It starts the containers (each through a re-exec of the shim
// binary as "init", which builds the container's mount namespace), reaps
// every process of the pod, writes container output to CRI-format log
// files and keeps the pod's state in state.json. The agent drives it over
// an HTTP/JSON API on a unix socket (Client) and never holds a pipe to
// it, so pods keep running while the agent is down or restarting.
//
// Files in a pod directory: shim.sock, shim.log, state.json, resolv.conf,
// hosts, hostname and containers/<name>/<attempt>.log.
package shim
