package endpoints

import (
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/portal-net/portal/internal/controller/internal/ctltest"
)

// render shows subsets the way `kubectl describe endpoints` would read them.
func render(subsets []v1.EndpointSubset) string {
	var parts []string
	for _, ss := range subsets {
		var ports, ready, notReady []string
		for _, p := range ss.Ports {
			ports = append(ports, fmt.Sprintf("%s:%d/%s", p.Name, p.Port, p.Protocol))
		}
		addr := func(a v1.EndpointAddress) string {
			x := a.IP + "("
			if a.TargetRef != nil {
				x += a.TargetRef.Name
			}
			if a.Hostname != "" {
				x += ",host=" + a.Hostname
			}
			if a.NodeName != nil {
				x += ",node=" + *a.NodeName
			}
			return x + ")"
		}
		for _, a := range ss.Addresses {
			ready = append(ready, addr(a))
		}
		for _, a := range ss.NotReadyAddresses {
			notReady = append(notReady, addr(a))
		}
		parts = append(parts, fmt.Sprintf("[%s] ready=%s notReady=%s", strings.Join(ports, ","), strings.Join(ready, ","), strings.Join(notReady, ",")))
	}
	return strings.Join(parts, " ")
}

func TestDesiredSubsets(t *testing.T) {
	named := func(s *v1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("http") }
	tests := []struct {
		name string
		svc  *v1.Service
		pods []*v1.Pod
		want string
	}{
		{
			name: "three ready pods are three addresses",
			svc:  ctltest.Service("web"),
			pods: []*v1.Pod{ctltest.Pod("c", "web", "10.1.0.3", true), ctltest.Pod("a", "web", "10.1.0.1", true), ctltest.Pod("b", "web", "10.1.0.2", true)},
			want: "[http:8080/TCP] ready=10.1.0.1(a,node=node-a),10.1.0.2(b,node=node-a),10.1.0.3(c,node=node-a) notReady=",
		},
		{
			name: "unready pod moves to notReadyAddresses",
			svc:  ctltest.Service("web"),
			pods: []*v1.Pod{ctltest.Pod("a", "web", "10.1.0.1", true), ctltest.Pod("b", "web", "10.1.0.2", false)},
			want: "[http:8080/TCP] ready=10.1.0.1(a,node=node-a) notReady=10.1.0.2(b,node=node-a)",
		},
		{
			name: "terminating pods are dropped",
			svc:  ctltest.Service("web"),
			pods: []*v1.Pod{ctltest.Pod("a", "web", "10.1.0.1", true, ctltest.Terminating), ctltest.Pod("b", "web", "10.1.0.2", true)},
			want: "[http:8080/TCP] ready=10.1.0.2(b,node=node-a) notReady=",
		},
		{
			name: "publishNotReadyAddresses publishes unready and terminating pods as ready",
			svc:  ctltest.Service("web", func(s *v1.Service) { s.Spec.PublishNotReadyAddresses = true }),
			pods: []*v1.Pod{ctltest.Pod("a", "web", "10.1.0.1", false), ctltest.Pod("b", "web", "10.1.0.2", true, ctltest.Terminating)},
			want: "[http:8080/TCP] ready=10.1.0.1(a,node=node-a),10.1.0.2(b,node=node-a) notReady=",
		},
		{
			name: "hostname when subdomain is the service name",
			svc:  ctltest.Service("web"),
			pods: []*v1.Pod{ctltest.Pod("a", "web", "10.1.0.1", true, func(p *v1.Pod) { p.Spec.Hostname = "web-0"; p.Spec.Subdomain = "web" })},
			want: "[http:8080/TCP] ready=10.1.0.1(a,host=web-0,node=node-a) notReady=",
		},
		{
			name: "named targetPort with two pod versions makes two subsets",
			svc:  ctltest.Service("web", named),
			pods: []*v1.Pod{
				ctltest.Pod("v2", "web", "10.1.0.2", true, ctltest.ContainerPort("http", 9090)),
				ctltest.Pod("v1", "web", "10.1.0.1", true, ctltest.ContainerPort("http", 8080)),
				ctltest.Pod("missing", "web", "10.1.0.3", true, ctltest.ContainerPort("grpc", 7070)),
			},
			want: "[http:8080/TCP] ready=10.1.0.1(v1,node=node-a) notReady= [http:9090/TCP] ready=10.1.0.2(v2,node=node-a) notReady=",
		},
		{
			name: "multi-port service",
			svc: ctltest.Service("web", func(s *v1.Service) {
				s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Name: "admin", Port: 81, TargetPort: intstr.FromInt32(8081)})
			}),
			pods: []*v1.Pod{ctltest.Pod("a", "web", "10.1.0.1", true)},
			want: "[admin:8081/TCP,http:8080/TCP] ready=10.1.0.1(a,node=node-a) notReady=",
		},
		{
			name: "headless service without ports lists bare addresses",
			svc:  ctltest.Service("db", func(s *v1.Service) { s.Spec.ClusterIP = v1.ClusterIPNone; s.Spec.Ports = nil }),
			pods: []*v1.Pod{ctltest.Pod("a", "db", "10.1.0.1", true)},
			want: "[] ready=10.1.0.1(a,node=node-a) notReady=",
		},
		{
			name: "no pods, no subsets",
			svc:  ctltest.Service("web"),
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, over := DesiredSubsets(tt.svc, tt.pods)
			if over {
				t.Errorf("unexpected truncation")
			}
			if r := render(got); r != tt.want {
				t.Errorf("subsets:\n got %s\nwant %s", r, tt.want)
			}
		})
	}
}

func TestReconcileObject(t *testing.T) {
	sv := ctltest.Service("web", func(s *v1.Service) {
		s.Labels = map[string]string{"team": "a"}
		s.CreationTimestamp = metav1.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	})
	ps := ctltest.Pods(3, "web")
	ep, action := Reconcile(sv, ps, nil)
	if action != ActionCreate {
		t.Fatalf("action = %v, want create", action)
	}
	if ep.Name != "web" || ep.Namespace != "default" {
		t.Errorf("name = %s/%s", ep.Namespace, ep.Name)
	}
	if ep.Labels["endpointslice.kubernetes.io/skip-mirror"] != "true" || ep.Labels["team"] != "a" {
		t.Errorf("labels = %v", ep.Labels)
	}
	if got := ep.Annotations[v1.EndpointsLastChangeTriggerTime]; got != "2026-01-02T03:04:05Z" {
		t.Errorf("missing %s annotation: %v", v1.EndpointsLastChangeTriggerTime, ep.Annotations)
	}
	if n := len(ep.Subsets[0].Addresses); n != 3 {
		t.Errorf("addresses = %d, want 3", n)
	}
	ep.ResourceVersion = "1"

	if _, action := Reconcile(sv, ps, ep); action != ActionNone {
		t.Fatalf("unchanged: action = %v, want none", action)
	}
	// Stored order differs from ours: still no rewrite.
	shuffled := ep.DeepCopy()
	a := shuffled.Subsets[0].Addresses
	a[0], a[2] = a[2], a[0]
	if _, action := Reconcile(sv, ps, shuffled); action != ActionNone {
		t.Fatalf("reordered: action = %v, want none", action)
	}

	unready := append([]*v1.Pod(nil), ps...)
	unready[1] = ctltest.Pod(ps[1].Name, "web", ps[1].Status.PodIP, false)
	up, action := Reconcile(sv, unready, ep)
	if action != ActionUpdate || up.ResourceVersion != "1" {
		t.Fatalf("unready: action = %v rv %q", action, up.ResourceVersion)
	}
	if len(up.Subsets[0].Addresses) != 2 || len(up.Subsets[0].NotReadyAddresses) != 1 || up.Subsets[0].NotReadyAddresses[0].TargetRef.Name != ps[1].Name {
		t.Errorf("unready: got %s", render(up.Subsets))
	}

	// Scale to zero keeps the object with no subsets.
	empty, action := Reconcile(sv, nil, ep)
	if action != ActionUpdate || len(empty.Subsets) != 0 {
		t.Errorf("scale to 0: action %v subsets %d", action, len(empty.Subsets))
	}
}

func TestOverCapacity(t *testing.T) {
	sv := ctltest.Service("web")
	var ps []*v1.Pod
	for i := range 1200 {
		ready := i%2 == 0 // 600 ready, 600 not ready
		ps = append(ps, ctltest.Pod(fmt.Sprintf("p%04d", i), "web", fmt.Sprintf("10.2.%d.%d", i/250, i%250+1), ready))
	}
	ep, _ := Reconcile(sv, ps, nil)
	if ep.Annotations[OverCapacityAnnotation] != "truncated" {
		t.Fatalf("annotations = %v", ep.Annotations)
	}
	ss := ep.Subsets[0]
	if len(ss.Addresses) != 600 || len(ss.NotReadyAddresses) != 400 {
		t.Errorf("ready %d notReady %d, want 600/400", len(ss.Addresses), len(ss.NotReadyAddresses))
	}
	ep.ResourceVersion = "5"
	if _, action := Reconcile(sv, ps, ep); action != ActionNone {
		t.Errorf("truncated object re-synced: action %v", action)
	}
	// Back under capacity: the annotation goes away.
	small, action := Reconcile(sv, ps[:10], ep)
	if action != ActionUpdate {
		t.Fatalf("action %v", action)
	}
	if _, ok := small.Annotations[OverCapacityAnnotation]; ok {
		t.Errorf("over-capacity annotation kept: %v", small.Annotations)
	}

	// More than 1000 ready pods across two port groups: ready ones are
	// shared proportionally, not-ready ones dropped.
	named := ctltest.Service("web", func(s *v1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("http") })
	ps = nil
	for i := range 1500 {
		port := int32(8080)
		if i%3 == 0 {
			port = 9090 // 500 pods
		}
		ps = append(ps, ctltest.Pod(fmt.Sprintf("q%04d", i), "web", fmt.Sprintf("10.3.%d.%d", i/250, i%250+1), true, ctltest.ContainerPort("http", port)))
	}
	ps = append(ps, ctltest.Pod("nr", "web", "10.4.0.1", false))
	subsets, over := DesiredSubsets(named, ps)
	total := 0
	for _, s := range subsets {
		total += len(s.Addresses) + len(s.NotReadyAddresses)
	}
	if !over || total != MaxCapacity || len(subsets[0].Addresses) != 667 || len(subsets[1].Addresses) != 333 {
		t.Errorf("over=%v total=%d split=%d/%d, want 1000 split 667/333", over, total, len(subsets[0].Addresses), len(subsets[1].Addresses))
	}
}
