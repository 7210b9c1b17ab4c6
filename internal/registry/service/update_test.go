package service

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/portal-net/portal/internal/api/core"
)

func stored(typ corev1.ServiceType) *core.Service {
	s := &core.Service{}
	s.Spec.Type = typ
	s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.0.0.5", []string{"10.0.0.5"}
	s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	s.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicySingleStack)
	s.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyCluster)
	s.Spec.Ports = []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}
	if typ == corev1.ServiceTypeNodePort || typ == corev1.ServiceTypeLoadBalancer {
		s.Spec.Ports[0].NodePort = 30080
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	}
	if typ == corev1.ServiceTypeLoadBalancer {
		s.Spec.AllocateLoadBalancerNodePorts = ptr.To(true)
	}
	return s
}

func TestNormalizeUpdate(t *testing.T) {
	// ClusterIP → ExternalName as the upstream conformance spec does it:
	// clusterIP cleared, everything else sent back as read.
	old := stored(corev1.ServiceTypeClusterIP)
	svc := old.DeepCopy()
	svc.Spec.Type, svc.Spec.ExternalName, svc.Spec.ClusterIP = corev1.ServiceTypeExternalName, "example.com", ""
	normalizeUpdate(svc, old)
	s := svc.Spec
	if s.ClusterIP != "" || s.ClusterIPs != nil || s.IPFamilies != nil || s.IPFamilyPolicy != nil || s.InternalTrafficPolicy != nil {
		t.Errorf("ClusterIP → ExternalName kept type-dependent fields: %+v", s.ServiceSpec)
	}

	// NodePort/LoadBalancer → ExternalName: node ports and LB fields go too.
	for _, typ := range []corev1.ServiceType{corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer} {
		old := stored(typ)
		svc := old.DeepCopy()
		svc.Spec.Type, svc.Spec.ExternalName, svc.Spec.ClusterIP = corev1.ServiceTypeExternalName, "example.com", ""
		normalizeUpdate(svc, old)
		s := svc.Spec
		if s.Ports[0].NodePort != 0 || s.ExternalTrafficPolicy != "" || s.AllocateLoadBalancerNodePorts != nil || s.ClusterIPs != nil {
			t.Errorf("%s → ExternalName: %+v", typ, s.ServiceSpec)
		}
	}

	// LoadBalancer → ClusterIP keeps the address, drops node ports.
	old = stored(corev1.ServiceTypeLoadBalancer)
	svc = old.DeepCopy()
	svc.Spec.Type = corev1.ServiceTypeClusterIP
	normalizeUpdate(svc, old)
	if s := svc.Spec; s.ClusterIP != "10.0.0.5" || len(s.ClusterIPs) != 1 || s.Ports[0].NodePort != 0 || s.ExternalTrafficPolicy != "" || s.IPFamilyPolicy == nil {
		t.Errorf("LoadBalancer → ClusterIP: %+v", s.ServiceSpec)
	}

	// An old client sending only clusterIP keeps clusterIPs; changing
	// clusterIP alone moves clusterIPs with it (validation then refuses
	// the change, as for any immutable field).
	old = stored(corev1.ServiceTypeClusterIP)
	svc = old.DeepCopy()
	svc.Spec.ClusterIPs = nil
	normalizeUpdate(svc, old)
	if len(svc.Spec.ClusterIPs) != 1 || svc.Spec.ClusterIPs[0] != "10.0.0.5" {
		t.Errorf("old client: clusterIPs %v", svc.Spec.ClusterIPs)
	}
	svc = old.DeepCopy()
	svc.Spec.ClusterIP = "10.0.0.9"
	normalizeUpdate(svc, old)
	if len(svc.Spec.ClusterIPs) != 1 || svc.Spec.ClusterIPs[0] != "10.0.0.9" {
		t.Errorf("changed clusterIP: clusterIPs %v", svc.Spec.ClusterIPs)
	}

	// Fields changed together with the type stay for validation to judge.
	old = stored(corev1.ServiceTypeNodePort)
	svc = old.DeepCopy()
	svc.Spec.Type, svc.Spec.ExternalName = corev1.ServiceTypeExternalName, "example.com"
	svc.Spec.Ports[0].NodePort = 30999
	normalizeUpdate(svc, old)
	if svc.Spec.Ports[0].NodePort != 30999 {
		t.Error("a nodePort the user changed was dropped")
	}
}
