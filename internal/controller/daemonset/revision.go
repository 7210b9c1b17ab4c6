package daemonset

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/portal-net/portal/internal/controller/internal/history"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// DefaultRevisionHistoryLimit applies when spec.revisionHistoryLimit is unset.
const DefaultRevisionHistoryLimit = 10

// revisionData is what a DaemonSet revision stores: a strategic merge patch
// that replaces the template, which `kubectl rollout undo` applies as is.
func revisionData(ds *appsv1.DaemonSet) ([]byte, error) {
	raw, err := json.Marshal(ds.Spec.Template)
	if err != nil {
		return nil, fmt.Errorf("encode template of %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	var template map[string]interface{}
	if err := json.Unmarshal(raw, &template); err != nil {
		return nil, fmt.Errorf("decode template of %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	template["$patch"] = "replace"
	return json.Marshal(map[string]interface{}{"spec": map[string]interface{}{"template": template}})
}

// ensureRevision makes the current template's revision exist and be the
// newest, returning it and the collision count to persist.
func (c *Controller) ensureRevision(ctx context.Context, ds *appsv1.DaemonSet) (*appsv1.ControllerRevision, *int32, error) {
	all, err := c.revisions.ControllerRevisions(ds.Namespace).List(labels.Everything())
	if err != nil {
		return nil, nil, fmt.Errorf("list controllerrevisions of %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	revs := history.Owned(all, ds)
	data, err := revisionData(ds)
	if err != nil {
		return nil, nil, err
	}
	next := history.Next(revs)
	want := history.New(ds, controllerKind, ds.Spec.Template.Labels, data, next, ds.Status.CollisionCount)
	if equal := history.FindEqual(revs, want); len(equal) > 0 {
		history.Sort(equal)
		cur := equal[len(equal)-1]
		if cur.Revision != next-1 {
			// An old template is back (a rollback): it becomes newest.
			cur, err = history.SetRevision(ctx, c.client, cur, next)
			if err != nil {
				return nil, nil, err
			}
		}
		return cur, ds.Status.CollisionCount, nil
	}
	var collisions int32
	if ds.Status.CollisionCount != nil {
		collisions = *ds.Status.CollisionCount
	}
	cur, err := history.Create(ctx, c.client, ds, want, &collisions)
	if err != nil {
		return nil, nil, err
	}
	if !isNewest(cur, revs) {
		// The name existed already (our cache lagged) with an older number.
		cur, err = history.SetRevision(ctx, c.client, cur, next)
		if err != nil {
			return nil, nil, err
		}
	}
	if ds.Status.CollisionCount == nil && collisions == 0 {
		return cur, nil, nil
	}
	return cur, &collisions, nil
}

func isNewest(r *appsv1.ControllerRevision, revs []*appsv1.ControllerRevision) bool {
	for _, o := range revs {
		if o.Name != r.Name && o.Revision >= r.Revision {
			return false
		}
	}
	return true
}

// pruneRevisions deletes old revisions beyond the history limit that no
// pod runs any more.
func (c *Controller) pruneRevisions(ctx context.Context, ds *appsv1.DaemonSet, cur *appsv1.ControllerRevision, pods []*v1.Pod) error {
	all, err := c.revisions.ControllerRevisions(ds.Namespace).List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list controllerrevisions of %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	revs := history.Owned(all, ds)
	live := map[string]bool{cur.Name: true}
	hashes := map[string]bool{}
	for _, p := range pods {
		hashes[p.Labels[history.HashLabel]] = true
	}
	for _, r := range revs {
		if hashes[r.Labels[history.HashLabel]] {
			live[r.Name] = true
		}
	}
	limit := DefaultRevisionHistoryLimit
	if ds.Spec.RevisionHistoryLimit != nil {
		limit = int(*ds.Spec.RevisionHistoryLimit)
	}
	for _, r := range history.Prunable(revs, live, limit) {
		if err := history.Delete(ctx, c.client, r); err != nil {
			return err
		}
	}
	return nil
}
