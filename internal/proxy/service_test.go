package proxy

import (
	"net/netip"
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestServicePortsNotProxied(t *testing.T) {
	tcp := []v1.ServicePort{port("", 80, v1.ProtocolTCP)}
	cases := map[string]*v1.Service{
		"headless": svc("a", "None", tcp),
		"no cluster IP": svc("a", "", tcp, func(s *v1.Service) {
			s.Spec.ClusterIPs = nil
		}),
		"external name": svc("a", "", tcp, func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeExternalName
			s.Spec.ExternalName = "example.com"
		}),
		"other proxy": svc("a", "10.0.0.1", tcp, func(s *v1.Service) {
			s.Labels = map[string]string{LabelServiceProxyName: "other"}
		}),
		"only unsupported protocol": svc("a", "10.0.0.1", []v1.ServicePort{port("", 80, "ICMP")}),
		"nil":                       nil,
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			if got := ServicePorts(s, nil); got != nil {
				t.Fatalf("ServicePorts = %v, want nil", got)
			}
		})
	}
}

func TestServicePorts(t *testing.T) {
	base := func(name string) ServicePortName { return spn("web", name, v1.ProtocolTCP) }
	one := func(m ServicePortMap) *ServicePort {
		if len(m) != 1 {
			t.Fatalf("want one port, got %v", m)
		}
		for _, sp := range m {
			return sp
		}
		return nil
	}
	tcp80 := []v1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}
	cases := []struct {
		name string
		svc  *v1.Service
		keys []string
		want func(*ServicePort) // adjusts the expected default ClusterIP port
	}{
		{"defaults", svc("web", "10.0.0.1", tcp80), nil, func(*ServicePort) {}},
		{"dual stack and v4-mapped", svc("web", "10.0.0.1", tcp80, func(s *v1.Service) {
			s.Spec.ClusterIPs = []string{"10.0.0.1", "fd00::1"}
			s.Spec.ExternalIPs = []string{"::ffff:192.0.2.1", "bogus"}
		}), nil, func(sp *ServicePort) {
			sp.ClusterIPs = append(sp.ClusterIPs, netip.MustParseAddr("fd00::1"))
			sp.ExternalIPs = []netip.Addr{netip.MustParseAddr("192.0.2.1")}
		}},
		{"userspace scheduler and weights", svc("web", "10.0.0.1", tcp80, func(s *v1.Service) {
			s.Annotations = map[string]string{AnnotationScheduler: "wrr", AnnotationWeights: "web-a=3, web-b=0"}
		}), nil, func(sp *ServicePort) { sp.Scheduler, sp.Weights = "wrr", map[string]int{"web-a": 3, "web-b": 0} }},
		{"invalid weights are ignored", svc("web", "10.0.0.1", tcp80, func(s *v1.Service) {
			s.Annotations = map[string]string{AnnotationWeights: "web-a=heavy"}
		}), nil, func(*ServicePort) {}},
		{"affinity default timeout", svc("web", "10.0.0.1", tcp80, func(s *v1.Service) {
			s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		}), nil, func(sp *ServicePort) { sp.SessionAffinityClientIP, sp.StickyMaxAgeSeconds = true, 10800 }},
		{"affinity timeout", svc("web", "10.0.0.1", tcp80, func(s *v1.Service) {
			s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](7)}}
		}), nil, func(sp *ServicePort) { sp.SessionAffinityClientIP, sp.StickyMaxAgeSeconds = true, 7 }},
		{"nodePort ignored on ClusterIP, eTP Local without external addresses", svc("web", "10.0.0.1", []v1.ServicePort{{Port: 80, NodePort: 30001, TargetPort: intstr.FromString("http")}}, func(s *v1.Service) {
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		}), nil, func(*ServicePort) {}},
		{"eTP Local with externalIPs", svc("web", "10.0.0.1", tcp80, func(s *v1.Service) {
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
			s.Spec.ExternalIPs = []string{"192.0.2.9"}
		}), nil, func(sp *ServicePort) {
			sp.ExternalPolicyLocal = true
			sp.ExternalIPs = []netip.Addr{netip.MustParseAddr("192.0.2.9")}
		}},
		{"NodePort eTP Local has no health check port", svc("web", "10.0.0.1", []v1.ServicePort{{Port: 80, NodePort: 30001, TargetPort: intstr.FromString("http")}}, func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeNodePort
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
			s.Spec.HealthCheckNodePort = 30002
		}), nil, func(sp *ServicePort) {
			sp.Type, sp.NodePort, sp.ExternalPolicyLocal = v1.ServiceTypeNodePort, 30001, true
		}},
		{"LoadBalancer", svc("web", "10.0.0.1", []v1.ServicePort{{Port: 80, NodePort: 30001, TargetPort: intstr.FromString("http")}}, func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
			s.Spec.HealthCheckNodePort = 30002
			s.Spec.LoadBalancerSourceRanges = []string{" 192.0.2.1/24", "nope"}
			s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{
				{IP: "198.51.100.1"},
				{IP: "198.51.100.2", IPMode: ptr.To(v1.LoadBalancerIPModeProxy)},
				{Hostname: "lb.example.com"},
			}
		}), nil, func(sp *ServicePort) {
			sp.Type, sp.NodePort, sp.ExternalPolicyLocal, sp.HealthCheckNodePort = v1.ServiceTypeLoadBalancer, 30001, true, 30002
			sp.LoadBalancerSourceRanges = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
			sp.LoadBalancerIngress = []LoadBalancerIngress{
				{IP: netip.MustParseAddr("198.51.100.1"), Mode: v1.LoadBalancerIPModeVIP},
				{IP: netip.MustParseAddr("198.51.100.2"), Mode: v1.LoadBalancerIPModeProxy},
			}
		}},
		{"LoadBalancer without node ports", svc("web", "10.0.0.1", tcp80, func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.AllocateLoadBalancerNodePorts = ptr.To(false)
		}), nil, func(sp *ServicePort) {
			sp.Type, sp.AllocateLoadBalancerNodePorts = v1.ServiceTypeLoadBalancer, false
		}},
		{"iTP Local, trafficDistribution, hints annotation, topologyKeys", svc("web", "10.0.0.1", tcp80, func(s *v1.Service) {
			s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
			s.Spec.TrafficDistribution = ptr.To(v1.ServiceTrafficDistributionPreferSameZone)
			s.Annotations = map[string]string{AnnotationTopologyAwareHint: "auto"}
		}), []string{"kubernetes.io/hostname", "*"}, func(sp *ServicePort) {
			sp.InternalPolicyLocal = true
			sp.TrafficDistribution = "PreferSameZone"
			sp.TopologyMode = "auto"
			sp.TopologyKeys = []string{"kubernetes.io/hostname", "*"}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := &ServicePort{
				Name: base(""), Type: v1.ServiceTypeClusterIP, ClusterIPs: []netip.Addr{netip.MustParseAddr("10.0.0.1")},
				Port: 80, Protocol: v1.ProtocolTCP, TargetPort: intstr.FromString("http"), AllocateLoadBalancerNodePorts: true,
			}
			tc.want(want)
			got := one(ServicePorts(tc.svc, tc.keys))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestServicePortsMultiPort(t *testing.T) {
	s := svc("dns", "10.0.0.10", []v1.ServicePort{
		port("dns", 53, v1.ProtocolUDP), port("dns-tcp", 53, v1.ProtocolTCP), port("sctp", 9, v1.ProtocolSCTP), port("", 1, "ICMP"),
		{Name: "defaulted", Port: 8080}, // protocol "" means TCP
	})
	got := ServicePorts(s, nil)
	for _, n := range []ServicePortName{spn("dns", "dns", v1.ProtocolUDP), spn("dns", "dns-tcp", v1.ProtocolTCP), spn("dns", "sctp", v1.ProtocolSCTP), spn("dns", "defaulted", v1.ProtocolTCP)} {
		if sp := got[n]; sp == nil || sp.Name != n || sp.Protocol != n.Protocol {
			t.Errorf("%s: got %+v", n, sp)
		}
	}
	if len(got) != 4 {
		t.Errorf("got %d ports, want 4 (ICMP skipped)", len(got))
	}
	if !got[spn("dns", "dns", v1.ProtocolUDP)].UsesUDPConntrack() || got[spn("dns", "dns-tcp", v1.ProtocolTCP)].UsesUDPConntrack() {
		t.Error("UsesUDPConntrack wrong")
	}
}

func TestParseWeights(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]int
		err  string
	}{
		{"a=3,b=1", map[string]int{"a": 3, "b": 1}, ""},
		{" a = 0 , ,b=65535 ", map[string]int{"a": 0, "b": 65535}, ""},
		{"", map[string]int{}, ""},
		{"a", nil, `"a": want pod=weight`},
		{"=2", nil, `"=2": want pod=weight`},
		{"a=-1", nil, `"a=-1": weight must be 0 to 65535`},
		{"a=65536", nil, `"a=65536": weight must be 0 to 65535`},
		{"a=x", nil, `"a=x": weight must be 0 to 65535`},
	} {
		got, err := ParseWeights(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}
