package statefulset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/portal-net/portal/internal/controller/internal/history"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
)

// claimPods returns the set's member pods: those it controls that still
// match its selector and name pattern. Orphans that match are adopted and
// controlled pods that no longer match are released, like upstream, so a
// set recreated after an orphaning delete takes its pods back.
func (c *Controller) claimPods(ctx context.Context, set *appsv1.StatefulSet, selector labels.Selector) ([]*v1.Pod, error) {
	all, err := c.pods.Pods(set.Namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list pods of %s/%s: %w", set.Namespace, set.Name, err)
	}
	var out []*v1.Pod
	var errs []error
	for _, pod := range all {
		matches := selector.Matches(labels.Set(pod.Labels)) && isMember(set, pod)
		ref := metav1.GetControllerOf(pod)
		switch {
		case ref != nil && ref.UID == set.UID && matches:
			out = append(out, pod)
		case ref != nil && ref.UID == set.UID:
			if err := c.setOwners(ctx, pod, withoutOwner(pod.OwnerReferences, set.UID)); err != nil {
				errs = append(errs, err)
			}
		case ref == nil && matches && set.DeletionTimestamp == nil && pod.DeletionTimestamp == nil:
			refs := append(append([]metav1.OwnerReference(nil), pod.OwnerReferences...), *metav1.NewControllerRef(set, controllerKind))
			if err := c.setOwners(ctx, pod, refs); err != nil {
				errs = append(errs, err)
				continue
			}
			adopted := pod.DeepCopy()
			adopted.OwnerReferences = refs
			out = append(out, adopted)
		}
	}
	return out, errors.Join(errs...)
}

func withoutOwner(refs []metav1.OwnerReference, uid types.UID) []metav1.OwnerReference {
	var out []metav1.OwnerReference
	for _, r := range refs {
		if r.UID != uid {
			out = append(out, r)
		}
	}
	return out
}

// setOwners replaces the pod's owner references, guarded by its UID and
// resourceVersion so a pod changed meanwhile is left for the next sync.
func (c *Controller) setOwners(ctx context.Context, pod *v1.Pod, refs []metav1.OwnerReference) error {
	if refs == nil {
		refs = []metav1.OwnerReference{}
	}
	patch, err := json.Marshal(map[string]interface{}{"metadata": map[string]interface{}{
		"uid": pod.UID, "resourceVersion": pod.ResourceVersion, "ownerReferences": refs,
	}})
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("set owners of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// ownedRevisions lists the set's revisions, oldest first.
func (c *Controller) ownedRevisions(set *appsv1.StatefulSet, selector labels.Selector) ([]*appsv1.ControllerRevision, error) {
	revs, err := c.revisions.ControllerRevisions(set.Namespace).List(selector)
	if err != nil {
		return nil, fmt.Errorf("list controllerrevisions of %s/%s: %w", set.Namespace, set.Name, err)
	}
	revs = history.Owned(revs, set)
	history.Sort(revs)
	return revs, nil
}

// resolveRevisions finds (creating or renumbering as needed) the revision
// of the set's template, and the revision its pods are currently on.
func (c *Controller) resolveRevisions(ctx context.Context, set *appsv1.StatefulSet, revs []*appsv1.ControllerRevision) (current, update *appsv1.ControllerRevision, collisions int32, err error) {
	if set.Status.CollisionCount != nil {
		collisions = *set.Status.CollisionCount
	}
	want, err := newRevision(set, history.Next(revs), &collisions)
	if err != nil {
		return nil, nil, 0, err
	}
	choice, rev := chooseUpdateRevision(revs, want)
	switch choice {
	case useLatest:
		update = rev
	case renumber:
		update, err = history.SetRevision(ctx, c.client, rev, want.Revision)
	case create:
		update, err = history.Create(ctx, c.client, set, want, &collisions)
	}
	if err != nil {
		return nil, nil, 0, err
	}
	return findCurrent(set, revs, update), update, collisions, nil
}

// apply makes the planned writes in order and records an event for each,
// as upstream does, so kubectl describe shows the rollout.
func (c *Controller) apply(ctx context.Context, key string, set *appsv1.StatefulSet, actions []Action) error {
	logger := klog.FromContext(ctx)
	var errs []error
	for _, a := range actions {
		pod := a.Pod
		switch a.Kind {
		case Create:
			_, err := c.client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				// Our cache has not seen it yet; the next sync will.
				errs = append(errs, fmt.Errorf("create pod %s/%s: %w", pod.Namespace, pod.Name, err))
				continue
			}
			c.record(set, a, err)
			if err != nil {
				errs = append(errs, fmt.Errorf("create pod %s/%s: %w", pod.Namespace, pod.Name, err))
				continue
			}
			c.tracker.Created(key, pod.Name)
		case Delete:
			switch a.Why {
			case whyFailed:
				c.recorder.Eventf(set, v1.EventTypeWarning, "RecreatingFailedPod", "StatefulSet %s/%s is recreating failed Pod %s", set.Namespace, set.Name, pod.Name)
			case whySucceeded:
				c.recorder.Eventf(set, v1.EventTypeNormal, "RecreatingTerminatedPod", "StatefulSet %s/%s is recreating terminated Pod %s", set.Namespace, set.Name, pod.Name)
			}
			err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
				Preconditions: &metav1.Preconditions{UID: &pod.UID},
			})
			if apierrors.IsNotFound(err) {
				err = nil
			}
			c.record(set, a, err)
			if err != nil {
				errs = append(errs, fmt.Errorf("delete pod %s/%s: %w", pod.Namespace, pod.Name, err))
				continue
			}
			// Graceful deletion leaves the pod in place with a deletion
			// timestamp, so "gone or changed" is what the cache will show.
			c.tracker.Updated(key, pod.Name, pod.ResourceVersion, "")
		case Relabel:
			got, err := c.client.CoreV1().Pods(pod.Namespace).Update(ctx, pod, metav1.UpdateOptions{})
			c.record(set, a, err)
			if err != nil {
				errs = append(errs, fmt.Errorf("update pod %s/%s: %w", pod.Namespace, pod.Name, err))
				continue
			}
			c.tracker.Updated(key, pod.Name, pod.ResourceVersion, got.ResourceVersion)
		}
		logger.V(2).Info("Pod written", "action", a.Kind, "pod", pod.Name, "why", a.Why)
	}
	return errors.Join(errs...)
}

// record emits upstream's event for a pod write.
func (c *Controller) record(set *appsv1.StatefulSet, a Action, err error) {
	verb := string(a.Kind)
	reason := map[ActionKind]string{Create: "Create", Delete: "Delete", Relabel: "Update"}[a.Kind]
	if err != nil {
		c.recorder.Eventf(set, v1.EventTypeWarning, "Failed"+reason, "%s Pod %s in StatefulSet %s failed error: %s", verb, a.Pod.Name, set.Name, err)
		return
	}
	c.recorder.Eventf(set, v1.EventTypeNormal, "Successful"+reason, "%s Pod %s in StatefulSet %s successful", verb, a.Pod.Name, set.Name)
}

// updateStatus writes status when it differs from what the set shows.
func (c *Controller) updateStatus(ctx context.Context, set *appsv1.StatefulSet, status appsv1.StatefulSetStatus) error {
	if apiequality.Semantic.DeepEqual(set.Status, status) {
		return nil
	}
	set = set.DeepCopy()
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		set.Status = status
		_, err := c.client.AppsV1().StatefulSets(set.Namespace).UpdateStatus(ctx, set, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) {
			return err
		}
		// Users edit the spec while pods roll; the counts are still true
		// of the pods, so they go onto the newest object. A newer
		// generation is reported through observedGeneration and synced next.
		fresh, getErr := c.client.AppsV1().StatefulSets(set.Namespace).Get(ctx, set.Name, metav1.GetOptions{})
		if getErr != nil {
			return getErr
		}
		if fresh.UID != set.UID {
			return nil
		}
		set = fresh
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("update status of statefulset %s/%s: %w", set.Namespace, set.Name, err)
	}
	return nil
}

// truncateHistory deletes the oldest revisions beyond revisionHistoryLimit,
// sparing every revision a pod still runs.
func (c *Controller) truncateHistory(ctx context.Context, set *appsv1.StatefulSet, pods []*v1.Pod, revs []*appsv1.ControllerRevision, current, update *appsv1.ControllerRevision) error {
	live := map[string]bool{current.Name: true, update.Name: true}
	for _, p := range pods {
		live[revisionOf(p)] = true
	}
	limit := 10
	if set.Spec.RevisionHistoryLimit != nil {
		limit = int(*set.Spec.RevisionHistoryLimit)
	}
	var errs []error
	for _, r := range history.Prunable(revs, live, limit) {
		if err := history.Delete(ctx, c.client, r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
