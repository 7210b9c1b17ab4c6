package replicaset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// claimer decides which of the pods in an owner's namespace the owner
// controls: pods it already controls and still selects, plus orphans it
// selects (adopted by adding a controller reference). Pods it controls but
// no longer selects are released. Pods controlled by others are ignored.
type claimer struct {
	client   kubernetes.Interface
	gvk      schema.GroupVersionKind
	owner    owner
	selector labels.Selector
	// fresh re-reads the owner from the API; adoption is refused if the
	// owner is being deleted or was replaced, since the cached copy may be
	// behind (a pod adopted by a dying owner would be garbage collected).
	fresh func(ctx context.Context) (owner, error)

	once     sync.Once
	adoptErr error
}

// claim returns the pods owned after adoption and release. A failed
// adoption or release is returned as an error after the other pods were
// handled; the caller must not act on an incomplete claim.
func (c *claimer) claim(ctx context.Context, pods []*v1.Pod) ([]*v1.Pod, error) {
	var owned []*v1.Pod
	var errs []error
	for _, p := range pods {
		ok, err := c.claimOne(ctx, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			owned = append(owned, p)
		}
	}
	return owned, errors.Join(errs...)
}

func (c *claimer) claimOne(ctx context.Context, p *v1.Pod) (bool, error) {
	o := c.owner
	ref := metav1.GetControllerOfNoCopy(p)
	matches := c.selector.Matches(labels.Set(p.Labels))
	if ref != nil {
		if ref.UID != o.GetUID() {
			return false, nil
		}
		if matches {
			return true, nil
		}
		// Owners being deleted leave their pods to the garbage collector.
		if o.GetDeletionTimestamp() != nil {
			return false, nil
		}
		return false, c.release(ctx, p)
	}
	if !matches || o.GetDeletionTimestamp() != nil || p.DeletionTimestamp != nil || p.Namespace != o.GetNamespace() {
		return false, nil
	}
	if err := c.canAdopt(ctx); err != nil {
		return false, fmt.Errorf("adopt pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	err := c.adopt(ctx, p)
	if apierrors.IsNotFound(err) || apierrors.IsInvalid(err) {
		// Gone, or replaced by a pod with another UID: not ours to count.
		return false, nil
	}
	return err == nil, err
}

func (c *claimer) canAdopt(ctx context.Context) error {
	c.once.Do(func() {
		f, err := c.fresh(ctx)
		switch {
		case err != nil:
			c.adoptErr = err
		case f.GetUID() != c.owner.GetUID():
			c.adoptErr = fmt.Errorf("%s %s/%s was replaced (uid %s, want %s)", c.gvk.Kind, f.GetNamespace(), f.GetName(), f.GetUID(), c.owner.GetUID())
		case f.GetDeletionTimestamp() != nil:
			c.adoptErr = fmt.Errorf("%s %s/%s is being deleted", c.gvk.Kind, f.GetNamespace(), f.GetName())
		}
	})
	return c.adoptErr
}

// ownerRefPatch is a strategic merge patch of metadata. The pod's UID in the
// patch makes the API server reject it if the pod was replaced by one with
// the same name; ownerReferences merge by uid.
type ownerRefPatch struct {
	Metadata struct {
		OwnerReferences []map[string]interface{} `json:"ownerReferences"`
		UID             types.UID                `json:"uid"`
	} `json:"metadata"`
}

func (c *claimer) adopt(ctx context.Context, p *v1.Pod) error {
	var patch ownerRefPatch
	patch.Metadata.UID = p.UID
	patch.Metadata.OwnerReferences = []map[string]interface{}{{
		"apiVersion":         c.gvk.GroupVersion().String(),
		"kind":               c.gvk.Kind,
		"name":               c.owner.GetName(),
		"uid":                c.owner.GetUID(),
		"controller":         true,
		"blockOwnerDeletion": true,
	}}
	if err := c.patch(ctx, p, patch); err != nil {
		return err
	}
	klog.FromContext(ctx).V(2).Info("Adopted pod", "pod", klog.KObj(p))
	return nil
}

func (c *claimer) release(ctx context.Context, p *v1.Pod) error {
	var patch ownerRefPatch
	patch.Metadata.UID = p.UID
	patch.Metadata.OwnerReferences = []map[string]interface{}{{"$patch": "delete", "uid": c.owner.GetUID()}}
	err := c.patch(ctx, p, patch)
	if apierrors.IsNotFound(err) || apierrors.IsInvalid(err) {
		return nil // gone or replaced: nothing left to release
	}
	if err != nil {
		return fmt.Errorf("release pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	klog.FromContext(ctx).V(2).Info("Released pod", "pod", klog.KObj(p))
	return nil
}

func (c *claimer) patch(ctx context.Context, p *v1.Pod, patch ownerRefPatch) error {
	body, err := json.Marshal(patch)
	if err != nil {
		return fmt.Errorf("encode owner reference patch: %w", err)
	}
	_, err = c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, body, metav1.PatchOptions{})
	return err
}
