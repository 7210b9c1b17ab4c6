// Package podstatus computes the pod-level parts of a pod's status from the
// container statuses the agent observed: phase, the kubelet-owned conditions
// (PodReadyToStartContainers, Initialized, ContainersReady, Ready,
// PodScheduled) with stable transition times, IPs, start time and QoS class.
// It also holds the restart decisions (restartPolicy, container-level
// policies and rules, sidecars) and the crash-loop back-off.
//
// The computation is pure: the caller passes the previous status in the pod
// and the current time, and writes the result back through the API.
package podstatus
