// Package server is the node agent's HTTPS API, the counterpart of the
// kubelet's :10250: container logs, exec and attach for the API server to
// proxy to. It authenticates callers by client certificate (chained to the
// cluster CA), authorizes them with a small predicate, and hands the work to
// a podruntime.Runtime.
package server
