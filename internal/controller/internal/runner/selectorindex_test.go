package runner

import (
	"fmt"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

func TestSelectorIndex(t *testing.T) {
	f := informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	x := MustSelectorIndex(f)
	if again := MustSelectorIndex(f); again == nil {
		t.Fatal("a second controller on the same factory must share the indexes")
	}
	pods := f.Core().V1().Pods().Informer().GetIndexer()
	svcs := f.Core().V1().Services().Informer().GetIndexer()
	pod := func(ns, name string, l map[string]string) *v1.Pod {
		return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l}}
	}
	svc := func(ns, name string, sel map[string]string) *v1.Service {
		return &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.ServiceSpec{Selector: sel}}
	}
	for _, p := range []*v1.Pod{
		pod("a", "web-1", map[string]string{"app": "web", "tier": "front"}),
		pod("a", "web-2", map[string]string{"app": "web", "tier": "back"}),
		pod("a", "db", map[string]string{"app": "db"}),
		pod("b", "web-3", map[string]string{"app": "web", "tier": "front"}),
	} {
		_ = pods.Add(p)
	}
	for _, s := range []*v1.Service{
		svc("a", "web", map[string]string{"app": "web"}),
		svc("a", "front", map[string]string{"app": "web", "tier": "front"}),
		svc("a", "manual", nil),
		svc("b", "web", map[string]string{"app": "web"}),
	} {
		_ = svcs.Add(s)
	}
	podNames := func(ns string, sel map[string]string) string {
		got, err := x.PodsFor(ns, sel)
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, p := range got {
			n = append(n, p.Name)
		}
		slices.Sort(n)
		return fmt.Sprint(n)
	}
	svcNames := func(ns string, l map[string]string) string {
		got, err := x.ServicesFor(ns, l)
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, s := range got {
			n = append(n, s.Name)
		}
		slices.Sort(n)
		return fmt.Sprint(n)
	}
	for _, tc := range []struct{ got, want string }{
		{podNames("a", map[string]string{"app": "web"}), "[web-1 web-2]"},
		{podNames("a", map[string]string{"app": "web", "tier": "front"}), "[web-1]"},
		{podNames("a", map[string]string{"app": "web", "tier": "nope"}), "[]"},
		{podNames("a", nil), "[]"},
		{podNames("b", map[string]string{"app": "web"}), "[web-3]"},
		{svcNames("a", map[string]string{"app": "web", "tier": "front"}), "[front web]"},
		{svcNames("a", map[string]string{"app": "web", "tier": "back"}), "[web]"},
		{svcNames("a", map[string]string{"app": "db"}), "[]"},
		{svcNames("b", map[string]string{"app": "web"}), "[web]"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
}

func TestSliceIndex(t *testing.T) {
	f := informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	x := MustSliceIndex(f)
	idx := f.Discovery().V1().EndpointSlices().Informer().GetIndexer()
	slice := func(ns, name, svc, by string) *discovery.EndpointSlice {
		return &discovery.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			Labels: map[string]string{discovery.LabelServiceName: svc, discovery.LabelManagedBy: by}}}
	}
	for _, s := range []*discovery.EndpointSlice{
		slice("a", "web-1", "web", "ours"), slice("a", "web-2", "web", "ours"), slice("a", "web-x", "web", "someone"),
		slice("a", "db-1", "db", "ours"), slice("b", "web-3", "web", "ours"),
	} {
		_ = idx.Add(s)
	}
	got, err := x.Of("a", "web", "ours")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	if fmt.Sprint(names) != "[web-1 web-2]" {
		t.Errorf("slices of a/web managed by us: %v", names)
	}
}
