package validation

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestValidateResourceQuota(t *testing.T) {
	hard := func(kv ...string) corev1.ResourceList {
		out := corev1.ResourceList{}
		for i := 0; i < len(kv); i += 2 {
			out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
		}
		return out
	}
	quota := func(name string, h corev1.ResourceList, scopes ...corev1.ResourceQuotaScope) *corev1.ResourceQuota {
		return &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
			Spec: corev1.ResourceQuotaSpec{Hard: h, Scopes: scopes}}
	}
	selector := func(reqs ...corev1.ScopedResourceSelectorRequirement) *corev1.ResourceQuota {
		q := quota("sel", hard("pods", "1"))
		q.Spec.ScopeSelector = &corev1.ScopeSelector{MatchExpressions: reqs}
		return q
	}
	for _, tc := range []struct {
		name      string
		q         *corev1.ResourceQuota
		wantField string // "" for valid
		wantMsg   string
	}{
		{"pods", quota("q", hard("pods", "2")), "", ""},
		{"everything standard", quota("q", hard("cpu", "1", "memory", "1Gi", "requests.cpu", "500m", "limits.memory", "2Gi",
			"requests.storage", "10Gi", "ephemeral-storage", "1Gi", "limits.ephemeral-storage", "2Gi", "requests.hugepages-2Mi", "1Gi",
			"services", "3", "services.nodeports", "1", "services.loadbalancers", "0", "secrets", "4", "configmaps", "4",
			"replicationcontrollers", "1", "resourcequotas", "1", "persistentvolumeclaims", "2")), "", ""},
		{"qualified names", quota("q", hard("count/deployments.apps", "3", "count/pods", "1", "requests.example.com/gpu", "1",
			"gold.storageclass.storage.k8s.io/requests.storage", "1Gi")), "", ""},
		{"bad name", quota("Bad_Name", hard("pods", "1")), "metadata.name", ""},
		{"unknown resource", quota("q", hard("widgets", "1")), "spec.hard[widgets]", "must be a standard resource for quota"},
		{"negative", quota("q", hard("cpu", "-1")), "spec.hard[cpu]", "must be greater than or equal to 0"},
		{"fractional count", quota("q", hard("pods", "1500m")), "spec.hard[pods]", "must be an integer"},
		{"fractional count/", quota("q", hard("count/secrets", "0.5")), "spec.hard[count/secrets]", "must be an integer"},
		{"bad qualified name", quota("q", hard("count/a b", "1")), "spec.hard[count/a b]", ""},
		{"scopes", quota("q", hard("pods", "1", "requests.cpu", "1"), corev1.ResourceQuotaScopeNotTerminating, corev1.ResourceQuotaScopeNotBestEffort), "", ""},
		{"unknown scope", quota("q", hard("pods", "1"), "Sometimes"), "spec.scopes", "unsupported scope"},
		{"conflicting scopes", quota("q", hard("pods", "1"), corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating), "spec.scopes", "conflicting scopes"},
		{"BestEffort with cpu", quota("q", hard("cpu", "1"), corev1.ResourceQuotaScopeBestEffort), "spec.scopes", "unsupported scope applied to resource"},
		{"Terminating with services", quota("q", hard("services", "1"), corev1.ResourceQuotaScopeTerminating), "spec.scopes", "unsupported scope applied to resource"},
		{"priority class selector", selector(corev1.ScopedResourceSelectorRequirement{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpIn, Values: []string{"high"}}), "", ""},
		{"In without values", selector(corev1.ScopedResourceSelectorRequirement{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpIn}), "spec.scopeSelector.matchExpressions[0].values", ""},
		{"BestEffort with In", selector(corev1.ScopedResourceSelectorRequirement{ScopeName: corev1.ResourceQuotaScopeBestEffort, Operator: corev1.ScopeSelectorOpIn, Values: []string{"x"}}), "spec.scopeSelector.matchExpressions[0].operator", ""},
		{"bad operator", selector(corev1.ScopedResourceSelectorRequirement{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: "Near"}), "spec.scopeSelector.matchExpressions[0].operator", "not a valid selector operator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := ValidateResourceQuota(tc.q)
			if tc.wantField == "" {
				if len(errs) > 0 {
					t.Fatalf("unexpected errors: %v", errs)
				}
				return
			}
			for _, e := range errs {
				if e.Field == tc.wantField && strings.Contains(e.Detail, tc.wantMsg) {
					return
				}
			}
			t.Errorf("want an error on %s (%q), got %v", tc.wantField, tc.wantMsg, errs)
		})
	}
}

func TestValidateResourceQuotaUpdate(t *testing.T) {
	old := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "q", ResourceVersion: "1"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"pods": resource.MustParse("1")}, Scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort}}}
	q := old.DeepCopy()
	q.Spec.Hard["pods"] = resource.MustParse("5")
	if errs := ValidateResourceQuotaUpdate(q, old); len(errs) > 0 {
		t.Errorf("raising the limit: %v", errs)
	}
	q.Spec.Scopes = nil
	if errs := ValidateResourceQuotaUpdate(q, old); len(errs) != 1 || errs[0].Field != "spec.scopes" {
		t.Errorf("changing scopes: %v", errs)
	}
	s := old.DeepCopy()
	s.Status.Used = corev1.ResourceList{"pods": resource.MustParse("-1")}
	if errs := ValidateResourceQuotaStatusUpdate(s, old); len(errs) != 1 || errs[0].Field != "status.used[pods]" {
		t.Errorf("negative usage: %v", errs)
	}
}
