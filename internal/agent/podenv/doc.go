// Package podenv computes what a pod's containers see of their environment
// before the runtime starts them: the service link variables, the resolved
// container environment (envFrom, env, downward API, ConfigMap and Secret
// references, $(VAR) expansion), the resolv.conf built from the pod's DNS
// policy, the pod hostname and FQDN, and the kubelet-managed /etc/hosts.
//
// Everything here is a pure function of its inputs: the agent fetches the
// services, ConfigMaps, Secrets and host files and writes the results to disk.
// The behaviour follows the kubelet's, so that workloads moved from a
// Kubernetes node see the same variables and files.
package podenv
