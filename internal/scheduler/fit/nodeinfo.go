package fit

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
)

// Defaults kube-scheduler assumes for containers without requests when it
// scores (never when it filters), so that request-less pods still spread
// instead of piling onto one "empty" node.
var (
	DefaultMilliCPURequest int64 = 100               // 0.1 core
	DefaultMemoryRequest   int64 = 200 * 1024 * 1024 // 200 MiB
)

// NodeInfo is a node together with the pods that occupy it: bound pods seen
// in the cache and pods the scheduler has bound but not yet seen back.
type NodeInfo struct {
	Node *v1.Node
	Pods []*v1.Pod
	// Requested sums the pods' requests (what filtering compares).
	Requested v1.ResourceList
	// NonZeroCPU (millicores) and NonZeroMemory (bytes) sum requests with
	// the scoring defaults filled in.
	NonZeroCPU    int64
	NonZeroMemory int64
	usedPorts     []hostPort
}

type hostPort struct {
	ip       string
	protocol v1.Protocol
	port     int32
}

// NewNodeInfo returns node occupied by pods.
func NewNodeInfo(node *v1.Node, pods ...*v1.Pod) *NodeInfo {
	n := &NodeInfo{Node: node, Requested: v1.ResourceList{}}
	for _, p := range pods {
		n.AddPod(p)
	}
	return n
}

// AddPod accounts pod on the node.
func (n *NodeInfo) AddPod(pod *v1.Pod) {
	n.Pods = append(n.Pods, pod)
	for name, q := range PodRequests(pod) {
		sum := n.Requested[name]
		sum.Add(q)
		n.Requested[name] = sum
	}
	cpu, mem := nonZeroRequests(pod)
	n.NonZeroCPU += cpu
	n.NonZeroMemory += mem
	n.usedPorts = append(n.usedPorts, podHostPorts(pod)...)
}

// PodRequests is the pod's effective request: containers, init containers
// (as kubelet admits them) and overhead.
func PodRequests(pod *v1.Pod) v1.ResourceList {
	return resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
}

func nonZeroRequests(pod *v1.Pod) (milliCPU, memory int64) {
	reqs := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{
		NonMissingContainerRequests: v1.ResourceList{
			v1.ResourceCPU:    *resource.NewMilliQuantity(DefaultMilliCPURequest, resource.DecimalSI),
			v1.ResourceMemory: *resource.NewQuantity(DefaultMemoryRequest, resource.BinarySI),
		},
	})
	return reqs.Cpu().MilliValue(), reqs.Memory().Value()
}

// HasHostPorts reports whether pod asks for a host port.
func HasHostPorts(pod *v1.Pod) bool { return len(podHostPorts(pod)) > 0 }

// HostPortsConflict reports whether pods a and b ask for host ports that
// cannot both be bound on one node (the kubelet's admission asks this of
// a pod placed on the node past the scheduler).
func HostPortsConflict(a, b *v1.Pod) bool {
	for _, x := range podHostPorts(a) {
		for _, y := range podHostPorts(b) {
			if x.conflicts(y) {
				return true
			}
		}
	}
	return false
}

func podHostPorts(pod *v1.Pod) []hostPort {
	var out []hostPort
	add := func(cs []v1.Container) {
		for _, c := range cs {
			for _, p := range c.Ports {
				if p.HostPort <= 0 {
					continue
				}
				proto := p.Protocol
				if proto == "" {
					proto = v1.ProtocolTCP
				}
				ip := p.HostIP
				if ip == "" {
					ip = "0.0.0.0"
				}
				out = append(out, hostPort{ip: ip, protocol: proto, port: p.HostPort})
			}
		}
	}
	add(pod.Spec.InitContainers)
	add(pod.Spec.Containers)
	return out
}

// conflicts reports whether two host ports cannot both be bound: same port
// and protocol, and the same address or a wildcard on either side.
func (a hostPort) conflicts(b hostPort) bool {
	if a.port != b.port || a.protocol != b.protocol {
		return false
	}
	return a.ip == b.ip || a.ip == "0.0.0.0" || b.ip == "0.0.0.0" || a.ip == "::" || b.ip == "::"
}
