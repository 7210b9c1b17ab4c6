package quota

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

// Quotas is the quota storage admission reads and charges.
type Quotas interface {
	// List returns the quotas of a namespace, possibly a moment old (a
	// cache): Admit decides on the stored quota in Update.
	List(ctx context.Context, namespace string) ([]corev1.ResourceQuota, error)
	// Update applies fn to the current stored quota and writes it back
	// atomically (compare-and-swap, retried on conflict); an error from fn
	// aborts the update and is returned.
	Update(ctx context.Context, namespace, name string, fn func(*corev1.ResourceQuota) error) error
}

// Admission enforces quotas on creates, as kube-apiserver's ResourceQuota
// admission plugin does: an object whose usage would take a quota over
// its hard limits is rejected with 403 Forbidden; otherwise its usage is
// added to the quota's status.used before the object is stored, so that
// concurrent creates cannot both take the last unit (the compare-and-swap
// on the quota serializes them). The resourcequota controller later
// recomputes usage from the objects themselves.
//
// Unlike upstream, a quota whose status the controller has not filled in
// yet (no status.hard) does not block creates: it is not enforced until
// the controller has seen it once.
type Admission struct {
	Quotas Quotas
	// Now is the clock for pods' deletion grace; time.Now when nil.
	Now func() time.Time
}

// Admit checks obj, about to be created, against the quotas of its
// namespace and charges its usage unless dryRun.
func (a *Admission) Admit(ctx context.Context, obj runtime.Object, dryRun bool) error {
	res := Resource(obj)
	if res == "" {
		return nil
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	delta := Usage(obj, now())
	if len(delta) == 0 {
		return nil
	}
	gr := corev1.Resource(res)
	forbid := func(msg string) error { return apierrors.NewForbidden(gr, m.GetName(), errors.New(msg)) }
	quotas, err := a.Quotas.List(ctx, m.GetNamespace())
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	var charged []string
	for i := range quotas {
		q := &quotas[i]
		switch {
		case applies(q, obj, delta):
			if _, msg := Exceeded(q, delta); msg != "" {
				return forbid(msg)
			}
		case len(q.Status.Hard) == 0 && len(Mask(delta, q.Spec.Hard)) > 0 && Matches(q, obj):
			// The list may be a moment old: the controller may have
			// set this quota's status since. The charge below reads
			// the stored quota and decides.
		default:
			continue
		}
		charged = append(charged, q.Name)
	}
	if dryRun {
		return nil
	}
	for _, name := range charged {
		err := a.Quotas.Update(ctx, m.GetNamespace(), name, func(q *corev1.ResourceQuota) error {
			if !applies(q, obj, delta) {
				return nil
			}
			used, msg := Exceeded(q, delta)
			if msg != "" {
				return forbid(msg)
			}
			q.Status.Used = used
			return nil
		})
		switch {
		case apierrors.IsNotFound(err): // the quota went away meanwhile
		case apierrors.IsForbidden(err):
			return err
		case err != nil:
			return apierrors.NewInternalError(err)
		}
	}
	return nil
}

// applies: q is enforced (status.hard is set), selects obj and limits a
// resource obj consumes.
func applies(q *corev1.ResourceQuota, obj runtime.Object, delta corev1.ResourceList) bool {
	return len(q.Status.Hard) > 0 && len(Mask(delta, q.Status.Hard)) > 0 && Matches(q, obj)
}
