package statefulset

import (
	"strings"
	"testing"

	"github.com/portal-net/portal/internal/controller/internal/history"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
)

func TestRevisionRoundTrip(t *testing.T) {
	set := newSet(3)
	set.Annotations = map[string]string{"kubernetes.io/change-cause": "image v2"}
	rev, err := newRevision(set, 4, new(int32))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rev.Name, "web-") || rev.Revision != 4 || rev.Labels["app"] != "web" ||
		rev.Annotations["kubernetes.io/change-cause"] != "image v2" {
		t.Errorf("revision meta = %+v", rev.ObjectMeta)
	}
	if !strings.Contains(string(rev.Data.Raw), `"$patch":"replace"`) {
		t.Errorf("revision data is not a replacing template patch: %s", rev.Data.Raw)
	}
	got, err := templateOf(rev)
	if err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(*got, set.Spec.Template) {
		t.Errorf("template after round trip = %+v", got)
	}

	// Only the template counts: scaling is not a new revision.
	other := set.DeepCopy()
	*other.Spec.Replicas = 7
	rev2, _ := newRevision(other, 5, new(int32))
	if rev2.Name != rev.Name {
		t.Errorf("replicas changed the revision: %s vs %s", rev2.Name, rev.Name)
	}
	other.Spec.Template.Spec.Containers[0].Image = "v3"
	rev3, _ := newRevision(other, 5, new(int32))
	if rev3.Name == rev.Name {
		t.Errorf("image change kept revision %s", rev.Name)
	}
}

func TestChooseUpdateRevision(t *testing.T) {
	set := newSet(1)
	mk := func(image string, n int64) *appsv1.ControllerRevision {
		s := set.DeepCopy()
		s.Spec.Template.Spec.Containers[0].Image = image
		r, _ := newRevision(s, n, new(int32))
		return r
	}
	revs := []*appsv1.ControllerRevision{mk("a", 1), mk("b", 2), mk("c", 3)}
	history.Sort(revs)
	tests := []struct {
		image  string
		choice revisionChoice
		name   string
	}{
		{"c", useLatest, revs[2].Name},
		{"a", renumber, revs[0].Name},
		{"d", create, mk("d", 4).Name},
	}
	for _, tt := range tests {
		choice, r := chooseUpdateRevision(revs, mk(tt.image, 4))
		if choice != tt.choice || r.Name != tt.name {
			t.Errorf("image %s: choice %d %s, want %d %s", tt.image, choice, r.Name, tt.choice, tt.name)
		}
	}
}
