package validation

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/portal-net/portal/internal/api/defaults"
)

func mustCIDR(t testing.TB, s string) *net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func testServiceOptions(t testing.TB) ServiceOptions {
	return ServiceOptions{ServiceCIDRs: []*net.IPNet{mustCIDR(t, "10.0.0.0/24")}, NodePortRange: DefaultNodePortRange}
}

// errKeys renders errors as "Type path" strings, sorted, for set comparison.
func errKeys(errs field.ErrorList) []string {
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, fmt.Sprintf("%s %s", e.Type, e.Field))
	}
	sort.Strings(out)
	return out
}

func want(keys ...string) []string {
	sort.Strings(keys)
	return keys
}

func baseService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", ResourceVersion: "1"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
}

func twoPorts(s *corev1.Service) {
	s.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "https", Port: 443}}
}

var (
	inv  = field.ErrorTypeInvalid.String()
	req  = field.ErrorTypeRequired.String()
	forb = field.ErrorTypeForbidden.String()
	dup  = field.ErrorTypeDuplicate.String()
	nsup = field.ErrorTypeNotSupported.String()
	many = field.ErrorTypeTooMany.String()
)

func TestValidateServiceInvalid(t *testing.T) {
	cases := []struct {
		name    string
		mutate  func(*corev1.Service)
		want    []string
		message string // substring expected in some error's Error()
	}{
		{"clusterIP outside service CIDR", func(s *corev1.Service) { s.Spec.ClusterIP = "10.0.171.239" },
			want(inv + " spec.clusterIPs[0]"),
			`spec.clusterIPs[0]: Invalid value: "10.0.171.239": failed to allocate IP 10.0.171.239: the provided IP (10.0.171.239) is not in the valid range. The range of valid IPs is 10.0.0.0/24`},
		{"clusterIP is the network address", func(s *corev1.Service) { s.Spec.ClusterIP = "10.0.0.0" },
			want(inv + " spec.clusterIPs[0]"), "The range of valid IPs is 10.0.0.0/24"},
		{"clusterIP is the broadcast address", func(s *corev1.Service) { s.Spec.ClusterIP = "10.0.0.255" },
			want(inv + " spec.clusterIPs[0]"), "not in the valid range"},
		{"clusterIP not an IP", func(s *corev1.Service) { s.Spec.ClusterIP = "not-an-ip" },
			want(inv + " spec.clusterIPs[0]"), "must be a valid IP address"},
		{"clusterIPs without clusterIP", func(s *corev1.Service) { s.Spec.ClusterIPs = []string{"10.0.0.5"} },
			want(inv + " spec.clusterIPs"), "must be empty when `clusterIP` is not specified"},
		{"nodePort below range", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 29999
		}, want(inv + " spec.ports[0].nodePort"),
			`spec.ports[0].nodePort: Invalid value: 29999: provided port is not in the valid range. The range of valid ports is 30000-32767`},
		{"nodePort above range", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.Ports[0].NodePort = 40000
		}, want(inv + " spec.ports[0].nodePort"), "The range of valid ports is 30000-32767"},
		{"nodePort on ClusterIP", func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 },
			want(forb + " spec.ports[0].nodePort"), "may not be used when `type` is 'ClusterIP'"},
		{"duplicate nodePort", func(s *corev1.Service) {
			twoPorts(s)
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort, s.Spec.Ports[1].NodePort = 30080, 30080
		}, want(dup + " spec.ports[1].nodePort"), ""},
		{"duplicate port names", func(s *corev1.Service) {
			twoPorts(s)
			s.Spec.Ports[1].Name = "http"
		}, want(dup + " spec.ports[1].name"), `Duplicate value: "http"`},
		{"two ports without names", func(s *corev1.Service) {
			twoPorts(s)
			s.Spec.Ports[0].Name, s.Spec.Ports[1].Name = "", ""
		}, want(req+" spec.ports[0].name", req+" spec.ports[1].name"), ""},
		{"port name not a DNS label", func(s *corev1.Service) { s.Spec.Ports[0].Name = "HTTP_Port" },
			want(inv + " spec.ports[0].name"), "RFC 1123"},
		{"duplicate port and protocol", func(s *corev1.Service) {
			twoPorts(s)
			s.Spec.Ports[1].Port = 80
		}, want(dup + " spec.ports[1]"), ""},
		{"targetPort not an IANA_SVC_NAME", func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("Not_Valid") },
			want(inv + " spec.ports[0].targetPort"), ""},
		{"port 0", func(s *corev1.Service) { s.Spec.Ports[0].Port, s.Spec.Ports[0].TargetPort = 0, intstr.IntOrString{} },
			want(inv+" spec.ports[0].port", inv+" spec.ports[0].targetPort"), "must be between 1 and 65535, inclusive"},
		{"port 70000", func(s *corev1.Service) { s.Spec.Ports[0].Port = 70000 },
			want(inv + " spec.ports[0].port"), "must be between 1 and 65535, inclusive"},
		{"protocol HTTP", func(s *corev1.Service) { s.Spec.Ports[0].Protocol = "HTTP" },
			want(nsup + " spec.ports[0].protocol"), `supported values: "SCTP", "TCP", "UDP"`},
		{"appProtocol not a qualified name", func(s *corev1.Service) { s.Spec.Ports[0].AppProtocol = ptr.To("bad proto!") },
			want(inv + " spec.ports[0].appProtocol"), ""},
		{"no ports", func(s *corev1.Service) { s.Spec.Ports = nil }, want(req + " spec.ports"), ""},
		{"unknown type", func(s *corev1.Service) { s.Spec.Type = "Foo" }, want(nsup + " spec.type"), ""},
		{"ExternalName with clusterIP", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "db.example.com"
			s.Spec.ClusterIP = "10.0.0.10"
		}, want(forb + " spec.clusterIPs"), "may not be set for ExternalName services"},
		{"ExternalName without externalName", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeExternalName },
			want(req + " spec.externalName"), ""},
		{"ExternalName not a DNS name", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "Not_A_Host"
		}, want(inv + " spec.externalName"), ""},
		{"ExternalName with ipFamilies", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "db.example.com"
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		}, want(forb + " spec.ipFamilies"), ""},
		{"headless NodePort", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ClusterIP = corev1.ClusterIPNone
		}, want(inv + " spec.clusterIPs[0]"), "may not be set to 'None' for NodePort services"},
		{"headless LoadBalancer", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.ClusterIP = corev1.ClusterIPNone
		}, want(inv + " spec.clusterIPs[0]"), "may not be set to 'None' for LoadBalancer services"},
		{"session affinity timeout 0", func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To(int32(0))}}
		}, want(inv + " spec.sessionAffinityConfig.clientIP.timeoutSeconds"), "must be greater than 0 and less than 86400"},
		{"session affinity timeout 86401", func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To(int32(86401))}}
		}, want(inv + " spec.sessionAffinityConfig.clientIP.timeoutSeconds"), ""},
		{"unknown session affinity", func(s *corev1.Service) { s.Spec.SessionAffinity = "Sticky" },
			want(nsup + " spec.sessionAffinity"), ""},
		{"externalTrafficPolicy Local on ClusterIP", func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal },
			want(inv + " spec.externalTrafficPolicy"), "may only be set for externally-accessible services"},
		{"unknown externalTrafficPolicy", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ExternalTrafficPolicy = "Sometimes"
		}, want(nsup + " spec.externalTrafficPolicy"), ""},
		{"healthCheckNodePort on NodePort", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			s.Spec.HealthCheckNodePort = 30088
		}, want(inv + " spec.healthCheckNodePort"), "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"},
		{"healthCheckNodePort out of range", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			s.Spec.HealthCheckNodePort = 40000
		}, want(inv + " spec.healthCheckNodePort"), "The range of valid ports is 30000-32767"},
		{"healthCheckNodePort missing", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}, want(req + " spec.healthCheckNodePort"), ""},
		{"bad loadBalancerSourceRanges", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.LoadBalancerSourceRanges = []string{"10.0.0.0/8", "10.0.0.0/33"}
		}, want(inv + " spec.LoadBalancerSourceRanges[1]"), "must be a valid CIDR value"},
		{"loadBalancerSourceRanges on ClusterIP", func(s *corev1.Service) { s.Spec.LoadBalancerSourceRanges = []string{"10.0.0.0/8"} },
			want(forb + " spec.LoadBalancerSourceRanges"), ""},
		{"bad source-ranges annotation", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Annotations = map[string]string{corev1.AnnotationLoadBalancerSourceRangesKey: "1.2.3.4/8, nope"}
		}, want(inv+" metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]",
			inv+" metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]"), ""},
		{"name not DNS-1035", func(s *corev1.Service) { s.Name = "My_Service" }, want(inv + " metadata.name"), "DNS-1035 label"},
		{"name starts with digit", func(s *corev1.Service) { s.Name = "1web" }, want(inv + " metadata.name"), ""},
		{"namespace missing", func(s *corev1.Service) { s.Namespace = "" }, want(req + " metadata.namespace"), ""},
		{"loopback externalIP", func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"127.0.0.1"} },
			want(inv + " spec.externalIPs[0]"), "loopback"},
		{"externalIP not an IP", func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"not-an-ip"} },
			want(inv + " spec.externalIPs[0]"), ""},
		{"selector key invalid", func(s *corev1.Service) { s.Spec.Selector = map[string]string{"bad key": "x"} },
			want(inv + " spec.selector"), ""},
		{"internalTrafficPolicy unknown", func(s *corev1.Service) {
			p := corev1.ServiceInternalTrafficPolicy("Bogus")
			s.Spec.InternalTrafficPolicy = &p
		}, want(nsup + " spec.internalTrafficPolicy"), ""},
		{"trafficDistribution unknown", func(s *corev1.Service) { s.Spec.TrafficDistribution = ptr.To("Nearest") },
			want(nsup + " spec.trafficDistribution"), ""},
		{"loadBalancerClass on ClusterIP", func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr.To("example.com/lb") },
			want(forb + " spec.loadBalancerClass"), ""},
		{"loadBalancerClass malformed", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.LoadBalancerClass = ptr.To("-bad-")
		}, want(inv + " spec.loadBalancerClass"), ""},
		{"allocateLoadBalancerNodePorts on NodePort", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.AllocateLoadBalancerNodePorts = ptr.To(true)
		}, want(forb + " spec.allocateLoadBalancerNodePorts"), ""},
		{"IPv6 family on IPv4 cluster", func(s *corev1.Service) { s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol} },
			want(inv + " spec.ipFamilies[0]"), "not configured on this cluster"},
		{"RequireDualStack on single-stack cluster", func(s *corev1.Service) {
			s.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicyRequireDualStack)
		}, want(inv + " spec.ipFamilyPolicy"), "this cluster is not configured for dual-stack services"},
		{"unknown ipFamilyPolicy", func(s *corev1.Service) {
			p := corev1.IPFamilyPolicy("Sometimes")
			s.Spec.IPFamilyPolicy = &p
		}, want(nsup + " spec.ipFamilyPolicy"), ""},
		{"topology annotations disagree", func(s *corev1.Service) {
			s.Annotations = map[string]string{corev1.AnnotationTopologyMode: "Auto", corev1.DeprecatedAnnotationTopologyAwareHints: "Disabled"}
		}, want(inv + " metadata.annotations[service.kubernetes.io/topology-mode]"), ""},
	}
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc := baseService()
			tc.mutate(svc)
			defaults.Service(svc)
			errs := ValidateService(svc, testServiceOptions(t))
			if got := errKeys(errs); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("errors:\n got  %q\n want %q\nfull: %v", got, tc.want, errs.ToAggregate())
			}
			if tc.message != "" && !strings.Contains(errs.ToAggregate().Error(), tc.message) {
				t.Fatalf("message %q not in %v", tc.message, errs.ToAggregate())
			}
		})
	}
}

func TestValidateServiceValidVariants(t *testing.T) {
	cases := map[string]func(*corev1.Service){
		"plain":              func(*corev1.Service) {},
		"clusterIP in range": func(s *corev1.Service) { s.Spec.ClusterIP = "10.0.0.10" },
		"headless":           func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone; s.Spec.Ports = nil },
		"headless selectorless": func(s *corev1.Service) {
			s.Spec.ClusterIP = corev1.ClusterIPNone
			s.Spec.Selector = nil
		},
		"nodePort in range": func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort; s.Spec.Ports[0].NodePort = 30080 },
		"external name with trailing dot": func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "db.example.com."
		},
		"PreferDualStack on single stack": func(s *corev1.Service) {
			s.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicyPreferDualStack)
		},
		"externalIPs":      func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"192.0.2.10"} },
		"PreferClose":      func(s *corev1.Service) { s.Spec.TrafficDistribution = ptr.To("PreferClose") },
		"named targetPort": func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("http") },
		"source ranges on LB": func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.LoadBalancerSourceRanges = []string{" 10.0.0.0/8"}
		},
		"UDP and TCP same port": func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}, {Name: "dns-tcp", Port: 53}}
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			svc := baseService()
			mutate(svc)
			defaults.Service(svc)
			if errs := ValidateService(svc, testServiceOptions(t)); len(errs) != 0 {
				t.Fatalf("unexpected errors: %v", errs.ToAggregate())
			}
		})
	}
}

func TestValidateServiceDeferAllocated(t *testing.T) {
	svc := baseService()
	svc.Spec.Type = corev1.ServiceTypeLoadBalancer
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	defaults.Service(svc)
	opts := testServiceOptions(t)
	opts.DeferAllocatedFields = true
	if errs := ValidateService(svc, opts); len(errs) != 0 {
		t.Fatalf("unexpected errors: %v", errs.ToAggregate())
	}
}

func TestValidateServiceUpdate(t *testing.T) {
	allocated := func() *corev1.Service {
		s := baseService()
		s.Spec.ClusterIP = "10.0.0.10"
		defaults.Service(s)
		return s
	}
	cases := []struct {
		name   string
		mutate func(old, new *corev1.Service)
		want   []string
	}{
		{"no change", func(_, _ *corev1.Service) {}, nil},
		{"clusterIP changed", func(_, n *corev1.Service) {
			n.Spec.ClusterIP, n.Spec.ClusterIPs = "10.0.0.11", []string{"10.0.0.11"}
		}, want(inv + " spec.clusterIPs[0]")},
		{"clusterIP cleared", func(_, n *corev1.Service) { n.Spec.ClusterIP, n.Spec.ClusterIPs = "", nil },
			want(inv + " spec.clusterIPs[0]")},
		{"to ExternalName releases IPs", func(_, n *corev1.Service) {
			n.Spec.Type = corev1.ServiceTypeExternalName
			n.Spec.ExternalName = "db.example.com"
			n.Spec.ClusterIP, n.Spec.ClusterIPs, n.Spec.IPFamilies, n.Spec.IPFamilyPolicy, n.Spec.InternalTrafficPolicy = "", nil, nil, nil, nil
		}, nil},
		{"ipFamilies changed", func(_, n *corev1.Service) {
			n.Spec.ClusterIP, n.Spec.ClusterIPs = "", nil
			n.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
		}, want(inv+" spec.clusterIPs[0]", inv+" spec.ipFamilies[0]", inv+" spec.ipFamilies[0]")},
		{"loadBalancerClass changed", func(o, n *corev1.Service) {
			for _, s := range []*corev1.Service{o, n} {
				s.Spec.Type = corev1.ServiceTypeLoadBalancer
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
				s.Spec.AllocateLoadBalancerNodePorts = ptr.To(true)
			}
			o.Spec.LoadBalancerClass = ptr.To("example.com/a")
			n.Spec.LoadBalancerClass = ptr.To("example.com/b")
		}, want(inv + " spec.loadBalancerClass")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old, nw := allocated(), allocated()
			tc.mutate(old, nw)
			errs := ValidateServiceUpdate(nw, old, testServiceOptions(t))
			if got := errKeys(errs); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("errors:\n got  %q\n want %q\nfull: %v", got, tc.want, errs.ToAggregate())
			}
		})
	}
}

func TestValidateServiceUpdateKeepsOutOfRangeIP(t *testing.T) {
	// An IP allocated under an older, wider range stays writable.
	old := baseService()
	old.Spec.ClusterIP = "10.0.171.239"
	defaults.Service(old)
	nw := old.DeepCopy()
	nw.Labels = map[string]string{"touched": "yes"}
	if errs := ValidateServiceUpdate(nw, old, testServiceOptions(t)); len(errs) != 0 {
		t.Fatalf("unexpected errors: %v", errs.ToAggregate())
	}
}

func TestValidateServiceStatusUpdate(t *testing.T) {
	lb := baseService()
	lb.Spec.Type = corev1.ServiceTypeLoadBalancer
	defaults.Service(lb)
	cases := []struct {
		name    string
		ingress []corev1.LoadBalancerIngress
		svcType corev1.ServiceType
		want    []string
	}{
		{"ip with mode", []corev1.LoadBalancerIngress{{IP: "146.148.47.155", IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)}}, "", nil},
		{"hostname", []corev1.LoadBalancerIngress{{Hostname: "lb.example.com"}}, "", nil},
		{"bad ip", []corev1.LoadBalancerIngress{{IP: "nope", IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)}}, "", want(inv + " status.loadBalancer.ingress[0].ip")},
		{"ip without mode", []corev1.LoadBalancerIngress{{IP: "146.148.47.155"}}, "", want(req + " status.loadBalancer.ingress[0].ipMode")},
		{"mode without ip", []corev1.LoadBalancerIngress{{Hostname: "lb.example.com", IPMode: ptr.To(corev1.LoadBalancerIPModeProxy)}}, "", want(forb + " status.loadBalancer.ingress[0].ipMode")},
		{"unknown mode", []corev1.LoadBalancerIngress{{IP: "146.148.47.155", IPMode: ptr.To(corev1.LoadBalancerIPMode("Magic"))}}, "", want(nsup + " status.loadBalancer.ingress[0].ipMode")},
		{"hostname is an IP", []corev1.LoadBalancerIngress{{Hostname: "1.2.3.4"}}, "", want(inv + " status.loadBalancer.ingress[0].hostname")},
		{"bad port", []corev1.LoadBalancerIngress{{Hostname: "lb.example.com", Ports: []corev1.PortStatus{{Port: 0, Protocol: corev1.ProtocolTCP}}}}, "", want(inv + " status.loadBalancer.ingress[0].ports[0].port")},
		{"not a LoadBalancer", []corev1.LoadBalancerIngress{{Hostname: "lb.example.com"}}, corev1.ServiceTypeClusterIP, want(forb + " status.loadBalancer.ingress")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nw := lb.DeepCopy()
			if tc.svcType != "" {
				nw.Spec.Type = tc.svcType
			}
			nw.Status.LoadBalancer.Ingress = tc.ingress
			errs := ValidateServiceStatusUpdate(nw, lb)
			if got := errKeys(errs); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("errors:\n got  %q\n want %q\nfull: %v", got, tc.want, errs.ToAggregate())
			}
		})
	}
}

func TestValidateTopologyKeys(t *testing.T) {
	seventeen := make([]string, 17)
	for i := range seventeen {
		seventeen[i] = fmt.Sprintf("example.com/key-%d", i)
	}
	cases := []struct {
		name string
		keys []string
		want []string
	}{
		{"seed example", []string{"kubernetes.io/hostname", "*"}, nil},
		{"zone region any", []string{"topology.kubernetes.io/zone", "topology.kubernetes.io/region", "*"}, nil},
		{"star not last", []string{"*", "kubernetes.io/hostname"}, want(inv + " spec.topologyKeys[0]")},
		{"17 keys", seventeen, want(many + " spec.topologyKeys")},
		{"duplicate", []string{"kubernetes.io/hostname", "kubernetes.io/hostname"}, want(dup + " spec.topologyKeys[1]")},
		{"not a label name", []string{"not a key"}, want(inv + " spec.topologyKeys[0]")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := ValidateTopologyKeys(tc.keys, field.NewPath("spec", "topologyKeys"))
			if got := errKeys(errs); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("errors:\n got  %q\n want %q", got, tc.want)
			}
		})
	}
	if errs := ValidateTopologyKeys([]string{"*", "a"}, field.NewPath("spec", "topologyKeys")); !strings.Contains(errs.ToAggregate().Error(), `"*" must be the last value specified`) {
		t.Fatalf("wrong message: %v", errs.ToAggregate())
	}
	svc := baseService()
	svc.Spec.Type = corev1.ServiceTypeNodePort
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	if got := errKeys(ValidateServiceTopologyKeys(svc, []string{"*"})); len(got) != 1 || got[0] != forb+" spec.topologyKeys" {
		t.Fatalf("want forbidden with Local, got %q", got)
	}
}

func TestTopologyKeysWarning(t *testing.T) {
	if w := TopologyKeysWarning(nil); w != nil {
		t.Fatalf("no keys should mean no warning, got %q", w)
	}
	w := TopologyKeysWarning([]string{"kubernetes.io/hostname", "*"})
	if len(w) != 1 || !strings.Contains(w[0], "spec.trafficDistribution") || !strings.Contains(w[0], "1.22") {
		t.Fatalf("unexpected warning %q", w)
	}
}
