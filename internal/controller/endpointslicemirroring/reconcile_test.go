package endpointslicemirroring

import (
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func seedService() *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "play-app-svc-no-selector", Namespace: "seed-c", UID: "svc-uid"},
		Spec:       v1.ServiceSpec{Ports: []v1.ServicePort{{Protocol: v1.ProtocolTCP, Port: 30050}}},
	}
}

func seedEndpoints() *v1.Endpoints {
	return &v1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "play-app-svc-no-selector", Namespace: "seed-c", UID: "ep-uid",
			Annotations: map[string]string{v1.LastAppliedConfigAnnotation: "{}", "note": "hand-written"}},
		Subsets: []v1.EndpointSubset{{Addresses: []v1.EndpointAddress{{IP: "10.3.42.250"}}, Ports: []v1.EndpointPort{{Port: 30050}}}},
	}
}

func describe(s *discovery.EndpointSlice) string {
	out := string(s.AddressType)
	for _, p := range s.Ports {
		out += fmt.Sprintf(" port=%q:%d/%s", *p.Name, *p.Port, *p.Protocol)
	}
	for _, e := range s.Endpoints {
		out += fmt.Sprintf(" %s(ready=%v)", e.Addresses[0], *e.Conditions.Ready)
		if e.Hostname != nil {
			out += " host=" + *e.Hostname
		}
	}
	return out
}

func TestMirrorSeed000(t *testing.T) {
	p := Reconcile(seedService(), seedEndpoints(), nil, 0)
	if len(p.Create) != 1 || len(p.Update)+len(p.Delete) != 0 {
		t.Fatalf("want one create, got %d/%d/%d", len(p.Create), len(p.Update), len(p.Delete))
	}
	s := p.Create[0]
	if got, want := describe(s), `IPv4 port="":30050/TCP 10.3.42.250(ready=true)`; got != want {
		t.Errorf("slice = %s, want %s", got, want)
	}
	if s.Labels[discovery.LabelServiceName] != "play-app-svc-no-selector" || s.Labels[discovery.LabelManagedBy] != "endpointslicemirroring-controller.k8s.io" {
		t.Errorf("labels = %v", s.Labels)
	}
	if s.GenerateName != "play-app-svc-no-selector-" || s.Namespace != "seed-c" {
		t.Errorf("generateName %q namespace %q", s.GenerateName, s.Namespace)
	}
	if len(s.Annotations) != 1 || s.Annotations["note"] != "hand-written" {
		t.Errorf("annotations = %v, want only note", s.Annotations)
	}
	if o := s.OwnerReferences; len(o) != 1 || o[0].Kind != "Endpoints" || o[0].UID != "ep-uid" || !*o[0].Controller {
		t.Errorf("ownerReferences = %+v", o)
	}

	// Stable once written.
	s.Name = "play-app-svc-no-selector-abcde"
	if p := Reconcile(seedService(), seedEndpoints(), []*discovery.EndpointSlice{s}, 0); !p.Empty() {
		t.Fatalf("unchanged: got %d/%d/%d", len(p.Create), len(p.Update), len(p.Delete))
	}
}

func TestMirrorCases(t *testing.T) {
	ep := seedEndpoints()
	ep.Subsets = []v1.EndpointSubset{
		{
			Addresses:         []v1.EndpointAddress{{IP: "10.0.0.2", Hostname: "b"}, {IP: "10.0.0.1"}, {IP: "fd00::1"}, {IP: "not-an-ip"}},
			NotReadyAddresses: []v1.EndpointAddress{{IP: "10.0.0.3"}},
			Ports:             []v1.EndpointPort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}},
		},
		{
			Addresses: []v1.EndpointAddress{{IP: "10.0.1.1"}},
			Ports:     []v1.EndpointPort{{Name: "dns", Port: 53, Protocol: v1.ProtocolUDP}},
		},
	}
	p := Reconcile(seedService(), ep, nil, 0)
	got := map[string]bool{}
	for _, s := range p.Create {
		got[describe(s)] = true
	}
	for _, want := range []string{
		`IPv4 port="http":80/TCP 10.0.0.1(ready=true) 10.0.0.2(ready=true) host=b 10.0.0.3(ready=false)`,
		`IPv4 port="dns":53/UDP 10.0.1.1(ready=true)`,
		`IPv6 port="http":80/TCP fd00::1(ready=true)`,
	} {
		if !got[want] {
			t.Errorf("missing slice %s; got %v", want, got)
		}
	}
	if len(p.Create) != 3 {
		t.Errorf("want 3 slices, got %d", len(p.Create))
	}

	existing := []*discovery.EndpointSlice{p.Create[0].DeepCopy()}
	existing[0].Name = "x"
	skip := seedEndpoints()
	skip.Labels = map[string]string{discovery.LabelSkipMirror: "true"}
	selector := seedService()
	selector.Spec.Selector = map[string]string{"app": "x"}
	for name, tc := range map[string]struct {
		svc *v1.Service
		ep  *v1.Endpoints
	}{
		"skip-mirror label":      {seedService(), skip},
		"service has a selector": {selector, seedEndpoints()},
		"service deleted":        {nil, seedEndpoints()},
		"endpoints deleted":      {seedService(), nil},
	} {
		t.Run(name, func(t *testing.T) {
			p := Reconcile(tc.svc, tc.ep, existing, 0)
			if len(p.Delete) != 1 || len(p.Create)+len(p.Update) != 0 {
				t.Errorf("want the mirrored slice deleted, got %d/%d/%d", len(p.Create), len(p.Update), len(p.Delete))
			}
		})
	}

	// Mirroring caps each subset.
	big := seedEndpoints()
	big.Subsets[0].Addresses = nil
	for i := range 1005 {
		big.Subsets[0].Addresses = append(big.Subsets[0].Addresses, v1.EndpointAddress{IP: fmt.Sprintf("10.5.%d.%d", i/250, i%250+1)})
	}
	p = Reconcile(seedService(), big, nil, 0)
	if len(p.Create) != 1 || len(p.Create[0].Endpoints) != 1000 {
		t.Errorf("want 1000 endpoints in one slice, got %d slices", len(p.Create))
	}
}
