package endpointslice

import (
	"sort"
	"strconv"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/portal-net/portal/internal/controller/internal/ctltest"
)

// endpointView is what a client of the slice sees for one endpoint.
type endpointView struct {
	ip, pod, ready, serving, terminating, hostname, node, zone string
}

func view(ss []*discovery.EndpointSlice) map[string][]endpointView {
	out := map[string][]endpointView{}
	for _, sl := range ss {
		var ports []string
		for _, p := range sl.Ports {
			ports = append(ports, ctltest.String(p.Name)+":"+strconv.Itoa(int(*p.Port))+"/"+string(*p.Protocol))
		}
		sort.Strings(ports)
		k := strings.Join(ports, ",")
		for _, ep := range sl.Endpoints {
			out[k] = append(out[k], endpointView{
				ip: ep.Addresses[0], pod: ep.TargetRef.Name,
				ready: ctltest.Bool(ep.Conditions.Ready), serving: ctltest.Bool(ep.Conditions.Serving), terminating: ctltest.Bool(ep.Conditions.Terminating),
				hostname: ctltest.String(ep.Hostname), node: ctltest.String(ep.NodeName), zone: ctltest.String(ep.Zone),
			})
		}
		out[k] = out[k] // an empty slice still shows up as a port group
	}
	for k := range out {
		sort.Slice(out[k], func(i, j int) bool { return out[k][i].ip < out[k][j].ip })
	}
	return out
}

func TestReconcileEndpoints(t *testing.T) {
	withHost := func(p *v1.Pod) { p.Spec.Hostname = "web-0"; p.Spec.Subdomain = "web" }
	tests := []struct {
		name  string
		svc   *v1.Service
		pods  []*v1.Pod
		zones map[string]string
		want  map[string][]endpointView
	}{
		{
			name:  "three ready pods make one slice of three ready endpoints",
			svc:   ctltest.Service("web"),
			pods:  []*v1.Pod{ctltest.Pod("a", "web", "10.1.0.1", true), ctltest.Pod("b", "web", "10.1.0.2", true), ctltest.Pod("c", "web", "10.1.0.3", true)},
			zones: map[string]string{"node-a": "zone-1"},
			want: map[string][]endpointView{"http:8080/TCP": {
				{"10.1.0.1", "a", "true", "true", "false", "nil", "node-a", "zone-1"},
				{"10.1.0.2", "b", "true", "true", "false", "nil", "node-a", "zone-1"},
				{"10.1.0.3", "c", "true", "true", "false", "nil", "node-a", "zone-1"},
			}},
		},
		{
			name: "unready pod is ready=false serving=false",
			svc:  ctltest.Service("web"),
			pods: []*v1.Pod{ctltest.Pod("a", "web", "10.1.0.1", false)},
			want: map[string][]endpointView{"http:8080/TCP": {{"10.1.0.1", "a", "false", "false", "false", "nil", "node-a", "nil"}}},
		},
		{
			name: "terminating ready pod keeps serving but is not ready",
			svc:  ctltest.Service("web"),
			pods: []*v1.Pod{ctltest.Pod("a", "web", "10.1.0.1", true, ctltest.Terminating), ctltest.Pod("b", "web", "10.1.0.2", false, ctltest.Terminating)},
			want: map[string][]endpointView{"http:8080/TCP": {
				{"10.1.0.1", "a", "false", "true", "true", "nil", "node-a", "nil"},
				{"10.1.0.2", "b", "false", "false", "true", "nil", "node-a", "nil"},
			}},
		},
		{
			name: "publishNotReadyAddresses makes every endpoint ready",
			svc:  ctltest.Service("web", func(s *v1.Service) { s.Spec.PublishNotReadyAddresses = true }),
			pods: []*v1.Pod{ctltest.Pod("a", "web", "10.1.0.1", false), ctltest.Pod("b", "web", "10.1.0.2", true, ctltest.Terminating)},
			want: map[string][]endpointView{"http:8080/TCP": {
				{"10.1.0.1", "a", "true", "false", "false", "nil", "node-a", "nil"},
				{"10.1.0.2", "b", "true", "true", "true", "nil", "node-a", "nil"},
			}},
		},
		{
			name: "hostname only when subdomain names the service",
			svc:  ctltest.Service("web"),
			pods: []*v1.Pod{ctltest.Pod("a", "web", "10.1.0.1", true, withHost), ctltest.Pod("b", "web", "10.1.0.2", true, func(p *v1.Pod) { p.Spec.Hostname = "x"; p.Spec.Subdomain = "other" })},
			want: map[string][]endpointView{"http:8080/TCP": {
				{"10.1.0.1", "a", "true", "true", "false", "web-0", "node-a", "nil"},
				{"10.1.0.2", "b", "true", "true", "false", "nil", "node-a", "nil"},
			}},
		},
		{
			name: "named targetPort resolves per pod into two port groups",
			svc:  ctltest.Service("web", func(s *v1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("http") }),
			pods: []*v1.Pod{
				ctltest.Pod("v1", "web", "10.1.0.1", true, ctltest.ContainerPort("http", 8080)),
				ctltest.Pod("v2", "web", "10.1.0.2", true, ctltest.ContainerPort("http", 9090)),
				ctltest.Pod("none", "web", "10.1.0.3", true, ctltest.ContainerPort("metrics", 9100)),
			},
			want: map[string][]endpointView{
				"http:8080/TCP": {{"10.1.0.1", "v1", "true", "true", "false", "nil", "node-a", "nil"}},
				"http:9090/TCP": {{"10.1.0.2", "v2", "true", "true", "false", "nil", "node-a", "nil"}},
			},
		},
		{
			name: "multi-port service lists every port",
			svc: ctltest.Service("web", func(s *v1.Service) {
				s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Name: "dns", Port: 53, TargetPort: intstr.FromInt32(5353), Protocol: v1.ProtocolUDP})
			}),
			pods: []*v1.Pod{ctltest.Pod("a", "web", "10.1.0.1", true)},
			want: map[string][]endpointView{"dns:5353/UDP,http:8080/TCP": {{"10.1.0.1", "a", "true", "true", "false", "nil", "node-a", "nil"}}},
		},
		{
			name: "pods without IP, terminal pods and IPv6-only pods are skipped",
			svc:  ctltest.Service("web"),
			pods: []*v1.Pod{
				ctltest.Pod("noip", "web", "", true),
				ctltest.Pod("done", "web", "10.1.0.2", false, func(p *v1.Pod) { p.Status.Phase = v1.PodSucceeded }),
				ctltest.Pod("failed", "web", "10.1.0.3", false, func(p *v1.Pod) { p.Status.Phase = v1.PodFailed }),
				ctltest.Pod("v6", "web", "fd00::1", true),
				ctltest.Pod("ok", "web", "10.1.0.5", true),
			},
			want: map[string][]endpointView{"http:8080/TCP": {{"10.1.0.5", "ok", "true", "true", "false", "nil", "node-a", "nil"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := Reconcile(Input{Service: tt.svc, Pods: tt.pods, NodeZones: tt.zones})
			if len(plan.Update)+len(plan.Delete) != 0 {
				t.Fatalf("fresh service: want only creates, got %d updates %d deletes", len(plan.Update), len(plan.Delete))
			}
			if len(plan.Create) != len(tt.want) {
				t.Fatalf("want %d slices, got %d", len(tt.want), len(plan.Create))
			}
			got := view(plan.Create)
			for k, w := range tt.want {
				g := got[k]
				if len(g) != len(w) {
					t.Fatalf("ports %q: want %v, got %v (all: %v)", k, w, g, got)
				}
				for i := range w {
					if g[i] != w[i] {
						t.Errorf("ports %q endpoint %d: want %+v, got %+v", k, i, w[i], g[i])
					}
				}
			}
		})
	}
}

func TestSliceMetadata(t *testing.T) {
	sv := ctltest.Service("web", func(s *v1.Service) { s.Labels = map[string]string{"team": "a"} })
	plan := Reconcile(Input{Service: sv, Pods: ctltest.Pods(1, "web")})
	sl := plan.Create[0]
	if sl.GenerateName != "web-" || sl.Namespace != "default" || sl.AddressType != discovery.AddressTypeIPv4 {
		t.Errorf("generateName/namespace/addressType = %q/%q/%q", sl.GenerateName, sl.Namespace, sl.AddressType)
	}
	wantLabels := map[string]string{"team": "a", "kubernetes.io/service-name": "web", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
	if len(sl.Labels) != len(wantLabels) {
		t.Errorf("labels = %v, want %v", sl.Labels, wantLabels)
	}
	for k, v := range wantLabels {
		if sl.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, sl.Labels[k], v)
		}
	}
	if len(sl.OwnerReferences) != 1 {
		t.Fatalf("ownerReferences = %v", sl.OwnerReferences)
	}
	o := sl.OwnerReferences[0]
	if o.APIVersion != "v1" || o.Kind != "Service" || o.Name != "web" || o.UID != "uid-web" || o.Controller == nil || !*o.Controller || o.BlockOwnerDeletion == nil || !*o.BlockOwnerDeletion {
		t.Errorf("ownerReference = %+v", o)
	}

	headless := ctltest.Service("db", func(s *v1.Service) { s.Spec.ClusterIP = v1.ClusterIPNone })
	plan = Reconcile(Input{Service: headless, Pods: ctltest.Pods(2, "db")})
	if len(plan.Create) != 1 || len(plan.Create[0].Endpoints) != 2 {
		t.Fatalf("headless service: want one slice of 2, got %d slices", len(plan.Create))
	}
	if v, ok := plan.Create[0].Labels[v1.IsHeadlessService]; !ok || v != "" {
		t.Errorf("headless slice lacks %s label: %v", v1.IsHeadlessService, plan.Create[0].Labels)
	}
}

func sizes(ss []*discovery.EndpointSlice) []int {
	var out []int
	for _, s := range ss {
		out = append(out, len(s.Endpoints))
	}
	sort.Sort(sort.Reverse(sort.IntSlice(out)))
	return out
}

func TestReconcileLifecycle(t *testing.T) {
	sv := ctltest.Service("web")
	all := ctltest.Pods(250, "web")

	plan := Reconcile(Input{Service: sv, Pods: all})
	if got := sizes(plan.Create); len(got) != 3 || got[0] != 100 || got[1] != 100 || got[2] != 50 {
		t.Fatalf("250 pods: slice sizes %v, want [100 100 50]", got)
	}
	state := applyPlan(nil, plan)

	// Nothing changed: nothing to write.
	if p := Reconcile(Input{Service: sv, Pods: all, Existing: state}); !p.Empty() {
		t.Fatalf("unchanged input: want empty plan, got %d/%d/%d", len(p.Create), len(p.Update), len(p.Delete))
	}
	// Existing endpoints in another order are still unchanged.
	for _, sl := range state {
		for i, j := 0, len(sl.Endpoints)-1; i < j; i, j = i+1, j-1 {
			sl.Endpoints[i], sl.Endpoints[j] = sl.Endpoints[j], sl.Endpoints[i]
		}
	}
	if p := Reconcile(Input{Service: sv, Pods: all, Existing: state}); !p.Empty() {
		t.Fatalf("reordered endpoints: want empty plan")
	}

	// One pod goes unready: exactly its slice is rewritten.
	changed := append([]*v1.Pod(nil), all...)
	changed[7] = ctltest.Pod(all[7].Name, "web", all[7].Status.PodIP, false)
	p := Reconcile(Input{Service: sv, Pods: changed, Existing: state})
	if len(p.Create) != 0 || len(p.Delete) != 0 || len(p.Update) != 1 {
		t.Fatalf("one pod unready: want 1 update, got %d/%d/%d", len(p.Create), len(p.Update), len(p.Delete))
	}
	found := false
	for _, ep := range p.Update[0].Endpoints {
		if ep.TargetRef.Name == all[7].Name {
			found = true
			if *ep.Conditions.Ready {
				t.Errorf("pod %s still ready", ep.TargetRef.Name)
			}
		}
	}
	if !found {
		t.Errorf("updated slice does not hold the changed pod")
	}
	state = applyPlan(state, p)

	// A new pod joins the partial slice rather than creating a fourth one.
	more := append(changed, ctltest.Pod("extra", "web", "10.9.9.9", true))
	p = Reconcile(Input{Service: sv, Pods: more, Existing: state})
	if len(p.Create) != 0 || len(p.Update) != 1 || len(p.Delete) != 0 {
		t.Fatalf("one pod added: want 1 update, got %d/%d/%d", len(p.Create), len(p.Update), len(p.Delete))
	}
	state = applyPlan(state, p)
	if got := sizes(state); len(got) != 3 || got[2] != 51 {
		t.Fatalf("after adding: sizes %v", got)
	}

	// Scale to zero: one empty slice is kept, the others deleted.
	p = Reconcile(Input{Service: sv, Pods: nil, Existing: state})
	if len(p.Create) != 0 || len(p.Update) != 1 || len(p.Delete) != 2 {
		t.Fatalf("scale to 0: want 1 update 2 deletes, got %d/%d/%d", len(p.Create), len(p.Update), len(p.Delete))
	}
	state = applyPlan(state, p)
	if len(state) != 1 || len(state[0].Endpoints) != 0 || len(state[0].Ports) != 0 || state[0].Endpoints == nil {
		t.Fatalf("scale to 0: want one empty placeholder slice, got %+v", state)
	}
	if p := Reconcile(Input{Service: sv, Existing: state}); !p.Empty() {
		t.Fatalf("placeholder is stable: got %d/%d/%d", len(p.Create), len(p.Update), len(p.Delete))
	}

	// A service with no pods at all gets a placeholder created.
	p = Reconcile(Input{Service: ctltest.Service("empty")})
	if len(p.Create) != 1 || len(p.Create[0].Endpoints) != 0 {
		t.Fatalf("empty service: want one placeholder create, got %d", len(p.Create))
	}

	// Service labels changing rewrites every slice.
	relabeled := ctltest.Service("web", func(s *v1.Service) { s.Labels = map[string]string{"v": "2"} })
	state = applyPlan(nil, Reconcile(Input{Service: sv, Pods: all}))
	p = Reconcile(Input{Service: relabeled, Pods: all, Existing: state})
	if len(p.Update) != 3 || len(p.Create)+len(p.Delete) != 0 {
		t.Fatalf("relabel: want 3 updates, got %d/%d/%d", len(p.Create), len(p.Update), len(p.Delete))
	}
}

func TestReconcileNamedPortRollout(t *testing.T) {
	sv := ctltest.Service("web", func(s *v1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("http") })
	old := []*v1.Pod{ctltest.Pod("a", "web", "10.1.0.1", true), ctltest.Pod("b", "web", "10.1.0.2", true)}
	state := applyPlan(nil, Reconcile(Input{Service: sv, Pods: old}))
	// b is replaced by a pod of the new version listening on 9090.
	next := []*v1.Pod{old[0], ctltest.Pod("c", "web", "10.1.0.3", true, ctltest.ContainerPort("http", 9090))}
	p := Reconcile(Input{Service: sv, Pods: next, Existing: state})
	if len(p.Create) != 1 || len(p.Update) != 1 || len(p.Delete) != 0 {
		t.Fatalf("want create(9090) + update(8080), got %d/%d/%d", len(p.Create), len(p.Update), len(p.Delete))
	}
	if *p.Create[0].Ports[0].Port != 9090 || len(p.Create[0].Endpoints) != 1 {
		t.Errorf("new slice: ports %v endpoints %d", *p.Create[0].Ports[0].Port, len(p.Create[0].Endpoints))
	}
	// The last old pod goes: its slice is deleted, not kept as placeholder.
	state = applyPlan(state, p)
	p = Reconcile(Input{Service: sv, Pods: next[1:], Existing: state})
	if len(p.Delete) != 1 || len(p.Create)+len(p.Update) != 0 {
		t.Fatalf("want 1 delete, got %d/%d/%d", len(p.Create), len(p.Update), len(p.Delete))
	}
}
