package e2e

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func seed(name string) string { return filepath.Join("testdata", "seeds", name) }

var serviceCIDR = func() *net.IPNet { _, n, _ := net.ParseCIDR("10.0.0.0/24"); return n }()

// getService reads a service back as JSON through kubectl.
func getService(t *testing.T, s *server, ns, name string) *corev1.Service {
	t.Helper()
	out := s.mustKubectl("get", "svc", name, "-n", ns, "-o", "json")
	var svc corev1.Service
	if err := json.Unmarshal([]byte(out), &svc); err != nil {
		t.Fatal(err)
	}
	return &svc
}

func TestSeedsApplyUnchanged(t *testing.T) {
	s := startServer(t)
	type check func(t *testing.T, svc *corev1.Service)
	cases := []struct {
		file, ns, name string
		check          check
	}{
		{"000-play-app-svc.yaml", "seed-a", "play-app-svc", func(t *testing.T, svc *corev1.Service) {
			p := svc.Spec.Ports[0]
			if p.Protocol != corev1.ProtocolTCP || p.Port != 9000 || p.TargetPort.IntValue() != 9000 {
				t.Errorf("port %+v", p)
			}
		}},
		{"000-named-port.yaml", "seed-b", "play-app-svc", func(t *testing.T, svc *corev1.Service) {
			p := svc.Spec.Ports[0]
			if p.Name != "http" || p.TargetPort.IntValue() != 9000 {
				t.Errorf("targetPort should default to port: %+v", p)
			}
		}},
		{"000-no-selector.yaml", "seed-c", "play-app-svc-no-selector", func(t *testing.T, svc *corev1.Service) {
			if svc.Spec.Selector != nil {
				t.Errorf("selector %v", svc.Spec.Selector)
			}
		}},
		{"000-externalname.yaml", "prod", "my-service", func(t *testing.T, svc *corev1.Service) {
			if svc.Spec.Type != corev1.ServiceTypeExternalName || svc.Spec.ExternalName != "my.database.example.com" || svc.Spec.ClusterIP != "" {
				t.Errorf("externalName service %+v", svc.Spec)
			}
		}},
		{"002-session-affinity.yaml", "seed-d", "my-service", func(t *testing.T, svc *corev1.Service) {
			c := svc.Spec.SessionAffinityConfig
			if svc.Spec.SessionAffinity != corev1.ServiceAffinityClientIP || c == nil || *c.ClientIP.TimeoutSeconds != 10 {
				t.Errorf("affinity %s %+v", svc.Spec.SessionAffinity, c)
			}
		}},
		{"002-nodeport-local.yaml", "seed-e", "my-service", func(t *testing.T, svc *corev1.Service) {
			np := svc.Spec.Ports[0].NodePort
			if svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal || np < 30000 || np > 32767 {
				t.Errorf("etp %s nodePort %d", svc.Spec.ExternalTrafficPolicy, np)
			}
		}},
		{"002-lb-healthcheck.yaml", "seed-f", "my-service", func(t *testing.T, svc *corev1.Service) {
			if svc.Spec.HealthCheckNodePort != 30088 || svc.Spec.Ports[0].NodePort == 0 || svc.Spec.AllocateLoadBalancerNodePorts == nil || !*svc.Spec.AllocateLoadBalancerNodePorts {
				t.Errorf("healthCheckNodePort %d nodePort %d", svc.Spec.HealthCheckNodePort, svc.Spec.Ports[0].NodePort)
			}
		}},
		{"002-topology-keys.yaml", "seed-g", "my-service", nil},
		{"002-headless.yaml", "seed-h", "my-service", func(t *testing.T, svc *corev1.Service) {
			if svc.Spec.ClusterIP != "None" {
				t.Errorf("clusterIP %q", svc.Spec.ClusterIP)
			}
		}},
		{"002-subdomain.yaml", "seed-i", "default-subdomain", func(t *testing.T, svc *corev1.Service) {
			if svc.Spec.ClusterIP != "None" || svc.Spec.Ports[0].Name != "foo" {
				t.Errorf("spec %+v", svc.Spec)
			}
		}},
		{"002-externalname.yaml", "seed-j", "sample-externalname", func(t *testing.T, svc *corev1.Service) {
			if svc.Spec.ExternalName != "thisis.externalname.com" {
				t.Errorf("externalName %q", svc.Spec.ExternalName)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			s.kubectl("create", "namespace", tc.ns)
			out, errOut, err := s.kubectl("apply", "-n", tc.ns, "-f", seed(tc.file))
			if err != nil {
				t.Fatalf("apply: %v\n%s%s", err, out, errOut)
			}
			svc := getService(t, s, tc.ns, tc.name)
			spec := svc.Spec
			// Defaults every seed service must read back with.
			if spec.Type == "" || spec.SessionAffinity == "" {
				t.Errorf("type %q sessionAffinity %q", spec.Type, spec.SessionAffinity)
			}
			if spec.Type != corev1.ServiceTypeExternalName {
				if spec.InternalTrafficPolicy == nil || *spec.InternalTrafficPolicy != corev1.ServiceInternalTrafficPolicyCluster {
					t.Errorf("internalTrafficPolicy %v", spec.InternalTrafficPolicy)
				}
				if len(spec.IPFamilies) != 1 || spec.IPFamilies[0] != corev1.IPv4Protocol || spec.IPFamilyPolicy == nil {
					t.Errorf("ipFamilies %v policy %v", spec.IPFamilies, spec.IPFamilyPolicy)
				}
				if spec.ClusterIP != "None" && !serviceCIDR.Contains(net.ParseIP(spec.ClusterIP)) {
					t.Errorf("clusterIP %q outside 10.0.0.0/24", spec.ClusterIP)
				}
				for _, p := range spec.Ports {
					if p.Protocol != corev1.ProtocolTCP || p.TargetPort.IntValue() == 0 && p.TargetPort.String() == "0" {
						t.Errorf("port defaults %+v", p)
					}
				}
			}
			if spec.Type == corev1.ServiceTypeNodePort || spec.Type == corev1.ServiceTypeLoadBalancer {
				if spec.ExternalTrafficPolicy == "" {
					t.Error("externalTrafficPolicy not defaulted")
				}
			}
			if spec.SessionAffinity == corev1.ServiceAffinityNone && spec.SessionAffinityConfig != nil {
				t.Errorf("sessionAffinityConfig without ClientIP: %+v", spec.SessionAffinityConfig)
			}
			if tc.check != nil {
				tc.check(t, svc)
			}
		})
	}

	t.Run("ClientIP affinity defaults its timeout to 10800", func(t *testing.T) {
		m := strings.Replace(readSeed(t, "002-session-affinity.yaml"), "    sessionAffinityConfig:\n        clientIP:\n            timeoutSeconds: 10\n", "", 1)
		s.kubectl("create", "namespace", "seed-k")
		if out, errOut, err := s.kubectlIn(m, "apply", "-n", "seed-k", "-f", "-"); err != nil {
			t.Fatalf("%v %s%s", err, out, errOut)
		}
		svc := getService(t, s, "seed-k", "my-service")
		if c := svc.Spec.SessionAffinityConfig; c == nil || c.ClientIP == nil || *c.ClientIP.TimeoutSeconds != 10800 {
			t.Fatalf("sessionAffinityConfig %+v", c)
		}
	})

	t.Run("topologyKeys kept, shown and warned about", func(t *testing.T) {
		_, errOut, err := s.kubectl("apply", "-n", "seed-g", "-f", seed("002-topology-keys.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		_ = errOut
		yaml := s.mustKubectl("get", "svc", "my-service", "-n", "seed-g", "-o", "yaml")
		if !strings.Contains(yaml, "topologyKeys:\n  - kubernetes.io/hostname\n  - '*'") {
			t.Errorf("-o yaml lacks topologyKeys:\n%s", yaml)
		}
		// A fresh create shows the warning.
		s.kubectl("create", "namespace", "seed-g2")
		_, errOut, err = s.kubectl("create", "-n", "seed-g2", "-f", seed("002-topology-keys.yaml"))
		if err != nil || !strings.Contains(errOut, "Warning:") || !strings.Contains(errOut, "trafficDistribution") {
			t.Errorf("want a warning recommending trafficDistribution, got err=%v stderr=%q", err, errOut)
		}
	})

	t.Run("hand-written Endpoints of the selector-less service", func(t *testing.T) {
		s.mustKubectl("apply", "-n", "seed-c", "-f", seed("000-no-selector-endpoints.yaml"))
		out := s.mustKubectl("get", "endpoints", "-n", "seed-c")
		r := row(out, "play-app-svc-no-selector")
		if len(r) < 2 || r[1] != "10.3.42.250:30050" {
			t.Fatalf("get endpoints:\n%s", out)
		}
		// The mirroring controller publishes it as an EndpointSlice too,
		// which is what proxies and DNS read.
		waitFor(t, 10*time.Second, "mirrored EndpointSlice", func() bool {
			got, _, _ := s.kubectl("get", "endpointslices", "-n", "seed-c", "-l", "kubernetes.io/service-name=play-app-svc-no-selector",
				"-o", `jsonpath={.items[*].metadata.labels.endpointslice\.kubernetes\.io/managed-by} {.items[*].endpoints[*].addresses[0]}:{.items[*].ports[0].port}`)
			return got == "endpointslicemirroring-controller.k8s.io 10.3.42.250:30050"
		})
	})

	t.Run("ExternalName services get no endpoints", func(t *testing.T) {
		// Give the controllers time to act wrongly, then look.
		time.Sleep(time.Second)
		for _, ns := range []string{"prod", "seed-j"} {
			out := s.mustKubectl("get", "endpointslices,endpoints", "-n", ns, "-o", "name")
			if strings.TrimSpace(out) != "" {
				t.Errorf("namespace %s has %s", ns, out)
			}
		}
	})

	t.Run("the busybox pod of the subdomain example", func(t *testing.T) {
		pod, err := s.client().CoreV1().Pods("seed-i").Get(context.Background(), "busybox1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if pod.Spec.Hostname != "busybox-1" || pod.Spec.Subdomain != "default-subdomain" || pod.Spec.Containers[0].Command[1] != "3600" {
			t.Errorf("pod %+v", pod.Spec)
		}
	})

	t.Run("ExternalName shows its name in EXTERNAL-IP", func(t *testing.T) {
		out := s.mustKubectl("get", "svc", "-n", "prod")
		r := row(out, "my-service")
		if len(r) < 4 || r[1] != "ExternalName" || r[3] != "my.database.example.com" {
			t.Fatalf("get svc -n prod:\n%s", out)
		}
	})
}

func readSeed(t *testing.T, name string) string {
	t.Helper()
	b, err := readFile(seed(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSeedExamplesThatMustFail(t *testing.T) {
	s := startServer(t)
	c := s.client()
	ctx := context.Background()

	t.Run("LoadBalancer with clusterIP 10.0.171.239: 422 naming the range", func(t *testing.T) {
		_, errOut, err := s.kubectl("apply", "-v=6", "-f", seed("000-loadbalancer.yaml"))
		if err == nil {
			t.Fatal("apply succeeded")
		}
		for _, want := range []string{"422", "spec.clusterIPs[0]", "10.0.171.239", "The range of valid IPs is 10.0.0.0/24"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr lacks %q:\n%s", want, lastLines(errOut, 5))
			}
		}
		if _, err := c.CoreV1().Services("default").Get(ctx, "my-service", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("stored anyway: %v", err)
		}
	})

	t.Run("ports written as a map: a decoding error naming spec.ports", func(t *testing.T) {
		_, errOut, err := s.kubectl("apply", "-f", seed("002-map-ports.yaml"))
		if err == nil {
			t.Fatal("apply succeeded")
		}
		if !strings.Contains(errOut, "spec.ports") {
			t.Errorf("error does not name spec.ports:\n%s", errOut)
		}
		if _, err := c.CoreV1().Services("default").Get(ctx, "sample-externalname", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("stored anyway: %v", err)
		}
		// The server keeps serving.
		out := s.mustKubectl("get", "svc")
		if row(out, "kubernetes") == nil {
			t.Errorf("get svc after the bad apply:\n%s", out)
		}
	})
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
