package main

import (
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/portal-net/portal/bench/internal/load"
)

func TestFindKey(t *testing.T) {
	keys := []string{
		"/bench/raw/services/00000",
		"/registry/configmaps/tp/tp-00000",
		"/registry/services/endpoints/tp/tp-00000",
		"/registry/services/specs/tp/tp-00000",
		"/registry/services/specs/tp/tp-000001",
	}
	tests := []struct{ resource, ns, name, want string }{
		{"configmaps", "tp", "tp-00000", "/registry/configmaps/tp/tp-00000"},
		// Not the Endpoints object of the same name, stored beside it.
		{"services", "tp", "tp-00000", "/registry/services/specs/tp/tp-00000"},
		{"services", "tp", "tp-1", ""},
		{"tp", "tp", "tp-00000", ""},
		{"secrets", "tp", "tp-00000", ""},
	}
	for _, tt := range tests {
		if got := findKey(keys, tt.resource, tt.ns, tt.name); got != tt.want {
			t.Errorf("findKey(%s %s/%s) = %q, want %q", tt.resource, tt.ns, tt.name, got, tt.want)
		}
	}
}

func TestManifest(t *testing.T) {
	for _, kind := range []string{"Service", "ConfigMap"} {
		docs := strings.Split(manifest(kind, 3), "---\n")[1:]
		if len(docs) != 3 {
			t.Fatalf("%s: %d documents, want 3", kind, len(docs))
		}
		for i, d := range docs {
			var obj struct {
				Kind     string
				Metadata struct{ Name string }
			}
			if err := yaml.Unmarshal([]byte(d), &obj); err != nil {
				t.Fatalf("%s doc %d: %v", kind, i, err)
			}
			if want := []string{"bench-0000", "bench-0001", "bench-0002"}[i]; obj.Kind != kind || obj.Metadata.Name != want {
				t.Errorf("%s doc %d = %s %s, want %s %s", kind, i, obj.Kind, obj.Metadata.Name, kind, want)
			}
		}
	}
}

func TestThroughputBaselineAndGoal(t *testing.T) {
	got := throughputBaseline(1000, 4000, 612)
	want := "raw etcd Put (612 B values): 4000/s, portal = 0.25×; upstream kube-apiserver 1.37 (reference, not measured): 240–276/s, portal = 3.6–4.2×"
	if got != want {
		t.Errorf("baseline = %q, want %q", got, want)
	}
	if got := throughputGoal(552); got != "≥ 2× upstream (≥ 552/s): met" {
		t.Errorf("goal(552) = %q", got)
	}
	if got := throughputGoal(500); got != "≥ 2× upstream (≥ 552/s): MISSED" {
		t.Errorf("goal(500) = %q", got)
	}
	if got := rateCell(load.Result{Done: 50, Elapsed: time.Second}, 100); got != "50/s (time limit: 50 of 100)" {
		t.Errorf("rateCell = %q", got)
	}
}
