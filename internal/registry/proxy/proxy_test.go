package proxy

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/portal-net/portal/internal/api/core"
)

func TestEndpointsFor(t *testing.T) {
	svc := &core.Service{}
	svc.Name = "web"
	svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}, {Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}
	ep := &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{
		Addresses:         []corev1.EndpointAddress{{IP: "10.42.0.5"}, {IP: "10.42.1.7"}},
		NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.42.0.9"}},
		Ports:             []corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}, {Name: "dns", Port: 5353, Protocol: corev1.ProtocolUDP}},
	}}}
	for _, port := range []string{"http", "80"} {
		got, err := endpointsFor(svc, ep, port)
		if err != nil || !slices.Equal(got, []string{"10.42.0.5:8080", "10.42.1.7:8080"}) {
			t.Errorf("port %q: %v %v", port, got, err)
		}
	}
	if got, err := endpointsFor(svc, ep, "dns"); err != nil || !slices.Equal(got, []string{"10.42.0.5:5353", "10.42.1.7:5353"}) {
		t.Errorf("dns: %v %v", got, err)
	}
	for _, tc := range []struct {
		port string
		ep   *corev1.Endpoints
	}{{"", ep}, {"nope", ep}, {"http", nil}, {"http", &corev1.Endpoints{}}} {
		if got, err := endpointsFor(svc, tc.ep, tc.port); err == nil {
			t.Errorf("port %q endpoints %v: %v, want an error", tc.port, tc.ep, got)
		}
	}
	one := &core.Service{}
	one.Spec.Ports = svc.Spec.Ports[:1]
	if got, err := endpointsFor(one, ep, ""); err != nil || len(got) != 2 {
		t.Errorf("the only port: %v %v", got, err)
	}
}

func TestFirstPort(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "sidecar"},
		{Name: "web", Ports: []corev1.ContainerPort{{ContainerPort: 9376}, {ContainerPort: 8080}}},
	}}}
	if got := firstPort(pod); got != "9376" {
		t.Errorf("firstPort = %q, want the first declared container port 9376", got)
	}
	if got := firstPort(&corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}); got != "" {
		t.Errorf("firstPort without ports = %q, want the scheme's default", got)
	}
}
