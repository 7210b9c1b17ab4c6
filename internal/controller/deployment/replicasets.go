package deployment

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// claim returns the ReplicaSets d controls after adopting orphans its
// selector matches and releasing owned ones it no longer matches.
func (c *Controller) claim(ctx context.Context, d *appsv1.Deployment, all []*appsv1.ReplicaSet) ([]*appsv1.ReplicaSet, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("selector of deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	var out []*appsv1.ReplicaSet
	var freshChecked bool
	for _, rs := range all {
		match := sel.Matches(labels.Set(rs.Labels))
		ref := metav1.GetControllerOfNoCopy(rs)
		switch {
		case ref != nil && ref.UID != d.UID:
			// Someone else's.
		case ref != nil && match:
			out = append(out, rs)
		case ref != nil:
			if d.DeletionTimestamp != nil {
				continue
			}
			if err := c.release(ctx, d, rs); err != nil {
				return nil, err
			}
		case !match || d.DeletionTimestamp != nil || rs.DeletionTimestamp != nil:
			// An orphan that is not ours to take.
		default:
			// The cached Deployment may be stale: never adopt for one that
			// was deleted or replaced meanwhile.
			if !freshChecked {
				fresh, err := c.client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
				if err != nil {
					return nil, fmt.Errorf("recheck deployment %s/%s before adoption: %w", d.Namespace, d.Name, err)
				}
				if fresh.UID != d.UID || fresh.DeletionTimestamp != nil {
					return nil, fmt.Errorf("deployment %s/%s is gone or going, not adopting", d.Namespace, d.Name)
				}
				freshChecked = true
			}
			got, err := c.adopt(ctx, d, rs)
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, got)
		}
	}
	return out, nil
}

type ownerPatch struct {
	Metadata struct {
		OwnerReferences []map[string]interface{} `json:"ownerReferences"`
		UID             types.UID                `json:"uid"`
	} `json:"metadata"`
}

// adopt adds d as controller of rs. The patch carries rs's UID so it fails
// rather than adopting a same-named successor.
func (c *Controller) adopt(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet) (*appsv1.ReplicaSet, error) {
	var p ownerPatch
	p.Metadata.UID = rs.UID
	p.Metadata.OwnerReferences = []map[string]interface{}{{
		"apiVersion": controllerKind.GroupVersion().String(), "kind": controllerKind.Kind,
		"name": d.Name, "uid": d.UID, "controller": true, "blockOwnerDeletion": true,
	}}
	body, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	got, err := c.client.AppsV1().ReplicaSets(rs.Namespace).Patch(ctx, rs.Name, types.StrategicMergePatchType, body, metav1.PatchOptions{})
	if err != nil {
		return nil, fmt.Errorf("adopt replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	klog.FromContext(ctx).V(2).Info("Adopted ReplicaSet", "replicaSet", klog.KObj(rs))
	return got, nil
}

// release removes d's owner reference from rs.
func (c *Controller) release(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet) error {
	var p ownerPatch
	p.Metadata.UID = rs.UID
	p.Metadata.OwnerReferences = []map[string]interface{}{{"$patch": "delete", "uid": d.UID}}
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = c.client.AppsV1().ReplicaSets(rs.Namespace).Patch(ctx, rs.Name, types.StrategicMergePatchType, body, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
		return fmt.Errorf("release replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	klog.FromContext(ctx).V(2).Info("Released ReplicaSet", "replicaSet", klog.KObj(rs))
	return nil
}

// newAndOld splits d's ReplicaSets into the new one (its template equals
// d's) and the old ones, bringing the new one's annotations and
// minReadySeconds up to date and, with create, creating it when missing.
// It also records the new ReplicaSet's revision on the Deployment.
func (c *Controller) newAndOld(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet, create bool) (*appsv1.ReplicaSet, []*appsv1.ReplicaSet, error) {
	existing := findNewRS(d, rsList)
	old := oldRSs(rsList, existing)
	nextRevision := maxRevision(old) + 1
	key := d.Namespace + "/" + d.Name

	if existing != nil {
		rs := existing.DeepCopy()
		annotated := setNewRSAnnotations(d, rs, nextRevision, true)
		if annotated || rs.Spec.MinReadySeconds != d.Spec.MinReadySeconds {
			rs.Spec.MinReadySeconds = d.Spec.MinReadySeconds
			got, err := c.client.AppsV1().ReplicaSets(rs.Namespace).Update(ctx, rs, metav1.UpdateOptions{})
			if err != nil {
				return nil, nil, fmt.Errorf("update replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
			}
			c.tracker.Updated(key, got.Name, existing.ResourceVersion, got.ResourceVersion)
			rs = got
		}
		changed := setDeploymentRevision(d, rs.Annotations[RevisionAnnotation])
		if hasProgressDeadline(d) && getCondition(d.Status, appsv1.DeploymentProgressing) == nil {
			setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, v1.ConditionTrue, ReasonFoundNewReplicaSet,
				fmt.Sprintf("Found new replica set %q", rs.Name), c.now()))
			changed = true
		}
		if changed {
			if err := c.writeStatus(ctx, d); err != nil {
				return nil, nil, err
			}
		}
		return rs, old, nil
	}
	if !create {
		return nil, old, nil
	}
	rs, err := c.createNewRS(ctx, d, old, nextRevision)
	if err != nil {
		return nil, nil, err
	}
	return rs, old, nil
}

// newRSObject builds the ReplicaSet for d's current template.
func newRSObject(d *appsv1.Deployment, old []*appsv1.ReplicaSet, nextRevision int64) *appsv1.ReplicaSet {
	hash := TemplateHash(&d.Spec.Template, d.Status.CollisionCount)
	tmpl := *d.Spec.Template.DeepCopy()
	tmpl.Labels = withLabel(d.Spec.Template.Labels, appsv1.DefaultDeploymentUniqueLabelKey, hash)
	sel := d.Spec.Selector.DeepCopy()
	sel.MatchLabels = withLabel(sel.MatchLabels, appsv1.DefaultDeploymentUniqueLabelKey, hash)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:            d.Name + "-" + hash,
			Namespace:       d.Namespace,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, controllerKind)},
			Labels:          tmpl.Labels,
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        ptr.To[int32](0),
			MinReadySeconds: d.Spec.MinReadySeconds,
			Selector:        sel,
			Template:        tmpl,
		},
	}
	rs.Spec.Replicas = ptr.To(newRSReplicas(d, withNew(old, rs), rs))
	setNewRSAnnotations(d, rs, nextRevision, false)
	return rs
}

func withLabel(m map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for key, val := range m {
		out[key] = val
	}
	out[k] = v
	return out
}

// createNewRS creates the ReplicaSet for d's template. A name taken by a
// ReplicaSet with another template is a hash collision: collisionCount goes
// up and the next sync tries the next name.
func (c *Controller) createNewRS(ctx context.Context, d *appsv1.Deployment, old []*appsv1.ReplicaSet, nextRevision int64) (*appsv1.ReplicaSet, error) {
	logger := klog.FromContext(ctx)
	key := d.Namespace + "/" + d.Name
	want := newRSObject(d, old, nextRevision)
	created := true
	rs, err := c.client.AppsV1().ReplicaSets(d.Namespace).Create(ctx, want, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		created = false
		taken, getErr := c.rss.ReplicaSets(d.Namespace).Get(want.Name)
		if getErr != nil {
			return nil, fmt.Errorf("replicaset %s/%s exists but is not in the cache yet: %w", d.Namespace, want.Name, err)
		}
		if ref := metav1.GetControllerOfNoCopy(taken); ref != nil && ref.UID == d.UID && equalIgnoreHash(&taken.Spec.Template, &d.Spec.Template) {
			// Ours, created by an earlier sync the claim above missed.
			rs, err = taken, nil
			break
		}
		d.Status.CollisionCount = ptr.To(ptr.Deref(d.Status.CollisionCount, 0) + 1)
		if serr := c.writeStatus(ctx, d); serr != nil {
			return nil, serr
		}
		logger.V(2).Info("Hash collision, bumped collisionCount", "replicaSet", want.Name, "collisionCount", *d.Status.CollisionCount)
		return nil, fmt.Errorf("replicaset name %s/%s taken by another template (collisionCount now %d): %w", d.Namespace, want.Name, *d.Status.CollisionCount, err)
	case err != nil:
		if !apierrors.HasStatusCause(err, v1.NamespaceTerminatingCause) {
			if hasProgressDeadline(d) {
				setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, v1.ConditionFalse, ReasonFailedReplicaSetCreate,
					fmt.Sprintf("Failed to create new replica set %q: %v", want.Name, err), c.now()))
				_ = c.writeStatus(ctx, d)
			}
			c.recorder.Eventf(d, v1.EventTypeWarning, "FailedCreate", "Failed to create new replica set %q: %v", want.Name, err)
		}
		return nil, fmt.Errorf("create replicaset %s/%s: %w", d.Namespace, want.Name, err)
	}
	if created {
		c.tracker.Created(key, rs.Name)
		if n := replicas(rs); n > 0 {
			c.recorder.Eventf(d, v1.EventTypeNormal, "ScalingReplicaSet", "Scaled up replica set %s from 0 to %d", rs.Name, n)
		}
		logger.V(2).Info("Created new ReplicaSet", "replicaSet", klog.KObj(rs), "replicas", replicas(rs))
	}
	changed := setDeploymentRevision(d, strconv.FormatInt(nextRevision, 10))
	if created && hasProgressDeadline(d) {
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, v1.ConditionTrue, ReasonNewReplicaSetCreated,
			fmt.Sprintf("Created new replica set %q", rs.Name), c.now()))
		changed = true
	}
	if changed {
		if err := c.writeStatus(ctx, d); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

// setDeploymentRevision records rev in d's revision annotation.
func setDeploymentRevision(d *appsv1.Deployment, rev string) bool {
	if d.Annotations[RevisionAnnotation] == rev {
		return false
	}
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[RevisionAnnotation] = rev
	return true
}

// scaleRS sets rs to size to (and its replica annotations to d's current
// values), recording a ScalingReplicaSet event when the size changed. It
// writes with rs's resourceVersion, so a decision taken on a stale cache
// fails with a conflict instead of being applied.
func (c *Controller) scaleRS(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet, to int32) (*appsv1.ReplicaSet, error) {
	from := replicas(rs)
	maxN := desired(d) + maxSurge(d)
	if from == to && !replicaAnnotationsStale(rs, desired(d), maxN) {
		return rs, nil
	}
	cp := rs.DeepCopy()
	cp.Spec.Replicas = ptr.To(to)
	setReplicaAnnotations(cp, desired(d), maxN)
	got, err := c.client.AppsV1().ReplicaSets(cp.Namespace).Update(ctx, cp, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("scale replicaset %s/%s to %d: %w", rs.Namespace, rs.Name, to, err)
	}
	c.tracker.Updated(d.Namespace+"/"+d.Name, got.Name, rs.ResourceVersion, got.ResourceVersion)
	if from != to {
		op := "up"
		if to < from {
			op = "down"
		}
		c.recorder.Eventf(d, v1.EventTypeNormal, "ScalingReplicaSet", "Scaled %s replica set %s from %d to %d", op, rs.Name, from, to)
		klog.FromContext(ctx).V(2).Info("Scaled ReplicaSet", "replicaSet", klog.KObj(rs), "from", from, "to", to)
	}
	return got, nil
}

// applyPlan performs resizes in order, replacing each ReplicaSet in rss by
// its written version. It reports whether any size changed.
func (c *Controller) applyPlan(ctx context.Context, d *appsv1.Deployment, plan []resize, rss ...[]*appsv1.ReplicaSet) (bool, error) {
	scaled := false
	for _, r := range plan {
		got, err := c.scaleRS(ctx, d, r.RS, r.To)
		if err != nil {
			return scaled, err
		}
		if replicas(r.RS) != r.To {
			scaled = true
		}
		for _, list := range rss {
			for i := range list {
				if list[i] == r.RS {
					list[i] = got
				}
			}
		}
	}
	return scaled, nil
}

// cleanup deletes the oldest scaled-down ReplicaSets beyond
// revisionHistoryLimit. ReplicaSets still running pods, or whose latest spec
// their controller has not observed yet, are kept.
func (c *Controller) cleanup(ctx context.Context, d *appsv1.Deployment, old []*appsv1.ReplicaSet) error {
	if d.Spec.RevisionHistoryLimit == nil {
		return nil
	}
	var alive []*appsv1.ReplicaSet
	for _, rs := range old {
		if rs != nil && rs.DeletionTimestamp == nil {
			alive = append(alive, rs)
		}
	}
	excess := len(alive) - int(*d.Spec.RevisionHistoryLimit)
	if excess <= 0 {
		return nil
	}
	sort.SliceStable(alive, func(i, j int) bool {
		ri, rj := revision(alive[i]), revision(alive[j])
		if ri == rj {
			return olderThan(alive[i], alive[j])
		}
		return ri < rj
	})
	for _, rs := range alive[:excess] {
		if rs.Status.Replicas != 0 || replicas(rs) != 0 || rs.Generation > rs.Status.ObservedGeneration {
			continue
		}
		err := c.client.AppsV1().ReplicaSets(rs.Namespace).Delete(ctx, rs.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &rs.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete old replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
		}
		c.tracker.Deleted(d.Namespace+"/"+d.Name, rs.Name)
		klog.FromContext(ctx).V(2).Info("Deleted old ReplicaSet beyond revisionHistoryLimit", "replicaSet", klog.KObj(rs))
	}
	return nil
}

// podsByRS groups the pods d's selector matches by the ReplicaSet that
// controls them, for the ReplicaSets in rsList (Recreate waits on them).
func (c *Controller) podsByRS(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) (map[types.UID][]*v1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, err
	}
	pods, err := c.pods.Pods(d.Namespace).List(sel)
	if err != nil {
		return nil, err
	}
	out := make(map[types.UID][]*v1.Pod, len(rsList))
	for _, rs := range rsList {
		out[rs.UID] = nil
	}
	for _, p := range pods {
		ref := metav1.GetControllerOfNoCopy(p)
		if ref == nil {
			continue
		}
		if _, ok := out[ref.UID]; ok {
			out[ref.UID] = append(out[ref.UID], p)
		}
	}
	return out, nil
}
