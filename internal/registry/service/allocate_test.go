package service

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/portal-net/portal/internal/allocator"
	"github.com/portal-net/portal/internal/api/core"
)

func newAllocators(t *testing.T) *Allocators {
	t.Helper()
	store := allocator.NewMemStore()
	ipr, err := allocator.ParseIPRange("10.0.0.0/24")
	if err != nil {
		t.Fatal(err)
	}
	pr, err := allocator.NewPortRange(30000, 2768)
	if err != nil {
		t.Fatal(err)
	}
	return &Allocators{
		IPs:   allocator.NewClusterIPAllocator(store, "/registry", ipr, allocator.Options{}),
		Ports: allocator.NewPortAllocator(store, "/registry", pr, allocator.Options{}),
	}
}

func spec(typ corev1.ServiceType, mutate ...func(*corev1.ServiceSpec)) *corev1.ServiceSpec {
	s := &corev1.ServiceSpec{Type: typ, Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)}}}
	for _, m := range mutate {
		m(s)
	}
	return s
}

var owner = allocator.Owner{Namespace: "default", Name: "svc"}

func TestAllocateByType(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name                  string
		spec                  *corev1.ServiceSpec
		wantIP, wantNodePorts bool
		wantHealthCheckPort   bool
	}{
		{"ClusterIP", spec(corev1.ServiceTypeClusterIP), true, false, false},
		{"headless", spec(corev1.ServiceTypeClusterIP, func(s *corev1.ServiceSpec) { s.ClusterIP = "None" }), false, false, false},
		{"ExternalName", spec(corev1.ServiceTypeExternalName), false, false, false},
		{"NodePort", spec(corev1.ServiceTypeNodePort), true, true, false},
		{"LoadBalancer", spec(corev1.ServiceTypeLoadBalancer), true, true, false},
		{"LoadBalancer Local", spec(corev1.ServiceTypeLoadBalancer, func(s *corev1.ServiceSpec) {
			s.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}), true, true, true},
		{"LoadBalancer without node ports", spec(corev1.ServiceTypeLoadBalancer, func(s *corev1.ServiceSpec) {
			f := false
			s.AllocateLoadBalancerNodePorts = &f
		}), true, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAllocators(t)
			if _, errs := a.allocate(ctx, owner, tc.spec, nil, false); len(errs) > 0 {
				t.Fatal(errs)
			}
			if got := tc.spec.ClusterIP != "" && tc.spec.ClusterIP != "None"; got != tc.wantIP {
				t.Errorf("clusterIP %q", tc.spec.ClusterIP)
			}
			if tc.wantIP && (len(tc.spec.ClusterIPs) != 1 || tc.spec.ClusterIPs[0] != tc.spec.ClusterIP) {
				t.Errorf("clusterIPs %v", tc.spec.ClusterIPs)
			}
			if got := tc.spec.Ports[0].NodePort != 0; got != tc.wantNodePorts {
				t.Errorf("nodePort %d", tc.spec.Ports[0].NodePort)
			}
			if got := tc.spec.HealthCheckNodePort != 0; got != tc.wantHealthCheckPort {
				t.Errorf("healthCheckNodePort %d", tc.spec.HealthCheckNodePort)
			}
		})
	}
}

func TestAllocateConflictsAndRevert(t *testing.T) {
	ctx := context.Background()
	a := newAllocators(t)
	first := spec(corev1.ServiceTypeNodePort, func(s *corev1.ServiceSpec) { s.ClusterIP = "10.0.0.50"; s.Ports[0].NodePort = 31111 })
	if _, errs := a.allocate(ctx, owner, first, nil, false); len(errs) > 0 {
		t.Fatal(errs)
	}
	// Same IP, free port: the IP error is reported and the port given back.
	second := spec(corev1.ServiceTypeNodePort, func(s *corev1.ServiceSpec) { s.ClusterIP = "10.0.0.50"; s.Ports[0].NodePort = 31112 })
	_, errs := a.allocate(ctx, allocator.Owner{Namespace: "default", Name: "other"}, second, nil, false)
	if len(errs) != 1 || errs[0].Field != "spec.clusterIPs[0]" || !strings.Contains(errs[0].Detail, "already allocated") {
		t.Fatalf("errs = %v", errs)
	}
	third := spec(corev1.ServiceTypeNodePort, func(s *corev1.ServiceSpec) { s.Ports[0].NodePort = 31112 })
	if _, errs := a.allocate(ctx, allocator.Owner{Namespace: "default", Name: "third"}, third, nil, false); len(errs) > 0 {
		t.Fatalf("port 31112 was not given back: %v", errs)
	}
	// Port conflict wording is Kubernetes'.
	fourth := spec(corev1.ServiceTypeNodePort, func(s *corev1.ServiceSpec) { s.Ports[0].NodePort = 31111 })
	_, errs = a.allocate(ctx, allocator.Owner{Namespace: "default", Name: "fourth"}, fourth, nil, false)
	if len(errs) != 1 || errs[0].Field != "spec.ports[0].nodePort" || !strings.Contains(errs[0].Error(), "provided port is already allocated") {
		t.Fatalf("errs = %v", errs)
	}
	// Out of range names the range.
	fifth := spec(corev1.ServiceTypeClusterIP, func(s *corev1.ServiceSpec) { s.ClusterIP = "10.0.171.239" })
	_, errs = a.allocate(ctx, allocator.Owner{Namespace: "default", Name: "fifth"}, fifth, nil, false)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "The range of valid IPs is 10.0.0.0/24") {
		t.Fatalf("errs = %v", errs)
	}
}

func TestSameNodePortForTCPAndUDP(t *testing.T) {
	ctx := context.Background()
	a := newAllocators(t)
	s := spec(corev1.ServiceTypeNodePort, func(s *corev1.ServiceSpec) {
		s.Ports = []corev1.ServicePort{
			{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, NodePort: 30053},
			{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, NodePort: 30053},
		}
	})
	if _, errs := a.allocate(ctx, owner, s, nil, false); len(errs) > 0 {
		t.Fatalf("one service may use a nodePort for two protocols: %v", errs)
	}
}

func TestUpdateKeepsAndReleases(t *testing.T) {
	ctx := context.Background()
	a := newAllocators(t)
	oldSvc := &core.Service{Spec: core.ServiceSpec{ServiceSpec: *spec(corev1.ServiceTypeNodePort)}}
	if _, errs := a.allocate(ctx, owner, &oldSvc.Spec.ServiceSpec, nil, false); len(errs) > 0 {
		t.Fatal(errs)
	}
	// The same manifest applied again: values are carried over, nothing new is taken.
	newSvc := &core.Service{Spec: core.ServiceSpec{ServiceSpec: *spec(corev1.ServiceTypeNodePort)}}
	keepAllocated(newSvc, oldSvc)
	if newSvc.Spec.ClusterIP != oldSvc.Spec.ClusterIP || newSvc.Spec.Ports[0].NodePort != oldSvc.Spec.Ports[0].NodePort {
		t.Fatalf("not carried over: %+v", newSvc.Spec)
	}
	oldHeld := held(&oldSvc.Spec.ServiceSpec)
	if _, errs := a.allocate(ctx, owner, &newSvc.Spec.ServiceSpec, &oldHeld, false); len(errs) > 0 {
		t.Fatalf("re-apply: %v", errs)
	}
	// To ExternalName: IP and port are released after the update.
	ext := &core.Service{Spec: core.ServiceSpec{ServiceSpec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}}}
	a.releaseDropped(ctx, oldHeld, held(&ext.Spec.ServiceSpec))
	reuse := spec(corev1.ServiceTypeNodePort, func(s *corev1.ServiceSpec) {
		s.ClusterIP = oldSvc.Spec.ClusterIP
		s.Ports[0].NodePort = oldSvc.Spec.Ports[0].NodePort
	})
	if _, errs := a.allocate(ctx, allocator.Owner{Namespace: "default", Name: "next"}, reuse, nil, false); len(errs) > 0 {
		t.Fatalf("released values not reusable: %v", errs)
	}
}
