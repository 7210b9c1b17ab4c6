package main

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/portal-net/portal/bench/internal/load"
	"github.com/portal-net/portal/bench/internal/report"
)

// Upstream kube-apiserver 1.37 with a separate etcd, creating objects
// with 16 client-go workers on this class of machine (the figure from the
// issue; not measured here, see doc.go).
const upstreamLow, upstreamHigh = 240.0, 276.0

// rateCell formats a throughput run, noting when the time limit cut it
// short (its rate is then still what was achieved, over fewer objects).
func rateCell(r load.Result, n int) string {
	s := fmt.Sprintf("%.0f/s", r.Rate())
	if r.Done < n {
		s += fmt.Sprintf(" (time limit: %d of %d)", r.Done, n)
	}
	return s
}

// throughputBaseline says how a create rate compares with raw etcd Puts
// in the same run and with the upstream reference.
func throughputBaseline(rate, etcdRate float64, valueSize int) string {
	ratio := 0.0
	if etcdRate > 0 {
		ratio = rate / etcdRate
	}
	return fmt.Sprintf("raw etcd Put (%d B values): %.0f/s, portal = %.2f×; upstream kube-apiserver 1.37 (reference, not measured): %.0f–%.0f/s, portal = %.1f–%.1f×",
		valueSize, etcdRate, ratio, upstreamLow, upstreamHigh, rate/upstreamHigh, rate/upstreamLow)
}

func throughputGoal(rate float64) string {
	return fmt.Sprintf("≥ 2× upstream (≥ %.0f/s): %s", 2*upstreamHigh, report.Verdict(rate >= 2*upstreamHigh))
}

// manifest returns one multi-document YAML file of n objects of kind
// Service or ConfigMap, named bench-0000, bench-0001, ...
func manifest(kind string, n int) string {
	var b strings.Builder
	for i := range n {
		switch kind {
		case "Service":
			fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: bench-%04d\nspec:\n  selector:\n    app: bench-%04d\n  ports:\n  - port: 80\n    targetPort: 8080\n", i, i)
		case "ConfigMap":
			fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bench-%04d\ndata:\n  app: bench-%04d\n", i, i)
		default:
			panic("manifest: unsupported kind " + kind)
		}
	}
	return b.String()
}

func benchService(name string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": name},
		Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
	}}
}

func benchConfigMap(name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name},
		Data: map[string]string{"app": name, "payload": strings.Repeat("y", 512)}}
}
