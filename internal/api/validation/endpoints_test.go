package validation

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/portal-net/portal/internal/api/defaults"
)

func baseEndpoints() *corev1.Endpoints {
	return &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", ResourceVersion: "1"},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.3.42.250"}},
			Ports:     []corev1.EndpointPort{{Port: 30050}},
		}},
	}
}

func TestValidateEndpointsInvalid(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*corev1.Endpoints)
		want   []string
	}{
		{"valid", func(*corev1.Endpoints) {}, nil},
		{"loopback IP", func(e *corev1.Endpoints) { e.Subsets[0].Addresses[0].IP = "127.0.0.1" },
			want(inv + " subsets[0].addresses[0].ip")},
		{"not an IP", func(e *corev1.Endpoints) { e.Subsets[0].Addresses[0].IP = "not-an-ip" },
			want(inv+" subsets[0].addresses[0].ip", inv+" subsets[0].addresses[0].ip")},
		{"link-local IP", func(e *corev1.Endpoints) { e.Subsets[0].Addresses[0].IP = "169.254.169.254" },
			want(inv + " subsets[0].addresses[0].ip")},
		{"link-local multicast not ready", func(e *corev1.Endpoints) {
			e.Subsets[0].NotReadyAddresses = []corev1.EndpointAddress{{IP: "224.0.0.1"}}
		}, want(inv + " subsets[0].notReadyAddresses[0].ip")},
		{"unspecified IP", func(e *corev1.Endpoints) { e.Subsets[0].Addresses[0].IP = "0.0.0.0" },
			want(inv + " subsets[0].addresses[0].ip")},
		{"no addresses", func(e *corev1.Endpoints) { e.Subsets[0].Addresses = nil }, want(req + " subsets[0]")},
		{"bad hostname", func(e *corev1.Endpoints) { e.Subsets[0].Addresses[0].Hostname = "Bad_Host" },
			want(inv + " subsets[0].addresses[0].hostname")},
		{"bad nodeName", func(e *corev1.Endpoints) { e.Subsets[0].Addresses[0].NodeName = ptr.To("Node_1") },
			want(inv + " subsets[0].addresses[0].nodeName")},
		{"two unnamed ports", func(e *corev1.Endpoints) {
			e.Subsets[0].Ports = []corev1.EndpointPort{{Port: 80}, {Port: 443}}
		}, want(req+" subsets[0].ports[0].name", req+" subsets[0].ports[1].name")},
		{"port 0", func(e *corev1.Endpoints) { e.Subsets[0].Ports[0].Port = 0 }, want(inv + " subsets[0].ports[0].port")},
		{"protocol HTTP", func(e *corev1.Endpoints) { e.Subsets[0].Ports[0].Protocol = "HTTP" },
			want(nsup + " subsets[0].ports[0].protocol")},
		{"bad name", func(e *corev1.Endpoints) { e.Name = "Web_1" }, want(inv + " metadata.name")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ep := baseEndpoints()
			tc.mutate(ep)
			defaults.Endpoints(ep)
			errs := ValidateEndpoints(ep)
			if got := errKeys(errs); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("errors:\n got  %q\n want %q\nfull: %v", got, tc.want, errs.ToAggregate())
			}
		})
	}
	ep := baseEndpoints()
	ep.Subsets[0].Addresses[0].IP = "127.0.0.1"
	defaults.Endpoints(ep)
	if msg := ValidateEndpoints(ep).ToAggregate().Error(); !strings.Contains(msg, "may not be in the loopback range (127.0.0.0/8, ::1/128)") {
		t.Fatalf("unexpected message %q", msg)
	}
}

func baseSlice() *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "web-abc12", Namespace: "default", ResourceVersion: "1",
			Labels: map[string]string{discoveryv1.LabelServiceName: "web", discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses: []string{"10.244.0.5"},
			NodeName:  ptr.To("node-1"),
			Zone:      ptr.To("zone-a"),
		}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8080))}},
	}
}

func TestValidateEndpointSliceInvalid(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*discoveryv1.EndpointSlice)
		want   []string
	}{
		{"valid", func(*discoveryv1.EndpointSlice) {}, nil},
		{"1001 endpoints", func(s *discoveryv1.EndpointSlice) {
			s.Endpoints = nil
			for i := 0; i < 1001; i++ {
				s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)}})
			}
		}, want(many + " endpoints")},
		{"1000 endpoints is fine", func(s *discoveryv1.EndpointSlice) {
			s.Endpoints = nil
			for i := 0; i < 1000; i++ {
				s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)}})
			}
		}, nil},
		{"missing addressType", func(s *discoveryv1.EndpointSlice) { s.AddressType = "" }, want(req + " addressType")},
		{"deprecated IP addressType", func(s *discoveryv1.EndpointSlice) { s.AddressType = "IP" }, want(nsup + " addressType")},
		{"IPv6 address in IPv4 slice", func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Addresses = []string{"2001:db8::1"} },
			want(inv + " endpoints[0].addresses[0]")},
		{"loopback address", func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Addresses = []string{"127.0.0.1"} },
			want(inv + " endpoints[0].addresses[0]")},
		{"no addresses", func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Addresses = nil },
			want(req + " endpoints[0].addresses")},
		{"FQDN not a host", func(s *discoveryv1.EndpointSlice) {
			s.AddressType = discoveryv1.AddressTypeFQDN
			s.Endpoints[0].Addresses = []string{"not a host"}
		}, want(inv + " endpoints[0].addresses[0]")},
		{"FQDN ok", func(s *discoveryv1.EndpointSlice) {
			s.AddressType = discoveryv1.AddressTypeFQDN
			s.Endpoints[0].Addresses = []string{"db.example.com"}
		}, nil},
		{"bad hostname", func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Hostname = ptr.To("Bad_Host") },
			want(inv + " endpoints[0].hostname")},
		{"bad zone", func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Zone = ptr.To("zone a") },
			want(inv + " endpoints[0].zone")},
		{"duplicate zone hints", func(s *discoveryv1.EndpointSlice) {
			s.Endpoints[0].Hints = &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: "a"}, {Name: "a"}}}
		}, want(dup + " endpoints[0].hints.forZones[1].name")},
		{"duplicate port names", func(s *discoveryv1.EndpointSlice) {
			s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: ptr.To("http"), Port: ptr.To(int32(8081))})
		}, want(dup + " ports[1].name")},
		{"two unnamed ports", func(s *discoveryv1.EndpointSlice) {
			s.Ports = []discoveryv1.EndpointPort{{Port: ptr.To(int32(1))}, {Port: ptr.To(int32(2))}}
		}, want(dup + " ports[1].name")},
		{"bad protocol", func(s *discoveryv1.EndpointSlice) { s.Ports[0].Protocol = ptr.To(corev1.Protocol("HTTP")) },
			want(nsup + " ports[0].protocol")},
		{"bad port name", func(s *discoveryv1.EndpointSlice) { s.Ports[0].Name = ptr.To("Http_") },
			want(inv + " ports[0].name")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			es := baseSlice()
			tc.mutate(es)
			defaults.EndpointSlice(es)
			errs := ValidateEndpointSlice(es)
			if got := errKeys(errs); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("errors:\n got  %q\n want %q\nfull: %v", got, tc.want, errs.ToAggregate())
			}
		})
	}
}

func TestValidateEndpointSliceUpdateAddressTypeImmutable(t *testing.T) {
	old := baseSlice()
	defaults.EndpointSlice(old)
	nw := old.DeepCopy()
	nw.AddressType = discoveryv1.AddressTypeIPv6
	nw.Endpoints[0].Addresses = []string{"2001:db8::5"}
	got := errKeys(ValidateEndpointSliceUpdate(nw, old))
	if strings.Join(got, ",") != inv+" addressType" {
		t.Fatalf("got %q", got)
	}
}
