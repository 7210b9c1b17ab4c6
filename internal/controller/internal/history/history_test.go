package history

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

var setKind = appsv1.SchemeGroupVersion.WithKind("StatefulSet")

func parent() *appsv1.StatefulSet {
	return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: types.UID("uid-web")}}
}

func TestHash(t *testing.T) {
	one := int32(1)
	a := Hash([]byte(`{"a":1}`), nil)
	if a != Hash([]byte(`{"a":1}`), nil) {
		t.Errorf("hash is not stable")
	}
	if a == Hash([]byte(`{"a":2}`), nil) {
		t.Errorf("different data, same hash %s", a)
	}
	if a == Hash([]byte(`{"a":1}`), &one) {
		t.Errorf("collision count does not change the hash")
	}
	for _, c := range a {
		if strings.ContainsRune("aeiou013", c) {
			t.Errorf("hash %q has characters that could spell words", a)
		}
	}
	if got := Name(strings.Repeat("x", 300), "h"); len(got) != maxPrefix+2 {
		t.Errorf("long parent: len(name) = %d", len(got))
	}
}

func TestNew(t *testing.T) {
	r := New(parent(), setKind, map[string]string{"app": "web"}, []byte(`{"x":1}`), 3, nil)
	if r.Name != "web-"+Hash([]byte(`{"x":1}`), nil) || r.Revision != 3 || r.Labels["app"] != "web" || r.Labels[HashLabel] == "" {
		t.Errorf("unexpected revision %+v", r.ObjectMeta)
	}
	if ref := metav1.GetControllerOf(r); ref == nil || ref.UID != "uid-web" || ref.Kind != "StatefulSet" {
		t.Errorf("controller ref = %+v", ref)
	}
}

func rev(name string, n int64, data string) *appsv1.ControllerRevision {
	return &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: name}, Revision: n, Data: runtime.RawExtension{Raw: []byte(data)}}
}

func names(revs []*appsv1.ControllerRevision) string {
	var s []string
	for _, r := range revs {
		s = append(s, r.Name)
	}
	return strings.Join(s, ",")
}

func TestPrunable(t *testing.T) {
	revs := []*appsv1.ControllerRevision{rev("r4", 4, "{}"), rev("r1", 1, "{}"), rev("r3", 3, "{}"), rev("r2", 2, "{}"), rev("r5", 5, "{}")}
	tests := []struct {
		name  string
		live  map[string]bool
		limit int
		want  string
	}{
		{"under the limit", map[string]bool{"r5": true}, 10, ""},
		{"oldest go first", map[string]bool{"r5": true}, 2, "r1,r2"},
		{"live revisions are kept", map[string]bool{"r5": true, "r1": true}, 1, "r2,r3"},
		{"zero limit keeps only live ones", map[string]bool{"r5": true, "r4": true}, 0, "r1,r2,r3"},
	}
	for _, tt := range tests {
		if got := names(Prunable(revs, tt.live, tt.limit)); got != tt.want {
			t.Errorf("%s: pruned %q, want %q", tt.name, got, tt.want)
		}
	}
	if Next(revs) != 6 || Next(nil) != 1 {
		t.Errorf("Next = %d, %d", Next(revs), Next(nil))
	}
}

func TestEqualIgnoresEncoding(t *testing.T) {
	if !Equal(rev("a", 1, `{"a":1,"b":[1,2]}`), rev("b", 2, `{ "b": [1, 2], "a": 1 }`)) {
		t.Errorf("same JSON, different spacing and order: not equal")
	}
	if Equal(rev("a", 1, `{"a":1}`), rev("b", 1, `{"a":2}`)) {
		t.Errorf("different data: equal")
	}
}

func TestCreateCollision(t *testing.T) {
	ctx := context.Background()
	p := parent()
	data := []byte(`{"spec":{"template":{}}}`)
	var zero int32
	// Someone else's revision already holds the name our data hashes to.
	squatter := rev(Name("web", Hash(data, &zero)), 1, `{"other":true}`)
	squatter.Namespace = "ns"
	client := fake.NewClientset(squatter)

	var cc int32
	got, err := Create(ctx, client, p, New(p, setKind, nil, data, 2, &cc), &cc)
	if err != nil {
		t.Fatal(err)
	}
	if cc != 1 || got.Name != Name("web", Hash(data, &cc)) || got.Labels[HashLabel] != Hash(data, &cc) {
		t.Errorf("after collision: collisionCount=%d name=%s labels=%v", cc, got.Name, got.Labels)
	}

	// Creating the same data again finds our own revision, no new collision.
	again, err := Create(ctx, client, p, New(p, setKind, nil, data, 2, &cc), &cc)
	if err != nil || again.Name != got.Name || cc != 1 {
		t.Errorf("idempotent create: %v %s cc=%d", err, again.Name, cc)
	}

	if err := Delete(ctx, client, got); err != nil {
		t.Fatal(err)
	}
	if err := Delete(ctx, client, got); err != nil {
		t.Errorf("deleting a missing revision: %v", err)
	}
}
