package proxy

import (
	"os"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// seedServices decodes the Service manifests of testdata/seed002.yaml (from
// seed 002) with the cluster IP and node port the API server would assign,
// and their spec.topologyKeys (which v1 drops) beside them.
func seedServices(t *testing.T) ([]*v1.Service, map[*v1.Service][]string) {
	t.Helper()
	data, err := os.ReadFile("testdata/seed002.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var svcs []*v1.Service
	keys := map[*v1.Service][]string{}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var s v1.Service
		var raw struct {
			Spec struct {
				TopologyKeys []string `json:"topologyKeys"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal([]byte(doc), &s); err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal([]byte(doc), &raw); err != nil {
			t.Fatal(err)
		}
		if s.Kind != "Service" {
			continue
		}
		s.Namespace = "ns"
		if s.Spec.ClusterIP == "" && s.Spec.Type != v1.ServiceTypeExternalName {
			s.Spec.ClusterIP = "10.0.0.10"
		}
		s.Spec.ClusterIPs = []string{s.Spec.ClusterIP}
		for i := range s.Spec.Ports {
			if s.Spec.Type == v1.ServiceTypeNodePort || s.Spec.Type == v1.ServiceTypeLoadBalancer {
				s.Spec.Ports[i].NodePort = 30080
			}
		}
		svcs = append(svcs, &s)
		keys[&s] = raw.Spec.TopologyKeys
	}
	if len(svcs) != 7 {
		t.Fatalf("seed002: %d services, want 7", len(svcs))
	}
	return svcs, keys
}

func TestSeed002(t *testing.T) {
	svcs, keys := seedServices(t)
	name := spn("my-service", "", v1.ProtocolTCP)
	eps := slice("my-service-1", "my-service", []slicePortSpec{{"", 9376, v1.ProtocolTCP}},
		ep("10.1.0.1", "n1", "a"), ep("10.1.0.2", "n2", "a"))
	n3 := NodeInfo{Name: "n3", Labels: testNodeLabels["n3"], NodeLabels: n1.NodeLabels}

	// setup feeds one seed service and the slice to a tracker on node n1.
	setup := func(s *v1.Service) (Changes, *ServicePort, []Endpoint) {
		tr := NewTracker(TrackerConfig{NodeName: "n1", TopologyKeys: func(s *v1.Service) []string { return keys[s] }})
		tr.Services.Update(nil, s)
		tr.Endpoints.Update(nil, eps)
		ch := tr.Take()
		return ch, ch.Services[name], ch.Endpoints[name]
	}
	check := func(t *testing.T, sel Selection, cluster, external string, local int) {
		t.Helper()
		if got := strings.Join(epStrings(sel.Cluster), " "); got != cluster {
			t.Errorf("cluster = %q, want %q", got, cluster)
		}
		if got := strings.Join(epStrings(sel.External), " "); got != external {
			t.Errorf("external = %q, want %q", got, external)
		}
		if len(sel.Local) != local {
			t.Errorf("local = %d, want %d", len(sel.Local), local)
		}
	}
	both := "10.1.0.1:9376 10.1.0.2:9376"

	t.Run("0 session affinity 10s", func(t *testing.T) {
		_, sp, e := setup(svcs[0])
		if !sp.SessionAffinityClientIP || sp.StickyMaxAgeSeconds != 10 {
			t.Fatalf("affinity: %+v", sp)
		}
		check(t, Select(sp, e, n1), both, both, 1)
	})
	t.Run("1 NodePort externalTrafficPolicy Local", func(t *testing.T) {
		_, sp, e := setup(svcs[1])
		if !sp.ExternalPolicyLocal || sp.NodePort != 30080 || sp.HealthCheckNodePort != 0 {
			t.Fatalf("port: %+v", sp)
		}
		check(t, Select(sp, e, n1), both, "10.1.0.1:9376", 1)
		sel := Select(sp, e, n3) // no pod on n3: external traffic dropped
		check(t, sel, both, "", 0)
		if sel.ExternalReject {
			t.Error("eTP Local without local endpoint must drop, not reject")
		}
	})
	t.Run("2 LoadBalancer healthCheckNodePort", func(t *testing.T) {
		_, sp, e := setup(svcs[2])
		if sp.HealthCheckNodePort != 30088 || !sp.ExternalPolicyLocal {
			t.Fatalf("port: %+v", sp)
		}
		check(t, Select(sp, e, n1), both, "10.1.0.1:9376", 1)
	})
	t.Run("3 topologyKeys hostname then any", func(t *testing.T) {
		_, sp, e := setup(svcs[3])
		if strings.Join(sp.TopologyKeys, ",") != "kubernetes.io/hostname,*" {
			t.Fatalf("topologyKeys = %q", sp.TopologyKeys)
		}
		check(t, Select(sp, e, n1), "10.1.0.1:9376", "10.1.0.1:9376", 1) // same node preferred
		check(t, Select(sp, e, n3), both, both, 0)                       // none on n3: "*"
	})
	for i, s := range svcs[4:] {
		t.Run("not proxied "+s.Name, func(t *testing.T) {
			ch, _, _ := setup(svcs[4+i])
			if len(ch.Services) != 0 || len(ch.Changed) != 0 {
				t.Fatalf("headless/ExternalName proxied: %v", ch.Services)
			}
		})
	}
}
