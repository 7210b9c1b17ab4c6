package proxy

import (
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// Annotations of the userspace proxy mode; the kernel modes ignore them.
const (
	// AnnotationScheduler picks a service's scheduler (rr, wrr, lc, wlc,
	// dh, sh, sed, nq, random), overriding the agent's --scheduler.
	AnnotationScheduler = "portal.dev/scheduler"
	// AnnotationWeights gives pods of the service weights for wrr, wlc,
	// sed, nq, dh and sh: "pod-a=3,pod-b=0" (0: no new connections);
	// pods not named weigh 1.
	AnnotationWeights = "portal.dev/weights"
)

// ParseWeights reads AnnotationWeights: comma-separated pod=weight pairs,
// weights 0 to 65535.
func ParseWeights(s string) (map[string]int, error) {
	out := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		pod, w, ok := strings.Cut(part, "=")
		pod = strings.TrimSpace(pod)
		if !ok || pod == "" {
			return nil, fmt.Errorf("%q: want pod=weight", part)
		}
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 0 || n > 65535 {
			return nil, fmt.Errorf("%q: weight must be 0 to 65535", part)
		}
		out[pod] = n
	}
	return out, nil
}

// Annotations that turn on EndpointSlice hints (kube-proxy's names).
const (
	AnnotationTopologyMode      = "service.kubernetes.io/topology-mode"
	AnnotationTopologyAwareHint = "service.kubernetes.io/topology-aware-hints"
	// LabelServiceProxyName marks a service handled by another proxy;
	// kube-proxy (and so this package) ignores such services.
	LabelServiceProxyName = "service.kubernetes.io/service-proxy-name"
)

// ServicePorts returns the proxied ports of svc, or nil when the service is
// not proxied: headless (clusterIP None), ExternalName, without a cluster IP,
// or owned by another proxy. Ports whose protocol is not TCP, UDP or SCTP
// are skipped. topologyKeys is the service's legacy spec.topologyKeys (the
// field is not in k8s.io/api, so the caller extracts it).
func ServicePorts(svc *v1.Service, topologyKeys []string) ServicePortMap {
	if svc == nil || svc.Spec.Type == v1.ServiceTypeExternalName {
		return nil
	}
	if _, ok := svc.Labels[LabelServiceProxyName]; ok {
		return nil
	}
	clusterIPs := parseAddrs(svc.Spec.ClusterIPs)
	if len(svc.Spec.ClusterIPs) == 0 {
		clusterIPs = parseAddrs([]string{svc.Spec.ClusterIP})
	}
	if len(clusterIPs) == 0 { // "", "None" and garbage alike
		return nil
	}
	nn := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	m := ServicePortMap{}
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		proto := p.Protocol
		if proto == "" {
			proto = v1.ProtocolTCP
		}
		switch proto {
		case v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP:
		default:
			continue
		}
		name := ServicePortName{NamespacedName: nn, Port: p.Name, Protocol: proto}
		m[name] = newServicePort(svc, name, p, clusterIPs, topologyKeys)
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

func newServicePort(svc *v1.Service, name ServicePortName, p *v1.ServicePort, clusterIPs []netip.Addr, topologyKeys []string) *ServicePort {
	spec := &svc.Spec
	sp := &ServicePort{
		Name:                          name,
		Type:                          spec.Type,
		ClusterIPs:                    clusterIPs,
		Port:                          p.Port,
		Protocol:                      name.Protocol,
		TargetPort:                    p.TargetPort,
		NodePort:                      p.NodePort,
		ExternalIPs:                   parseAddrs(spec.ExternalIPs),
		LoadBalancerSourceRanges:      parsePrefixes(spec.LoadBalancerSourceRanges),
		AllocateLoadBalancerNodePorts: spec.AllocateLoadBalancerNodePorts == nil || *spec.AllocateLoadBalancerNodePorts,
		InternalPolicyLocal:           spec.InternalTrafficPolicy != nil && *spec.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal,
		TopologyKeys:                  append([]string(nil), topologyKeys...),
	}
	if sp.Type == "" {
		sp.Type = v1.ServiceTypeClusterIP
	}
	if sp.Type != v1.ServiceTypeNodePort && sp.Type != v1.ServiceTypeLoadBalancer {
		sp.NodePort = 0
	}
	if sp.Type == v1.ServiceTypeLoadBalancer {
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			ip, err := netip.ParseAddr(ing.IP)
			if err != nil {
				continue // hostname-only ingress: nothing for the node to capture
			}
			mode := v1.LoadBalancerIPModeVIP
			if ing.IPMode != nil && *ing.IPMode != "" {
				mode = *ing.IPMode
			}
			sp.LoadBalancerIngress = append(sp.LoadBalancerIngress, LoadBalancerIngress{IP: ip.Unmap(), Mode: mode})
		}
	}
	if spec.SessionAffinity == v1.ServiceAffinityClientIP {
		sp.SessionAffinityClientIP = true
		sp.StickyMaxAgeSeconds = v1.DefaultClientIPServiceAffinitySeconds
		if c := spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil && *c.ClientIP.TimeoutSeconds > 0 {
			sp.StickyMaxAgeSeconds = *c.ClientIP.TimeoutSeconds
		}
	}
	externallyReachable := sp.Type == v1.ServiceTypeNodePort || sp.Type == v1.ServiceTypeLoadBalancer || len(sp.ExternalIPs) > 0
	if externallyReachable && spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal {
		sp.ExternalPolicyLocal = true
		if sp.Type == v1.ServiceTypeLoadBalancer {
			sp.HealthCheckNodePort = spec.HealthCheckNodePort
		}
	}
	if spec.TrafficDistribution != nil {
		sp.TrafficDistribution = *spec.TrafficDistribution
	}
	sp.Scheduler = svc.Annotations[AnnotationScheduler]
	if v, ok := svc.Annotations[AnnotationWeights]; ok {
		w, err := ParseWeights(v)
		if err != nil {
			klog.InfoS("Ignoring the service's weights annotation", "service", name.NamespacedName, "annotation", AnnotationWeights, "err", err)
		} else if len(w) > 0 {
			sp.Weights = w
		}
	}
	sp.TopologyMode = svc.Annotations[AnnotationTopologyMode]
	if sp.TopologyMode == "" {
		sp.TopologyMode = svc.Annotations[AnnotationTopologyAwareHint]
	}
	if len(sp.TopologyKeys) == 0 {
		sp.TopologyKeys = nil
	}
	return sp
}

// parseAddrs keeps the valid addresses, IPv4-mapped IPv6 unmapped.
func parseAddrs(in []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range in {
		if a, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil {
			out = append(out, a.Unmap())
		}
	}
	return out
}

func parsePrefixes(in []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range in {
		if p, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

func servicePortEqual(a, b *ServicePort) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.DeepEqual(a, b)
}

// addressesEqual reports whether two versions of a port accept traffic on
// the same destinations; when they do not, flows to the old ones are stale.
func addressesEqual(a, b *ServicePort) bool {
	return reflect.DeepEqual(a.ClusterIPs, b.ClusterIPs) && a.Port == b.Port && a.NodePort == b.NodePort &&
		reflect.DeepEqual(a.ExternalIPs, b.ExternalIPs) && reflect.DeepEqual(a.LoadBalancerIngress, b.LoadBalancerIngress)
}
