package service

import (
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/portal-net/portal/internal/api/core"
)

// normalizeUpdate reads what an update means for the fields that depend on
// each other or on the type, the way Kubernetes does, before the stored
// values are kept (keepAllocated) and the result validated:
//
//   - clusterIP and clusterIPs: an old client that sends only clusterIP
//     keeps clusterIPs; clearing or changing clusterIP while leaving
//     clusterIPs as they were clears or follows them;
//   - a type change that leaves the fields the old type needed as they
//     were drops them: clusterIP(s), ipFamilies and ipFamilyPolicy when
//     moving to ExternalName, nodePorts when no longer NodePort or
//     LoadBalancer, healthCheckNodePort, allocateLoadBalancerNodePorts
//     and loadBalancerClass when no longer LoadBalancer, the traffic
//     policies when the service is no longer reachable that way.
//
// A field the user changed together with the type is left as written, so
// validation can refuse it.
func normalizeUpdate(svc, old *core.Service) {
	n, o := &svc.Spec.ServiceSpec, &old.Spec.ServiceSpec
	if len(o.ClusterIPs) > 0 && len(n.ClusterIPs) == 0 && n.ClusterIP == o.ClusterIP {
		n.ClusterIPs = slices.Clone(o.ClusterIPs)
	}
	if n.ClusterIP != o.ClusterIP && slices.Equal(n.ClusterIPs, o.ClusterIPs) {
		if n.ClusterIP == "" {
			n.ClusterIPs = nil
		} else {
			n.ClusterIPs = []string{n.ClusterIP}
		}
	}

	if needsClusterIP(o) && n.Type == corev1.ServiceTypeExternalName {
		if n.ClusterIP == o.ClusterIP && slices.Equal(n.ClusterIPs, o.ClusterIPs) {
			n.ClusterIP, n.ClusterIPs = "", nil
		}
		if slices.Equal(n.IPFamilies, o.IPFamilies) {
			n.IPFamilies = nil
		}
		if equalPtr(n.IPFamilyPolicy, o.IPFamilyPolicy) {
			n.IPFamilyPolicy = nil
		}
	}
	if needsNodePorts(o) && !needsNodePorts(n) && sameNodePorts(n, o) {
		for i := range n.Ports {
			n.Ports[i].NodePort = 0
		}
	}
	if needsHealthCheckPort(o) && !needsHealthCheckPort(n) && n.HealthCheckNodePort == o.HealthCheckNodePort {
		n.HealthCheckNodePort = 0
	}
	wasLB, isLB := o.Type == corev1.ServiceTypeLoadBalancer, n.Type == corev1.ServiceTypeLoadBalancer
	if wasLB && !isLB {
		if equalPtr(n.AllocateLoadBalancerNodePorts, o.AllocateLoadBalancerNodePorts) {
			n.AllocateLoadBalancerNodePorts = nil
		}
		if equalPtr(n.LoadBalancerClass, o.LoadBalancerClass) {
			n.LoadBalancerClass = nil
		}
	}
	if !externallyReachable(n) && externallyReachable(o) && n.ExternalTrafficPolicy == o.ExternalTrafficPolicy {
		n.ExternalTrafficPolicy = ""
	}
	if n.Type == corev1.ServiceTypeExternalName && o.Type != corev1.ServiceTypeExternalName && equalPtr(n.InternalTrafficPolicy, o.InternalTrafficPolicy) {
		n.InternalTrafficPolicy = nil
	}
}

// externallyReachable: the types (or external IPs) externalTrafficPolicy
// applies to.
func externallyReachable(s *corev1.ServiceSpec) bool {
	return s.Type == corev1.ServiceTypeNodePort || s.Type == corev1.ServiceTypeLoadBalancer || len(s.ExternalIPs) > 0
}

func sameNodePorts(n, o *corev1.ServiceSpec) bool {
	for _, p := range n.Ports {
		for _, op := range o.Ports {
			if p.Port == op.Port && p.Protocol == op.Protocol && p.NodePort != op.NodePort {
				return false
			}
		}
	}
	return true
}

func equalPtr[T comparable](a, b *T) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}
