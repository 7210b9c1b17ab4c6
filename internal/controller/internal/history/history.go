package history

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"reflect"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
)

// HashLabel is the label a revision carries with its hash; controllers also
// put the revision name under this key on the objects they create from it.
const HashLabel = appsv1.ControllerRevisionHashLabelKey

// maxPrefix keeps "<parent>-<hash>" within the 253 characters of a name.
const maxPrefix = 223

// Hash returns the name-safe hash of data, salted with collisionCount so a
// controller can step past a name already taken by different data.
func Hash(data []byte, collisionCount *int32) string {
	h := fnv.New32a()
	h.Write(data)
	if collisionCount != nil {
		h.Write([]byte(strconv.FormatInt(int64(*collisionCount), 10)))
	}
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}

// Name is the revision name for parent and hash.
func Name(parent, hash string) string {
	if len(parent) > maxPrefix {
		parent = parent[:maxPrefix]
	}
	return parent + "-" + hash
}

// New builds (but does not create) a revision of data owned by parent. The
// labels are copied so that the parent's selector finds the revision, which
// is how kubectl rollout history looks revisions up.
func New(parent metav1.Object, kind schema.GroupVersionKind, labels map[string]string, data []byte, revision int64, collisionCount *int32) *appsv1.ControllerRevision {
	hash := Hash(data, collisionCount)
	l := make(map[string]string, len(labels)+1)
	for k, v := range labels {
		l[k] = v
	}
	l[HashLabel] = hash
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:            Name(parent.GetName(), hash),
			Namespace:       parent.GetNamespace(),
			Labels:          l,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(parent, kind)},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: revision,
	}
}

// Equal reports whether two revisions hold the same data. The API server may
// re-encode raw JSON, so the comparison is semantic rather than bytewise.
func Equal(a, b *appsv1.ControllerRevision) bool {
	if a == nil || b == nil {
		return a == b
	}
	if bytes.Equal(a.Data.Raw, b.Data.Raw) {
		return true
	}
	var av, bv interface{}
	if json.Unmarshal(a.Data.Raw, &av) != nil || json.Unmarshal(b.Data.Raw, &bv) != nil {
		return false
	}
	return reflect.DeepEqual(av, bv)
}

// FindEqual returns the revisions in revs holding the same data as want, in
// the order of revs.
func FindEqual(revs []*appsv1.ControllerRevision, want *appsv1.ControllerRevision) []*appsv1.ControllerRevision {
	var out []*appsv1.ControllerRevision
	for _, r := range revs {
		if Equal(r, want) {
			out = append(out, r)
		}
	}
	return out
}

// Owned returns the revisions whose controller is parent.
func Owned(revs []*appsv1.ControllerRevision, parent metav1.Object) []*appsv1.ControllerRevision {
	var out []*appsv1.ControllerRevision
	for _, r := range revs {
		if ref := metav1.GetControllerOf(r); ref != nil && ref.UID == parent.GetUID() {
			out = append(out, r)
		}
	}
	return out
}

// Sort orders revisions oldest first: by revision number, then creation,
// then name, so ties never depend on list order.
func Sort(revs []*appsv1.ControllerRevision) {
	sort.SliceStable(revs, func(i, j int) bool {
		a, b := revs[i], revs[j]
		if a.Revision != b.Revision {
			return a.Revision < b.Revision
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Name < b.Name
	})
}

// Next returns the revision number that follows every revision in revs.
func Next(revs []*appsv1.ControllerRevision) int64 {
	var max int64
	for _, r := range revs {
		if r.Revision > max {
			max = r.Revision
		}
	}
	return max + 1
}

// Prunable returns the revisions to delete so that at most limit revisions
// that are not live remain; the oldest go first. Live revisions (the ones
// objects still run) are never pruned, whatever the limit.
func Prunable(revs []*appsv1.ControllerRevision, live map[string]bool, limit int) []*appsv1.ControllerRevision {
	sorted := append([]*appsv1.ControllerRevision(nil), revs...)
	Sort(sorted)
	var old []*appsv1.ControllerRevision
	for _, r := range sorted {
		if !live[r.Name] {
			old = append(old, r)
		}
	}
	if limit < 0 {
		limit = 0
	}
	if len(old) <= limit {
		return nil
	}
	return old[:len(old)-limit]
}

// Create creates rev under the name its data hashes to. When that name is
// taken by a revision with the same data, the existing one is returned; when
// taken by different data (a hash collision), *collisionCount is bumped and
// the next name tried. The caller persists collisionCount in its status so
// the chosen name stays stable.
func Create(ctx context.Context, client kubernetes.Interface, parent metav1.Object, rev *appsv1.ControllerRevision, collisionCount *int32) (*appsv1.ControllerRevision, error) {
	if collisionCount == nil {
		return nil, fmt.Errorf("create revision for %s: collisionCount must not be nil", parent.GetName())
	}
	clone := rev.DeepCopy()
	for {
		hash := Hash(rev.Data.Raw, collisionCount)
		clone.Name = Name(parent.GetName(), hash)
		clone.Labels[HashLabel] = hash
		created, err := client.AppsV1().ControllerRevisions(parent.GetNamespace()).Create(ctx, clone, metav1.CreateOptions{})
		if err == nil {
			return created, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create controllerrevision %s/%s: %w", clone.Namespace, clone.Name, err)
		}
		existing, err := client.AppsV1().ControllerRevisions(parent.GetNamespace()).Get(ctx, clone.Name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get controllerrevision %s/%s: %w", clone.Namespace, clone.Name, err)
		}
		if ref := metav1.GetControllerOf(existing); ref != nil && ref.UID == parent.GetUID() && Equal(existing, clone) {
			return existing, nil
		}
		*collisionCount++
	}
}

// SetRevision moves rev to revision number n, which is how a controller
// records that an old template became current again (a rollback) without
// duplicating its data.
func SetRevision(ctx context.Context, client kubernetes.Interface, rev *appsv1.ControllerRevision, n int64) (*appsv1.ControllerRevision, error) {
	if rev.Revision == n {
		return rev, nil
	}
	clone := rev.DeepCopy()
	clone.Revision = n
	got, err := client.AppsV1().ControllerRevisions(rev.Namespace).Update(ctx, clone, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("update revision number of controllerrevision %s/%s: %w", rev.Namespace, rev.Name, err)
	}
	return got, nil
}

// Delete removes rev; a revision already gone is not an error.
func Delete(ctx context.Context, client kubernetes.Interface, rev *appsv1.ControllerRevision) error {
	var opts metav1.DeleteOptions
	if rev.UID != "" {
		// Never delete a newer revision that reused the name.
		opts.Preconditions = &metav1.Preconditions{UID: &rev.UID}
	}
	err := client.AppsV1().ControllerRevisions(rev.Namespace).Delete(ctx, rev.Name, opts)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete controllerrevision %s/%s: %w", rev.Namespace, rev.Name, err)
	}
	return nil
}
