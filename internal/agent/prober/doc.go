// Package prober runs the container probes of the node agent: one worker
// goroutine per (container attempt, probe kind) that executes the probe's
// handler (httpGet, tcpSocket, exec, grpc) every periodSeconds and folds the
// outcomes through successThreshold/failureThreshold into results.
//
// It owns the probe results only: readiness and started flags that the agent
// copies into ContainerStatus, and liveness/startup failures the agent answers
// by restarting the container. It records "Unhealthy" warning events like the
// kubelet does and reports every result change on Manager.Updates.
package prober
