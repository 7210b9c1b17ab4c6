package endpoints

import (
	"context"
	"fmt"
	"time"

	"github.com/portal-net/portal/internal/controller/internal/podutil"
	"github.com/portal-net/portal/internal/controller/internal/runner"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Options tunes the controller.
type Options struct {
	// BatchPeriod delays syncs triggered by pod changes so bursts coalesce.
	BatchPeriod time.Duration
}

// Controller keeps the Endpoints object of every selector Service current.
type Controller struct {
	client    kubernetes.Interface
	services  corelisters.ServiceLister
	endpoints corelisters.EndpointsLister
	tracker   *runner.Tracker
	loop      *runner.Loop
	index     *runner.SelectorIndex
}

// New registers informer handlers on f; the caller starts f.
func New(client kubernetes.Interface, f informers.SharedInformerFactory, opts Options) *Controller {
	svcInf := f.Core().V1().Services()
	podInf := f.Core().V1().Pods()
	epInf := f.Core().V1().Endpoints()
	c := &Controller{
		client:    client,
		services:  svcInf.Lister(),
		endpoints: epInf.Lister(),
		tracker:   runner.NewTracker(),
		index:     runner.MustSelectorIndex(f),
	}
	c.loop = &runner.Loop{
		Name:        "endpoints",
		Queue:       runner.NewQueue("endpoints"),
		Synced:      []cache.InformerSynced{svcInf.Informer().HasSynced, podInf.Informer().HasSynced, epInf.Informer().HasSynced},
		Sync:        c.sync,
		BatchPeriod: opts.BatchPeriod,
	}
	_, _ = svcInf.Informer().AddEventHandler(runner.OnEveryEvent(c.loop.Enqueue))
	_, _ = podInf.Informer().AddEventHandler(c.loop.PodServiceHandler(c.index))
	// Our objects edited or deleted by someone else converge back.
	_, _ = epInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj interface{}) { c.loop.Enqueue(obj) },
		DeleteFunc: c.loop.Enqueue,
	})
	return c
}

// Run processes services until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers) }

// ours reports whether ep was written by this controller; only those are
// ever deleted, so hand-written Endpoints survive their Service's changes.
func ours(ep *v1.Endpoints) bool { return ep.Labels[discovery.LabelSkipMirror] == "true" }

func (c *Controller) sync(ctx context.Context, key string) error {
	logger := klog.FromContext(ctx).WithValues("service", key)
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	existing, err := c.endpoints.Endpoints(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("get endpoints %s: %w", key, err)
	}
	if err != nil {
		existing = nil
	}
	cached := map[string]string{}
	if existing != nil {
		cached[name] = existing.ResourceVersion
	}
	if c.tracker.Stale(key, cached) {
		return runner.ErrStale
	}
	api := c.client.CoreV1().Endpoints(ns)

	svc, err := c.services.Services(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("get service %s: %w", key, err)
	}
	if err != nil || svc.Spec.Type == v1.ServiceTypeExternalName {
		if existing == nil || !ours(existing) {
			return nil
		}
		if err := api.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete endpoints %s: %w", key, err)
		}
		c.tracker.Deleted(key, name)
		logger.V(2).Info("Deleted Endpoints of removed service")
		return nil
	}
	if !podutil.ServesSelector(svc) {
		return nil
	}
	pods, err := c.index.PodsFor(ns, svc.Spec.Selector)
	if err != nil {
		return fmt.Errorf("list pods of %s: %w", key, err)
	}
	want, action := Reconcile(svc, pods, existing)
	switch action {
	case ActionNone:
		return nil
	case ActionCreate:
		got, err := api.Create(ctx, want, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			// The cache lags; retry once it shows the object.
			return runner.ErrStale
		}
		if err != nil {
			return fmt.Errorf("create endpoints %s: %w", key, err)
		}
		c.tracker.Created(key, got.Name)
	case ActionUpdate:
		got, err := api.Update(ctx, want, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("update endpoints %s: %w", key, err)
		}
		c.tracker.Updated(key, got.Name, existing.ResourceVersion, got.ResourceVersion)
	}
	logger.V(2).Info("Synced Endpoints", "action", action, "subsets", len(want.Subsets), "overCapacity", want.Annotations[OverCapacityAnnotation] != "")
	return nil
}
