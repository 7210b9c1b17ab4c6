package statefulset

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestParseOrdinal(t *testing.T) {
	tests := []struct {
		name    string
		parent  string
		ordinal int
		ok      bool
	}{
		{"web-0", "web", 0, true},
		{"web-12", "web", 12, true},
		{"my-web-3", "my-web", 3, true},
		{"web-01", "", -1, false},
		{"web-", "", -1, false},
		{"web", "", -1, false},
		{"web-x", "", -1, false},
		{"-1", "", -1, false},
	}
	for _, tt := range tests {
		parent, n, ok := parseOrdinal(tt.name)
		if parent != tt.parent || n != tt.ordinal || ok != tt.ok {
			t.Errorf("parseOrdinal(%q) = %q, %d, %v", tt.name, parent, n, ok)
		}
	}
	set := newSet(1)
	if isMember(set, &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "webby-0"}}) || !isMember(set, &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-7"}}) {
		t.Errorf("membership by name is wrong")
	}
}

func TestNewPod(t *testing.T) {
	set := newSet(3, startAt(4))
	set.Spec.Template.Annotations = map[string]string{"a": "b"}
	set.Spec.Template.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/data"}}
	set.Spec.VolumeClaimTemplates = []v1.PersistentVolumeClaim{{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: v1.PersistentVolumeClaimSpec{Resources: v1.VolumeResourceRequirements{
			Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}}},
	}}
	pod := newPod(set, &set.Spec.Template, "web-abc", 5)

	if pod.Name != "web-5" || pod.Namespace != "ns" || pod.Spec.Hostname != "web-5" || pod.Spec.Subdomain != "nginx" {
		t.Errorf("identity: name=%s ns=%s hostname=%s subdomain=%s", pod.Name, pod.Namespace, pod.Spec.Hostname, pod.Spec.Subdomain)
	}
	wantLabels := map[string]string{
		"app":                                 "web",
		appsv1.StatefulSetPodNameLabel:        "web-5",
		appsv1.PodIndexLabel:                  "5",
		appsv1.ControllerRevisionHashLabelKey: "web-abc",
	}
	for k, v := range wantLabels {
		if pod.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, pod.Labels[k], v)
		}
	}
	if pod.Annotations["a"] != "b" {
		t.Errorf("template annotations not copied: %v", pod.Annotations)
	}
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.UID != set.UID || ref.Kind != "StatefulSet" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Errorf("owner reference = %+v", ref)
	}
	if len(pod.Spec.Volumes) != 1 || pod.Spec.Volumes[0].Name != "data" || pod.Spec.Volumes[0].EmptyDir == nil {
		t.Errorf("claim template volume = %+v", pod.Spec.Volumes)
	}
	if set.Spec.Template.Spec.Hostname != "" || len(set.Spec.Template.Spec.Volumes) != 0 {
		t.Errorf("newPod modified the set's template")
	}
	if !identityMatches(set, pod) {
		t.Errorf("a new pod does not match its own identity")
	}
}
