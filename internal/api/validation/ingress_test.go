package validation

import (
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestValidateIngress(t *testing.T) {
	backend := networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}
	ing := func(mod func(*networkingv1.Ingress)) *networkingv1.Ingress {
		i := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "default"}, Spec: networkingv1.IngressSpec{
			Rules: []networkingv1.IngressRule{{Host: "*.example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/app", PathType: ptr.To(networkingv1.PathTypePrefix), Backend: backend}}}}}}}}
		if mod != nil {
			mod(i)
		}
		return i
	}
	if errs := ValidateIngress(ing(nil)); len(errs) != 0 {
		t.Fatalf("valid ingress refused: %v", errs)
	}
	for _, tc := range []struct {
		mod  func(*networkingv1.Ingress)
		want string
	}{
		{func(i *networkingv1.Ingress) { i.Spec.Rules = nil }, "spec.rules"},
		{func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "Bad_Host" }, "spec.rules[0].host"},
		{func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths[0].PathType = nil }, "spec.rules[0].http.paths[0].pathType"},
		{func(i *networkingv1.Ingress) { i.Spec.Rules[0].HTTP.Paths[0].Path = "app" }, "spec.rules[0].http.paths[0].path"},
		{func(i *networkingv1.Ingress) {
			i.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port = networkingv1.ServiceBackendPort{}
		}, "backend.service.port"},
		{func(i *networkingv1.Ingress) {
			i.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port = networkingv1.ServiceBackendPort{Name: "http", Number: 80}
		}, "backend.service.port"},
		{func(i *networkingv1.Ingress) { i.Spec.DefaultBackend = &networkingv1.IngressBackend{} }, "spec.defaultBackend"},
	} {
		errs := ValidateIngress(ing(tc.mod))
		if agg := errs.ToAggregate(); agg == nil || !strings.Contains(agg.Error(), tc.want) {
			t.Errorf("want an error at %s, got %v", tc.want, errs)
		}
	}

	c := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx"}, Spec: networkingv1.IngressClassSpec{Controller: "example.com/ingress"}}
	if errs := ValidateIngressClass(c); len(errs) != 0 {
		t.Errorf("valid class refused: %v", errs)
	}
	bad := c.DeepCopy()
	bad.Spec.Controller = "no-domain"
	if errs := ValidateIngressClass(bad); len(errs) == 0 {
		t.Error("a controller without a domain accepted")
	}
	moved := c.DeepCopy()
	moved.Spec.Controller = "example.com/other"
	if errs := ValidateIngressClassUpdate(moved, c); len(errs) == 0 {
		t.Error("a changed controller accepted")
	}
}
