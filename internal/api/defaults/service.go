package defaults

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Service defaults a Service for a single-stack IPv4 cluster. See
// ServiceForFamilies for clusters with other service CIDRs.
func Service(svc *corev1.Service) {
	ServiceForFamilies(svc, []corev1.IPFamily{corev1.IPv4Protocol})
}

// ServiceForFamilies defaults a Service the way the API server does on
// create: the v1 field defaults, then the registry's clusterIP/clusterIPs
// normalisation and IP family defaulting. clusterFamilies lists the families
// the cluster has service CIDRs for, primary first; empty means IPv4 only.
//
// Values the user got wrong (an unknown family, a malformed IP, a policy the
// cluster cannot honour) are left for validation to report.
func ServiceForFamilies(svc *corev1.Service, clusterFamilies []corev1.IPFamily) {
	if svc == nil {
		return
	}
	if len(clusterFamilies) == 0 {
		clusterFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	}
	spec := &svc.Spec
	if spec.SessionAffinity == "" {
		spec.SessionAffinity = corev1.ServiceAffinityNone
	}
	if spec.SessionAffinity == corev1.ServiceAffinityNone {
		spec.SessionAffinityConfig = nil
	}
	if spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		c := spec.SessionAffinityConfig
		if c == nil || c.ClientIP == nil || c.ClientIP.TimeoutSeconds == nil {
			spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{
				ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To(corev1.DefaultClientIPServiceAffinitySeconds)},
			}
		}
	}
	if spec.Type == "" {
		spec.Type = corev1.ServiceTypeClusterIP
	}
	for i := range spec.Ports {
		p := &spec.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		if p.TargetPort == intstr.FromInt32(0) || p.TargetPort == intstr.FromString("") {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
	if ExternallyAccessible(svc) && spec.ExternalTrafficPolicy == "" {
		spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	}
	if spec.InternalTrafficPolicy == nil {
		switch spec.Type {
		case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
			spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyCluster)
		}
	}
	if spec.Type == corev1.ServiceTypeLoadBalancer {
		if spec.AllocateLoadBalancerNodePorts == nil {
			spec.AllocateLoadBalancerNodePorts = ptr.To(true)
		}
		for i := range svc.Status.LoadBalancer.Ingress {
			ing := &svc.Status.LoadBalancer.Ingress[i]
			if ing.IP != "" && ing.IPMode == nil {
				ing.IPMode = ptr.To(corev1.LoadBalancerIPModeVIP)
			}
		}
	}

	// Old clients only know the singular field. Upstream deliberately does
	// not derive clusterIP from clusterIPs: new clients must send both, and
	// validation says so.
	if spec.ClusterIP != "" && len(spec.ClusterIPs) == 0 {
		spec.ClusterIPs = []string{spec.ClusterIP}
	}
	serviceIPFamilies(svc, clusterFamilies)
}

// ExternallyAccessible is upstream's notion of a Service that receives
// traffic from outside the cluster, and so carries an externalTrafficPolicy.
func ExternallyAccessible(svc *corev1.Service) bool {
	switch svc.Spec.Type {
	case corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort:
		return true
	case corev1.ServiceTypeClusterIP:
		return len(svc.Spec.ExternalIPs) > 0
	}
	return false
}

// serviceIPFamilies follows the registry's family defaulting (upstream does
// this during IP allocation, but its result is visible on every Service).
func serviceIPFamilies(svc *corev1.Service, clusterFamilies []corev1.IPFamily) {
	spec := &svc.Spec
	if spec.Type == corev1.ServiceTypeExternalName {
		return
	}
	dualStack := len(clusterFamilies) > 1
	if spec.IPFamilyPolicy == nil && len(spec.IPFamilies) == 2 {
		spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicyRequireDualStack)
	}

	// Headless without a selector has no IPs of its own: its endpoints may be
	// of any family, so it asks for every family the cluster has.
	if spec.ClusterIP == corev1.ClusterIPNone && len(spec.Selector) == 0 {
		if len(spec.IPFamilies) == 0 {
			spec.IPFamilies = []corev1.IPFamily{clusterFamilies[0]}
		}
		if spec.IPFamilyPolicy == nil {
			spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicyRequireDualStack)
		}
		if *spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack && dualStack && len(spec.IPFamilies) == 1 {
			spec.IPFamilies = append(spec.IPFamilies, otherFamily(spec.IPFamilies[0]))
		}
		return
	}

	if spec.IPFamilyPolicy == nil {
		spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicySingleStack)
	}
	// Families not given are inferred from the clusterIPs the user chose.
	for i, ip := range spec.ClusterIPs {
		if i < len(spec.IPFamilies) {
			continue
		}
		fam, ok := ipFamilyOf(ip)
		if !ok {
			break
		}
		spec.IPFamilies = append(spec.IPFamilies, fam)
	}
	if len(spec.IPFamilies) == 0 {
		spec.IPFamilies = []corev1.IPFamily{clusterFamilies[0]}
	}
	if *spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack && dualStack && len(spec.IPFamilies) == 1 {
		spec.IPFamilies = append(spec.IPFamilies, otherFamily(spec.IPFamilies[0]))
	}
}

func ipFamilyOf(s string) (corev1.IPFamily, bool) {
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return "", false
	}
	if addr.Is4() {
		return corev1.IPv4Protocol, true
	}
	return corev1.IPv6Protocol, true
}

func otherFamily(f corev1.IPFamily) corev1.IPFamily {
	if f == corev1.IPv6Protocol {
		return corev1.IPv4Protocol
	}
	return corev1.IPv6Protocol
}

// Endpoints defaults port protocols.
func Endpoints(ep *corev1.Endpoints) {
	if ep == nil {
		return
	}
	for i := range ep.Subsets {
		for j := range ep.Subsets[i].Ports {
			if ep.Subsets[i].Ports[j].Protocol == "" {
				ep.Subsets[i].Ports[j].Protocol = corev1.ProtocolTCP
			}
		}
	}
}

// EndpointSlice defaults port names to "" and protocols to TCP, as the
// discovery/v1 defaulters do (a nil name pointer means the unnamed port).
func EndpointSlice(es *discoveryv1.EndpointSlice) {
	if es == nil {
		return
	}
	for i := range es.Ports {
		p := &es.Ports[i]
		if p.Name == nil {
			p.Name = ptr.To("")
		}
		if p.Protocol == nil {
			p.Protocol = ptr.To(corev1.ProtocolTCP)
		}
	}
}

// Secret defaults the type to Opaque.
func Secret(s *corev1.Secret) {
	if s != nil && s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
}
