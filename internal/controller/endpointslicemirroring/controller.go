package endpointslicemirroring

import (
	"context"
	"fmt"

	"github.com/portal-net/portal/internal/controller/internal/runner"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Options tunes the controller.
type Options struct {
	// MaxEndpointsPerSubset defaults to 1000.
	MaxEndpointsPerSubset int
}

// Controller mirrors hand-written Endpoints into EndpointSlices.
type Controller struct {
	client     kubernetes.Interface
	opts       Options
	services   corelisters.ServiceLister
	endpoints  corelisters.EndpointsLister
	tracker    *runner.Tracker
	sliceIndex *runner.SliceIndex
	loop       *runner.Loop
}

// New registers informer handlers on f; the caller starts f.
func New(client kubernetes.Interface, f informers.SharedInformerFactory, opts Options) *Controller {
	if opts.MaxEndpointsPerSubset < 1 {
		opts.MaxEndpointsPerSubset = DefaultMaxEndpointsPerSubset
	}
	svcInf := f.Core().V1().Services()
	epInf := f.Core().V1().Endpoints()
	sliceInf := f.Discovery().V1().EndpointSlices()
	c := &Controller{
		client:     client,
		opts:       opts,
		services:   svcInf.Lister(),
		endpoints:  epInf.Lister(),
		tracker:    runner.NewTracker(),
		sliceIndex: runner.MustSliceIndex(f),
	}
	c.loop = &runner.Loop{
		Name:   "endpointslicemirroring",
		Queue:  runner.NewQueue("endpointslicemirroring"),
		Synced: []cache.InformerSynced{svcInf.Informer().HasSynced, epInf.Informer().HasSynced, sliceInf.Informer().HasSynced},
		Sync:   c.sync,
	}
	byKey := runner.OnEveryEvent(c.loop.Enqueue)
	_, _ = svcInf.Informer().AddEventHandler(byKey)
	_, _ = epInf.Informer().AddEventHandler(byKey)
	slice := func(obj interface{}) {
		s, ok := runner.Unwrap(obj).(*discovery.EndpointSlice)
		if ok && s.Labels[discovery.LabelManagedBy] == ControllerName && s.Labels[discovery.LabelServiceName] != "" {
			c.loop.Queue.Add(s.Namespace + "/" + s.Labels[discovery.LabelServiceName])
		}
	}
	_, _ = sliceInf.Informer().AddEventHandler(runner.OnEveryEvent(slice))
	return c
}

// Run processes Endpoints until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers) }

func (c *Controller) sync(ctx context.Context, key string) error {
	logger := klog.FromContext(ctx).WithValues("endpoints", key)
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	existing, err := c.sliceIndex.Of(ns, name, ControllerName)
	if err != nil {
		return fmt.Errorf("list endpointslices of %s: %w", key, err)
	}
	cached := make(map[string]string, len(existing))
	for _, s := range existing {
		cached[s.Name] = s.ResourceVersion
	}
	if c.tracker.Stale(key, cached) {
		return runner.ErrStale
	}
	svc, err := c.services.Services(ns).Get(name)
	if err != nil {
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("get service %s: %w", key, err)
		}
		svc = nil
	}
	ep, err := c.endpoints.Endpoints(ns).Get(name)
	if err != nil {
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("get endpoints %s: %w", key, err)
		}
		ep = (*v1.Endpoints)(nil)
	}
	plan := Reconcile(svc, ep, existing, c.opts.MaxEndpointsPerSubset)
	if plan.Empty() {
		return nil
	}
	err = runner.ApplySlices(ctx, c.client, c.tracker, key, plan)
	logger.V(2).Info("Mirrored Endpoints", "created", len(plan.Create), "updated", len(plan.Update), "deleted", len(plan.Delete), "err", err)
	return err
}
