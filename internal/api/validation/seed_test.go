package validation

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/portal-net/portal/internal/api/defaults"
)

type seedDoc struct {
	file string
	idx  int
	raw  []byte
	kind string
}

func loadSeedDocs(t *testing.T) []seedDoc {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "seed*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no seed fixtures: %v", err)
	}
	var docs []seedDoc
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, part := range strings.Split(string(data), "\n---\n") {
			var head struct {
				Kind string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(part), &head); err != nil {
				t.Fatalf("%s doc %d: %v", f, i, err)
			}
			docs = append(docs, seedDoc{file: filepath.Base(f), idx: i, raw: []byte(part), kind: head.Kind})
		}
	}
	return docs
}

// The API server fills the namespace in from the request path.
func withNamespace(ns string) string {
	if ns == "" {
		return "default"
	}
	return ns
}

func TestSeedManifests(t *testing.T) {
	opts := ServiceOptions{
		ServiceCIDRs:  []*net.IPNet{mustCIDR(t, "10.0.0.0/24")},
		NodePortRange: DefaultNodePortRange,
	}
	counts := map[string]int{}
	for _, d := range loadSeedDocs(t) {
		counts[d.kind]++
		name := d.file + "#" + string(rune('0'+d.idx))
		t.Run(name, func(t *testing.T) {
			switch d.kind {
			case "Service":
				var svc corev1.Service
				if err := yaml.Unmarshal(d.raw, &svc); err != nil {
					t.Fatal(err)
				}
				svc.Namespace = withNamespace(svc.Namespace)
				defaults.Service(&svc)
				checkSeedServiceDefaults(t, &svc)
				errs := ValidateService(&svc, opts)
				if svc.Spec.ClusterIP == "10.0.171.239" {
					if got := errKeys(errs); len(got) != 1 || got[0] != inv+" spec.clusterIPs[0]" {
						t.Fatalf("want one clusterIPs[0] error, got %q", got)
					}
					if !strings.Contains(errs.ToAggregate().Error(), "The range of valid IPs is 10.0.0.0/24") {
						t.Fatalf("message does not name the range: %v", errs.ToAggregate())
					}
					return
				}
				if len(errs) != 0 {
					t.Fatalf("%s: unexpected errors: %v", svc.Name, errs.ToAggregate())
				}
				var raw struct {
					Spec struct {
						TopologyKeys []string `json:"topologyKeys"`
					} `json:"spec"`
				}
				if err := yaml.Unmarshal(d.raw, &raw); err != nil {
					t.Fatal(err)
				}
				if keys := raw.Spec.TopologyKeys; len(keys) > 0 {
					if errs := ValidateTopologyKeys(keys, field.NewPath("spec", "topologyKeys")); len(errs) != 0 {
						t.Fatalf("topologyKeys: %v", errs.ToAggregate())
					}
					if len(TopologyKeysWarning(keys)) != 1 {
						t.Fatal("want a deprecation warning for topologyKeys")
					}
				}
			case "Endpoints":
				var ep corev1.Endpoints
				if err := yaml.Unmarshal(d.raw, &ep); err != nil {
					t.Fatal(err)
				}
				ep.Namespace = withNamespace(ep.Namespace)
				defaults.Endpoints(&ep)
				if p := ep.Subsets[0].Ports[0].Protocol; p != corev1.ProtocolTCP {
					t.Fatalf("protocol defaulted to %q", p)
				}
				if errs := ValidateEndpoints(&ep); len(errs) != 0 {
					t.Fatalf("unexpected errors: %v", errs.ToAggregate())
				}
			case "Pod":
				var pod corev1.Pod
				if err := yaml.Unmarshal(d.raw, &pod); err != nil {
					t.Fatal(err)
				}
				pod.Namespace = withNamespace(pod.Namespace)
				defaults.Pod(&pod)
				defaults.DefaultTolerations(&pod)
				defaults.DefaultPriority(&pod)
				c := pod.Spec.Containers[0]
				if c.ImagePullPolicy != corev1.PullIfNotPresent || pod.Spec.RestartPolicy != corev1.RestartPolicyAlways ||
					len(pod.Spec.Tolerations) != 2 {
					t.Fatalf("defaults not applied: %+v", pod.Spec)
				}
				if errs := ValidatePod(&pod); len(errs) != 0 {
					t.Fatalf("unexpected errors: %v", errs.ToAggregate())
				}
			default:
				t.Fatalf("unexpected kind %q", d.kind)
			}
		})
	}
	if counts["Service"] != 12 || counts["Endpoints"] != 1 || counts["Pod"] != 1 {
		t.Fatalf("fixture count drifted: %v", counts)
	}
}

// checkSeedServiceDefaults asserts what kubectl get -o yaml would show for
// every seed Service after defaulting.
func checkSeedServiceDefaults(t *testing.T, svc *corev1.Service) {
	t.Helper()
	s := svc.Spec
	if s.SessionAffinity == "" {
		t.Fatal("sessionAffinity not defaulted")
	}
	for i, p := range s.Ports {
		if p.Protocol != corev1.ProtocolTCP {
			t.Fatalf("ports[%d].protocol = %q", i, p.Protocol)
		}
		if p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal == 0 {
			t.Fatalf("ports[%d].targetPort not defaulted", i)
		}
	}
	if s.Type == corev1.ServiceTypeExternalName {
		if s.IPFamilyPolicy != nil || len(s.IPFamilies) != 0 || s.InternalTrafficPolicy != nil {
			t.Fatalf("ExternalName got IP fields: %+v", s)
		}
		return
	}
	if len(s.IPFamilies) != 1 || s.IPFamilies[0] != corev1.IPv4Protocol || s.IPFamilyPolicy == nil {
		t.Fatalf("ip families: %v %v", s.IPFamilies, s.IPFamilyPolicy)
	}
	if s.InternalTrafficPolicy == nil || *s.InternalTrafficPolicy != corev1.ServiceInternalTrafficPolicyCluster {
		t.Fatal("internalTrafficPolicy not defaulted")
	}
	if s.SessionAffinity == corev1.ServiceAffinityClientIP && *s.SessionAffinityConfig.ClientIP.TimeoutSeconds != 10 {
		t.Fatal("explicit timeoutSeconds overwritten")
	}
}
