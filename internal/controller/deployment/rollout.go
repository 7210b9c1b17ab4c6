package deployment

import (
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/klog/v2"
)

// scaleOnly applies a spec.replicas change (also to a paused Deployment)
// without moving the rollout forward: no new ReplicaSet is created.
func (c *Controller) scaleOnly(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, old, err := c.newAndOld(ctx, d, rsList, false)
	if err != nil {
		return err
	}
	cur := []*appsv1.ReplicaSet{newRS}
	if _, err := c.applyPlan(ctx, d, planScale(d, newRS, old), old, cur); err != nil {
		return err
	}
	newRS = cur[0]
	if d.Spec.Paused {
		if err := c.cleanup(ctx, d, old); err != nil {
			return err
		}
	}
	return c.syncStatus(ctx, d, withNew(old, newRS), newRS)
}

// syncStatus writes the counters and Available condition when they changed.
func (c *Controller) syncStatus(ctx context.Context, d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) error {
	s := calculateStatus(d, all, newRS, c.now())
	if apiequality.Semantic.DeepEqual(d.Status, s) {
		return nil
	}
	d.Status = s
	return c.writeStatus(ctx, d)
}

// syncRolloutStatus also maintains Progressing and, for a rollout that is
// still moving, schedules the check for its progress deadline.
func (c *Controller) syncRolloutStatus(ctx context.Context, d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) error {
	now := c.now()
	s := rolloutStatus(d, all, newRS, now)
	if apiequality.Semantic.DeepEqual(d.Status, s) {
		if after, ok := recheckAfter(d, &s, now); ok {
			// Nothing else may wake us before the deadline passes.
			c.loop.Queue.AddAfter(d.Namespace+"/"+d.Name, after+time.Second)
		}
		return nil
	}
	d.Status = s
	return c.writeStatus(ctx, d)
}

// rolloutRolling performs one RollingUpdate step: grow the new ReplicaSet
// within maxSurge, otherwise shrink old ones within maxUnavailable, and
// once complete prune history.
func (c *Controller) rolloutRolling(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, old, err := c.newAndOld(ctx, d, rsList, true)
	if err != nil {
		return err
	}
	all := withNew(old, newRS)

	if to := c.newRSTarget(d, all, newRS); to != replicas(newRS) {
		got, err := c.scaleRS(ctx, d, newRS, to)
		if err != nil {
			return err
		}
		return c.syncRolloutStatus(ctx, d, withNew(old, got), got)
	}

	act := active(old)
	scaled, err := c.applyPlan(ctx, d, planOldScaleDown(d, act, newRS), act, old)
	if err != nil {
		return err
	}
	all = withNew(old, newRS)
	if scaled {
		return c.syncRolloutStatus(ctx, d, all, newRS)
	}
	if complete(d, &d.Status) {
		if err := c.cleanup(ctx, d, old); err != nil {
			return err
		}
	}
	return c.syncRolloutStatus(ctx, d, all, newRS)
}

// newRSTarget: shrink straight to spec.replicas when above it, otherwise
// grow as far as the surge allows.
func (c *Controller) newRSTarget(d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) int32 {
	if replicas(newRS) >= desired(d) {
		return desired(d)
	}
	return newRSReplicas(d, all, newRS)
}

// rolloutRecreate scales every old ReplicaSet to zero, waits until none of
// their pods runs any more, and only then creates or grows the new one.
func (c *Controller) rolloutRecreate(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, old, err := c.newAndOld(ctx, d, rsList, false)
	if err != nil {
		return err
	}
	var plan []resize
	for _, rs := range active(old) {
		plan = append(plan, resize{RS: rs, To: 0})
	}
	scaled, err := c.applyPlan(ctx, d, plan, old)
	if err != nil {
		return err
	}
	if scaled {
		return c.syncRolloutStatus(ctx, d, withNew(old, newRS), newRS)
	}
	running, err := c.oldPodsRunning(d, newRS, old, rsList)
	if err != nil {
		return err
	}
	if running {
		klog.FromContext(ctx).V(4).Info("Waiting for old pods to stop before scaling up")
		return c.syncRolloutStatus(ctx, d, withNew(old, newRS), newRS)
	}
	if newRS == nil {
		if newRS, old, err = c.newAndOld(ctx, d, rsList, true); err != nil {
			return err
		}
	}
	if newRS, err = c.scaleRS(ctx, d, newRS, desired(d)); err != nil {
		return err
	}
	if complete(d, &d.Status) {
		if err := c.cleanup(ctx, d, old); err != nil {
			return err
		}
	}
	return c.syncRolloutStatus(ctx, d, withNew(old, newRS), newRS)
}

// oldPodsRunning: old ReplicaSets still report pods, or the pod cache still
// holds a non-terminal pod of one of them.
func (c *Controller) oldPodsRunning(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old, rsList []*appsv1.ReplicaSet) (bool, error) {
	if sum(old, statusReplicas) > 0 {
		return true, nil
	}
	byRS, err := c.podsByRS(d, rsList)
	if err != nil {
		return false, err
	}
	for uid, pods := range byRS {
		if newRS != nil && uid == newRS.UID {
			continue
		}
		for _, p := range pods {
			if p.Status.Phase != v1.PodFailed && p.Status.Phase != v1.PodSucceeded {
				return true, nil
			}
		}
	}
	return false, nil
}
