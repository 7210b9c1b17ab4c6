package apiserver_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Every invalid object gets HTTP 422 with the field path a user must fix,
// and nothing is stored.
func TestInvalidObjectsAre422WithFieldPaths(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	ts := startServer(t)
	c := ts.client
	ctx := context.Background()
	if _, err := c.CoreV1().Services("default").Create(ctx, svc("holder", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.ClusterIP = "10.0.0.50"
		s.Spec.Ports[0].NodePort = 31111
	}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	np := func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort }
	cases := []struct {
		name    string
		svc     *corev1.Service
		field   string
		message string
	}{
		{"clusterIP outside the range", svc("a1", func(s *corev1.Service) { s.Spec.ClusterIP = "10.0.171.239" }), "spec.clusterIPs[0]", "The range of valid IPs is 10.0.0.0/24"},
		{"clusterIP already allocated", svc("a2", func(s *corev1.Service) { s.Spec.ClusterIP = "10.0.0.50" }), "spec.clusterIPs[0]", "provided IP is already allocated"},
		{"clusterIP not an IP", svc("a3", func(s *corev1.Service) { s.Spec.ClusterIP = "ten.zero" }), "spec.clusterIPs[0]", ""},
		{"nodePort already allocated", svc("a4", np, func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 31111 }), "spec.ports[0].nodePort", "provided port is already allocated"},
		{"nodePort below the range", svc("a5", np, func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 29999 }), "spec.ports[0].nodePort", "30000-32767"},
		{"nodePort above the range", svc("a6", np, func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 40000 }), "spec.ports[0].nodePort", "30000-32767"},
		{"nodePort on ClusterIP", svc("a7", func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30500 }), "spec.ports[0].nodePort", ""},
		{"name not DNS-1035", svc("My_Service"), "metadata.name", ""},
		{"name starting with a digit", svc("1svc"), "metadata.name", ""},
		{"two ports without names", svc("a8", func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Port: 80}, {Port: 81}}
		}), "spec.ports[0].name", ""},
		{"duplicate port names", svc("a9", func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "web", Port: 80}, {Name: "web", Port: 81}}
		}), "spec.ports[1].name", ""},
		{"duplicate port and protocol", svc("a10", func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "a", Port: 80}, {Name: "b", Port: 80}}
		}), "spec.ports[1]", ""},
		{"port 0", svc("a11", func(s *corev1.Service) { s.Spec.Ports[0].Port = 0 }), "spec.ports[0].port", ""},
		{"port 70000", svc("a12", func(s *corev1.Service) { s.Spec.Ports[0].Port = 70000 }), "spec.ports[0].port", ""},
		{"protocol HTTP", svc("a13", func(s *corev1.Service) { s.Spec.Ports[0].Protocol = "HTTP" }), "spec.ports[0].protocol", ""},
		{"targetPort not a name", svc("a14", func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("Not_Valid") }), "spec.ports[0].targetPort", ""},
		{"targetPort 70000", svc("a15", func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromInt32(70000) }), "spec.ports[0].targetPort", ""},
		{"no ports", svc("a16", func(s *corev1.Service) { s.Spec.Ports = nil }), "spec.ports", ""},
		{"unknown type", svc("a17", func(s *corev1.Service) { s.Spec.Type = "Magic" }), "spec.type", ""},
		{"ExternalName without a name", svc("a18", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeExternalName }), "spec.externalName", ""},
		{"ExternalName not a DNS name", svc("a19", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, "not a host!"
		}), "spec.externalName", ""},
		{"ExternalName with a clusterIP", svc("a20", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName, s.Spec.ClusterIP = corev1.ServiceTypeExternalName, "db.example.com", "10.0.0.60"
		}), "spec.clusterIPs", "may not be set for ExternalName services"},
		{"headless NodePort", svc("a21", np, func(s *corev1.Service) { s.Spec.ClusterIP = "None" }), "spec.clusterIPs[0]", ""},
		{"sessionAffinity timeout 0", svc("a22", func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](0)}}
		}), "spec.sessionAffinityConfig.clientIP.timeoutSeconds", ""},
		{"sessionAffinity timeout 86401", svc("a23", func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](86401)}}
		}), "spec.sessionAffinityConfig.clientIP.timeoutSeconds", ""},
		{"unknown sessionAffinity", svc("a24", func(s *corev1.Service) { s.Spec.SessionAffinity = "Cookie" }), "spec.sessionAffinity", ""},
		{"externalTrafficPolicy on ClusterIP", svc("a25", func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal }), "spec.externalTrafficPolicy", ""},
		{"healthCheckNodePort on NodePort", svc("a26", np, func(s *corev1.Service) { s.Spec.HealthCheckNodePort = 30088 }), "spec.healthCheckNodePort", ""},
		{"bad loadBalancerSourceRanges", svc("a27", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.LoadBalancerSourceRanges = []string{"not-a-cidr"}
		}), "spec.LoadBalancerSourceRanges[0]", ""},
		{"externalIP not an IP", svc("a28", func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"x"} }), "spec.externalIPs[0]", ""},
		{"bad selector key", svc("a29", func(s *corev1.Service) { s.Spec.Selector = map[string]string{"bad key!": "x"} }), "spec.selector", ""},
		{"unknown internalTrafficPolicy", svc("a30", func(s *corev1.Service) {
			p := corev1.ServiceInternalTrafficPolicy("Nearby")
			s.Spec.InternalTrafficPolicy = &p
		}), "spec.internalTrafficPolicy", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CoreV1().Services("default").Create(ctx, tc.svc, metav1.CreateOptions{})
			assertInvalidField(t, err, tc.field, tc.message)
			if _, err := c.CoreV1().Services("default").Get(ctx, tc.svc.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("stored anyway: %v", err)
			}
		})
	}

	t.Run("clusterIP is immutable", func(t *testing.T) {
		s, err := c.CoreV1().Services("default").Get(ctx, "holder", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.0.0.51", []string{"10.0.0.51"}
		_, err = c.CoreV1().Services("default").Update(ctx, s, metav1.UpdateOptions{})
		assertInvalidField(t, err, "spec.clusterIPs[0]", "")
	})

	t.Run("Endpoints with a loopback address", func(t *testing.T) {
		ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "ep1"}, Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "127.0.0.1"}}, Ports: []corev1.EndpointPort{{Port: 80}}}}}
		_, err := c.CoreV1().Endpoints("default").Create(ctx, ep, metav1.CreateOptions{})
		assertInvalidField(t, err, "subsets[0].addresses[0].ip", "")
	})
	t.Run("Endpoints with port 0", func(t *testing.T) {
		ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "ep2"}, Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.3.42.250"}}, Ports: []corev1.EndpointPort{{Port: 0}}}}}
		_, err := c.CoreV1().Endpoints("default").Create(ctx, ep, metav1.CreateOptions{})
		assertInvalidField(t, err, "subsets[0].ports[0].port", "")
	})
	t.Run("EndpointSlice with an unknown addressType", func(t *testing.T) {
		es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "es1"}, AddressType: "IPv5"}
		_, err := c.DiscoveryV1().EndpointSlices("default").Create(ctx, es, metav1.CreateOptions{})
		assertInvalidField(t, err, "addressType", "")
	})
}

func assertInvalidField(t *testing.T, err error, field, message string) {
	t.Helper()
	var se *apierrors.StatusError
	if !errors.As(err, &se) || se.ErrStatus.Code != 422 {
		t.Fatalf("want HTTP 422, got %v", err)
	}
	for _, cause := range se.ErrStatus.Details.Causes {
		if cause.Field == field && strings.Contains(cause.Message, message) {
			return
		}
	}
	t.Fatalf("no cause at %s containing %q in %v", field, message, se.ErrStatus.Details.Causes)
}
