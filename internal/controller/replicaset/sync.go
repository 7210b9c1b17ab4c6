package replicaset

import (
	"context"
	"errors"
	"fmt"
	"sync"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// slowStartInitialBatch is the first create batch; batches double while
// they succeed, so an owner whose pods are all rejected (quota, admission)
// costs one failed request per sync instead of hundreds.
const slowStartInitialBatch = 1

// statusRetries is how often a conflicting status write is retried on a
// fresh copy before the sync fails and is requeued.
const statusRetries = 1

func (c *Controller) sync(ctx context.Context, key string) error {
	start := c.opts.Clock.Now()
	logger := klog.FromContext(ctx).WithValues("owner", key)
	ctx = klog.NewContext(ctx, logger)
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	o, err := c.kind.Get(ns, name)
	if apierrors.IsNotFound(err) {
		c.exp.Delete(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get %s %s: %w", c.kind.GVK().Kind, key, err)
	}
	// Read before listing pods: a pod event that lowers the expectations
	// after this point also requeues the key.
	needsManage := c.exp.Satisfied(key)
	selector, err := o.Selector()
	if err != nil {
		// Invalid selectors cannot be fixed by retrying.
		logger.Error(err, "Ignoring owner with invalid selector")
		return nil
	}
	all, err := c.pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list pods of %s: %w", key, err)
	}
	var active, terminating []*v1.Pod
	for _, p := range all {
		switch {
		case isActive(p):
			active = append(active, p)
		case isTerminating(p):
			terminating = append(terminating, p)
		}
	}
	cl := &claimer{
		client: c.client, gvk: c.kind.GVK(), owner: o, selector: selector,
		fresh: func(ctx context.Context) (owner, error) { return c.kind.GetFresh(ctx, ns, name) },
	}
	owned, err := cl.claim(ctx, active)
	if err != nil {
		return err
	}

	var manageErr error
	if needsManage && o.GetDeletionTimestamp() == nil {
		manageErr = c.manage(ctx, key, o, owned)
	}

	now := c.opts.Clock.Now()
	st, wait := computeStatus(statusInput{
		Owner:           o,
		Active:          owned,
		Terminating:     controlledBy(terminating, o, selector),
		WithTerminating: c.kind.HasTerminatingReplicas(),
		ManageErr:       manageErr,
		Now:             now,
	})
	if err := c.writeStatus(ctx, o, st); err != nil {
		return errors.Join(manageErr, err)
	}
	if wait > 0 && manageErr == nil {
		c.requeueAfter(key, wait)
	}
	logger.V(4).Info("Synced", "replicas", st.Replicas, "ready", st.ReadyReplicas, "available", st.AvailableReplicas, "duration", c.opts.Clock.Since(start))
	return manageErr
}

// controlledBy returns the pods of pods that o controls and selects.
func controlledBy(pods []*v1.Pod, o owner, selector labels.Selector) []*v1.Pod {
	var out []*v1.Pod
	for _, p := range pods {
		if ref := metav1.GetControllerOfNoCopy(p); ref != nil && ref.UID == o.GetUID() && selector.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	return out
}

func (c *Controller) writeStatus(ctx context.Context, o owner, st replicaStatus) error {
	for attempt := 0; ; attempt++ {
		if statusEqual(o.Status(), st) {
			return nil
		}
		_, err := c.kind.UpdateStatus(ctx, o, st)
		if err == nil {
			return nil
		}
		if attempt >= statusRetries || !apierrors.IsConflict(err) {
			return fmt.Errorf("update status of %s %s/%s: %w", c.kind.GVK().Kind, o.GetNamespace(), o.GetName(), err)
		}
		fresh, gerr := c.kind.GetFresh(ctx, o.GetNamespace(), o.GetName())
		if gerr != nil {
			return fmt.Errorf("update status of %s %s/%s: %w", c.kind.GVK().Kind, o.GetNamespace(), o.GetName(), errors.Join(err, gerr))
		}
		// Counts come from pods, not from the object; only the
		// generation and carried-over conditions follow the fresh copy.
		st.ObservedGeneration = fresh.GetGeneration()
		o = fresh
	}
}

// manage creates or deletes pods so that owned (the owner's active pods)
// reaches the desired count.
func (c *Controller) manage(ctx context.Context, key string, o owner, owned []*v1.Pod) error {
	diff := len(owned) - int(o.Replicas())
	switch {
	case diff < 0:
		return c.createPods(ctx, key, o, min(-diff, c.opts.BurstReplicas))
	case diff > 0:
		return c.deletePods(ctx, key, o, owned, min(diff, c.opts.BurstReplicas))
	}
	return nil
}

func (c *Controller) createPods(ctx context.Context, key string, o owner, n int) error {
	logger := klog.FromContext(ctx)
	logger.V(2).Info("Too few replicas", "need", o.Replicas(), "creating", n)
	c.exp.ExpectCreations(key, n)
	done, err := slowStart(n, slowStartInitialBatch, func() error { return c.createPod(ctx, o) })
	if skipped := n - done; skipped > 0 {
		// Creates never attempted or rejected will never be observed.
		logger.V(2).Info("Slow-start failure, skipping creates", "skipped", skipped)
		for range skipped {
			c.exp.CreationObserved(key)
		}
	}
	return err
}

func (c *Controller) createPod(ctx context.Context, o owner) error {
	pod, err := podFromTemplate(o, c.kind.GVK().GroupVersion().String(), c.kind.GVK().Kind)
	if err != nil {
		c.recorder.Eventf(o.Object(), v1.EventTypeWarning, reasonFailedCreate, "Error creating: %v", err)
		return err
	}
	got, err := c.client.CoreV1().Pods(o.GetNamespace()).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if apierrors.HasStatusCause(err, v1.NamespaceTerminatingCause) {
			// Every create will fail until the namespace is gone; that is
			// not the owner's failure.
			return nil
		}
		c.recorder.Eventf(o.Object(), v1.EventTypeWarning, reasonFailedCreate, "Error creating: %v", err)
		return fmt.Errorf("create pod for %s/%s: %w", o.GetNamespace(), o.GetName(), err)
	}
	klog.FromContext(ctx).V(4).Info("Created pod", "pod", klog.KObj(got))
	c.recorder.Eventf(o.Object(), v1.EventTypeNormal, reasonSuccessfulCreate, "Created pod: %v", got.Name)
	return nil
}

// podFromTemplate builds the pod an owner creates: the template's labels,
// annotations, finalizers and spec, a name generated from the owner's, and
// a controller reference that blocks the owner's foreground deletion until
// the pod is gone.
func podFromTemplate(o owner, apiVersion, kind string) (*v1.Pod, error) {
	t := o.Template()
	if t == nil {
		return nil, fmt.Errorf("%s %s/%s has no pod template", kind, o.GetNamespace(), o.GetName())
	}
	if len(t.Labels) == 0 {
		// Without labels the pod could never be selected back.
		return nil, fmt.Errorf("unable to create pods, no labels")
	}
	t = t.DeepCopy()
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: namePrefix(o.GetName()),
			Namespace:    o.GetNamespace(),
			Labels:       t.Labels,
			Annotations:  t.Annotations,
			Finalizers:   t.Finalizers,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion:         apiVersion,
				Kind:               kind,
				Name:               o.GetName(),
				UID:                o.GetUID(),
				Controller:         ptr.To(true),
				BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: t.Spec,
	}
	return pod, nil
}

// namePrefix is "<owner>-" unless that is not a valid name prefix, in which
// case the API server's own suffixing of the bare name is relied on.
func namePrefix(owner string) string {
	p := owner + "-"
	if len(validation.NameIsDNSSubdomain(p, true)) != 0 {
		return owner
	}
	return p
}

func (c *Controller) deletePods(ctx context.Context, key string, o owner, owned []*v1.Pod, n int) error {
	logger := klog.FromContext(ctx)
	logger.V(2).Info("Too many replicas", "need", o.Replicas(), "deleting", n)
	victims := podsToDelete(owned, c.colocated(o, owned), n, c.opts.Clock.Now())
	keys := make([]string, len(victims))
	for i, p := range victims {
		keys[i] = p.Namespace + "/" + p.Name
	}
	c.exp.ExpectDeletions(key, keys)

	errs := make([]error, len(victims))
	var wg sync.WaitGroup
	for i, p := range victims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.deletePodOf(ctx, key, o, p)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c *Controller) deletePodOf(ctx context.Context, key string, o owner, p *v1.Pod) error {
	// The UID precondition keeps a stale cache from deleting a new pod
	// that reused the name.
	err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(p.UID))})
	if err == nil {
		c.recorder.Eventf(o.Object(), v1.EventTypeNormal, reasonSuccessfulDelete, "Deleted pod: %v", p.Name)
		return nil
	}
	// The informer will not report this deletion (again).
	c.exp.DeletionObserved(key, p.Namespace+"/"+p.Name)
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // already gone, or a different pod now
	}
	c.recorder.Eventf(o.Object(), v1.EventTypeWarning, reasonFailedDelete, "Error deleting: %v", err)
	return fmt.Errorf("delete pod %s/%s: %w", p.Namespace, p.Name, err)
}

// colocated counts active pods per node across the owner and the owners
// that share its controller (the ReplicaSets of one Deployment), so that
// scale-down thins out the nodes the family crowds most.
func (c *Controller) colocated(o owner, owned []*v1.Pod) map[string]int {
	counts := map[string]int{}
	seen := map[string]bool{}
	add := func(p *v1.Pod) {
		if seen[string(p.UID)] || !isActive(p) {
			return
		}
		seen[string(p.UID)] = true
		counts[p.Spec.NodeName]++
	}
	for _, p := range owned {
		add(p)
	}
	ref := metav1.GetControllerOfNoCopy(o)
	if ref == nil {
		return counts
	}
	siblings, err := c.kind.List(o.GetNamespace())
	if err != nil {
		return counts
	}
	for _, s := range siblings {
		sref := metav1.GetControllerOfNoCopy(s)
		if s.GetUID() == o.GetUID() || sref == nil || sref.UID != ref.UID {
			continue
		}
		sel, err := s.Selector()
		if err != nil {
			continue
		}
		pods, err := c.pods.Pods(s.GetNamespace()).List(sel)
		if err != nil {
			continue
		}
		for _, p := range pods {
			add(p)
		}
	}
	return counts
}

// slowStart calls fn count times in batches of growing size (initial,
// doubling) and stops after the first batch with a failure. It returns how
// many calls succeeded and the first error.
func slowStart(count, initial int, fn func() error) (int, error) {
	done := 0
	for batch := min(count, initial); batch > 0; batch = min(2*batch, count-done) {
		errs := make(chan error, batch)
		var wg sync.WaitGroup
		for range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := fn(); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		done += batch - len(errs)
		if err, failed := <-errs; failed {
			return done, err
		}
	}
	return done, nil
}
