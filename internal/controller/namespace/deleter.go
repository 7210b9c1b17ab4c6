package namespace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"
	"k8s.io/klog/v2"
)

// finalizerWait is how long objects held by finalizers are expected to
// take; it caps the retry delay for them, as upstream's estimate does.
const finalizerWait = 15 * time.Second

// contentDeleter removes everything in one namespace through the metadata
// client, so it needs no types for the resources it deletes.
type contentDeleter struct {
	md   metadata.Interface
	disc discovery.DiscoveryInterface
	now  func() time.Time
}

// resource is one deletable namespaced resource.
type resource struct {
	gvr              schema.GroupVersionResource
	deleteCollection bool
}

// discover lists the namespaced resources that can be listed and deleted.
// Groups that fail discovery are reported but do not stop the others.
func (d *contentDeleter) discover() ([]resource, map[schema.GroupVersion]error, error) {
	lists, err := d.disc.ServerPreferredNamespacedResources()
	var failed map[schema.GroupVersion]error
	if err != nil {
		var groupErr *discovery.ErrGroupDiscoveryFailed
		if !errors.As(err, &groupErr) {
			return nil, nil, fmt.Errorf("discover namespaced resources: %w", err)
		}
		failed = groupErr.Groups
	}
	var out []resource
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if !slices.Contains(r.Verbs, "list") || !slices.Contains(r.Verbs, "delete") {
				continue
			}
			out = append(out, resource{gvr: gv.WithResource(r.Name), deleteCollection: slices.Contains(r.Verbs, "deletecollection")})
		}
	}
	return out, failed, nil
}

// deleteAll makes one pass over every resource in ns and reports what is
// left, plus how long the slowest remaining object is expected to take.
func (d *contentDeleter) deleteAll(ctx context.Context, ns string) (Progress, time.Duration, error) {
	resources, discoveryFailures, err := d.discover()
	if err != nil {
		return Progress{}, 0, err
	}
	p := Progress{DiscoveryFailures: discoveryFailures, Remaining: map[schema.GroupResource]int{}, Finalizers: map[string]int{}}
	var wait time.Duration
	for _, r := range resources {
		left, w, err := d.deleteResource(ctx, ns, r)
		if err != nil {
			p.DeleteFailures = append(p.DeleteFailures, err)
			continue
		}
		if len(left) == 0 {
			continue
		}
		p.Remaining[r.gvr.GroupResource()] += len(left)
		for _, obj := range left {
			for _, f := range obj.Finalizers {
				p.Finalizers[f]++
			}
		}
		wait = max(wait, w)
	}
	if len(p.Remaining) == 0 {
		p.Remaining = nil
	}
	if len(p.Finalizers) == 0 {
		p.Finalizers = nil
	}
	return p, wait, nil
}

// deleteResource deletes all objects of r in ns and returns those still
// present afterwards (graceful pods, objects with finalizers).
func (d *contentDeleter) deleteResource(ctx context.Context, ns string, r resource) ([]metav1.PartialObjectMetadata, time.Duration, error) {
	logger := klog.FromContext(ctx)
	client := d.md.Resource(r.gvr).Namespace(ns)
	// Background propagation: dependents are the garbage collector's job,
	// and their own deletion here anyway.
	background := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &background}
	listed := false
	if r.deleteCollection {
		err := client.DeleteCollection(ctx, opts, metav1.ListOptions{})
		switch {
		case err == nil:
			listed = true
		case apierrors.IsMethodNotSupported(err) || apierrors.IsNotFound(err):
			// Discovery claimed support it lacks; delete one by one.
		default:
			return nil, 0, fmt.Errorf("delete collection of %s in %s: %w", r.gvr.GroupResource(), ns, err)
		}
	}
	list, err := client.List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
		return nil, 0, nil // resource went away with its API
	}
	if err != nil {
		return nil, 0, fmt.Errorf("list %s in %s: %w", r.gvr.GroupResource(), ns, err)
	}
	if !listed {
		var errs []error
		for _, obj := range list.Items {
			if obj.DeletionTimestamp != nil {
				continue
			}
			err := client.Delete(ctx, obj.Name, opts)
			if err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("delete %s %s/%s: %w", r.gvr.GroupResource(), ns, obj.Name, err))
			}
		}
		if len(errs) > 0 {
			return nil, 0, errors.Join(errs...)
		}
		if list, err = client.List(ctx, metav1.ListOptions{}); err != nil {
			return nil, 0, fmt.Errorf("list %s in %s: %w", r.gvr.GroupResource(), ns, err)
		}
	}
	if len(list.Items) > 0 {
		logger.V(4).Info("Content remaining", "namespace", ns, "resource", r.gvr.GroupResource(), "count", len(list.Items))
	}
	return list.Items, d.estimate(r.gvr.GroupResource(), list.Items), nil
}

// estimate is how long the remaining objects should take to go: a
// terminating pod's grace period runs out, anything else waits on its
// finalizers.
func (d *contentDeleter) estimate(gr schema.GroupResource, left []metav1.PartialObjectMetadata) time.Duration {
	if len(left) == 0 {
		return 0
	}
	if gr != v1.Resource("pods") {
		return finalizerWait
	}
	var wait time.Duration
	now := d.now()
	for _, p := range left {
		if p.DeletionTimestamp == nil {
			return time.Second // not yet seen deleting; look again soon
		}
		// The API server puts the grace period's end into the deletion
		// timestamp; an expired one means the kubelet is slow.
		wait = max(wait, p.DeletionTimestamp.Sub(now), time.Second)
	}
	return wait
}
