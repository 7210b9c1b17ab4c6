package ipam

import (
	"math"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	portalv1 "github.com/portal-net/portal/internal/api/portal/v1"
)

func TestPoolFromAPI(t *testing.T) {
	no := false
	obj := &portalv1.AddressPool{
		ObjectMeta: metav1.ObjectMeta{Name: "blue"},
		Spec: portalv1.AddressPoolSpec{
			Addresses:         []string{"192.0.2.0/28", "198.51.100.10-198.51.100.12", "2001:db8::/120"},
			AutoAssign:        &no,
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "blue"}},
		},
	}
	p, errs := PoolFromAPI(obj)
	if len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
	if p.Name != "blue" || len(p.Ranges) != 3 || p.autoAssign() || p.ServiceSelector != nil {
		t.Errorf("pool = %+v", p)
	}
	if !p.NamespaceSelector.Matches(labels.Set{"team": "blue"}) || p.NamespaceSelector.Matches(labels.Set{"team": "red"}) {
		t.Errorf("namespace selector %v", p.NamespaceSelector)
	}

	for _, tc := range []struct {
		spec portalv1.AddressPoolSpec
		want []string // substrings, one per error
	}{
		{portalv1.AddressPoolSpec{}, []string{"spec.addresses: Required value"}},
		{portalv1.AddressPoolSpec{Addresses: []string{"192.0.2.1/24"}}, []string{`spec.addresses[0]: Invalid value: "192.0.2.1/24"`, "did you mean 192.0.2.0/24"}},
		{portalv1.AddressPoolSpec{Addresses: []string{"192.0.2.9-192.0.2.1"}}, []string{"spec.addresses[0]", "is after"}},
		{portalv1.AddressPoolSpec{Addresses: []string{"192.0.2.0/28", "192.0.2.8-192.0.2.20"}}, []string{"spec.addresses[1]", "overlaps 192.0.2.0/28"}},
		{portalv1.AddressPoolSpec{Addresses: []string{"192.0.2.0/28"}, ServiceSelector: &metav1.LabelSelector{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Near"}}}}, []string{"spec.serviceSelector.matchExpressions[0].operator"}},
	} {
		_, errs := PoolFromAPI(&portalv1.AddressPool{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: tc.spec})
		got := errs.ToAggregate()
		if got == nil {
			t.Errorf("%+v: no error", tc.spec)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(got.Error(), w) {
				t.Errorf("%+v: error %q does not contain %q", tc.spec, got, w)
			}
		}
	}
}

func TestUsage(t *testing.T) {
	a := newAlloc(t, pool(t, "a", "192.0.2.0/29", "192.0.2.100-192.0.2.101", "2001:db8::/64"), pool(t, "b", "198.51.100.1"))
	u, ok := a.Usage("a")
	// /29: 8 addresses less network and broadcast, plus 2.
	if !ok || u != (Usage{Assigned: 0, Available4: 8, Available6: math.MaxInt64}) {
		t.Errorf("empty pool a: %+v %v", u, ok)
	}
	mustAssign(t, a, rq("x").fams(corev1.IPv4Protocol, corev1.IPv6Protocol))
	mustAssign(t, a, rq("y").share("k", 80))
	mustAssign(t, a, rq("z").share("k", 443)) // shares y's address: counts once
	u, _ = a.Usage("a")
	if u.Assigned != 3 || u.Available4 != 6 || u.Available6 != math.MaxInt64 {
		t.Errorf("pool a after x (dual stack), y and z (shared): %+v", u)
	}
	mustAssign(t, a, rq("w").inPool("b"))
	if u, _ := a.Usage("b"); u != (Usage{Assigned: 1, Available4: 0}) {
		t.Errorf("pool b: %+v", u)
	}
	if _, ok := a.Usage("c"); ok {
		t.Error("unknown pool reported")
	}
	small := newAlloc(t, pool(t, "v6", "2001:db8::10-2001:db8::1f"))
	mustAssign(t, small, rq("x").fams(corev1.IPv6Protocol))
	if u, _ := small.Usage("v6"); u != (Usage{Assigned: 1, Available6: 15}) {
		t.Errorf("pool v6: %+v", u)
	}
}
