package endpointslice

import (
	"context"
	"fmt"
	"time"

	"github.com/portal-net/portal/internal/controller/internal/podutil"
	"github.com/portal-net/portal/internal/controller/internal/runner"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Options tunes the controller; zero values mean upstream defaults.
type Options struct {
	// MaxEndpointsPerSlice defaults to 100.
	MaxEndpointsPerSlice int
	// BatchPeriod delays syncs triggered by pod changes so bursts coalesce;
	// zero syncs as soon as a worker is free (the queue still coalesces).
	BatchPeriod time.Duration
}

// Controller keeps EndpointSlices of selector Services in line with pods.
type Controller struct {
	client     kubernetes.Interface
	opts       Options
	services   corelisters.ServiceLister
	nodes      corelisters.NodeLister
	tracker    *runner.Tracker
	sliceIndex *runner.SliceIndex
	loop       *runner.Loop
	index      *runner.SelectorIndex
}

// New registers informer handlers on f; the caller starts f.
func New(client kubernetes.Interface, f informers.SharedInformerFactory, opts Options) *Controller {
	if opts.MaxEndpointsPerSlice < 1 {
		opts.MaxEndpointsPerSlice = DefaultMaxEndpointsPerSlice
	}
	svcInf := f.Core().V1().Services()
	podInf := f.Core().V1().Pods()
	nodeInf := f.Core().V1().Nodes()
	sliceInf := f.Discovery().V1().EndpointSlices()
	c := &Controller{
		client:     client,
		opts:       opts,
		services:   svcInf.Lister(),
		nodes:      nodeInf.Lister(),
		tracker:    runner.NewTracker(),
		sliceIndex: runner.MustSliceIndex(f),
		index:      runner.MustSelectorIndex(f),
	}
	c.loop = &runner.Loop{
		Name:        "endpointslice",
		Queue:       runner.NewQueue("endpointslice"),
		Synced:      []cache.InformerSynced{svcInf.Informer().HasSynced, podInf.Informer().HasSynced, nodeInf.Informer().HasSynced, sliceInf.Informer().HasSynced},
		Sync:        c.sync,
		BatchPeriod: opts.BatchPeriod,
	}
	_, _ = svcInf.Informer().AddEventHandler(runner.OnEveryEvent(c.loop.Enqueue))
	_, _ = podInf.Informer().AddEventHandler(c.loop.PodServiceHandler(c.index))
	_, _ = nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(old, obj interface{}) {
			o, ok1 := old.(*v1.Node)
			n, ok2 := obj.(*v1.Node)
			if ok1 && ok2 && o.Labels[v1.LabelTopologyZone] != n.Labels[v1.LabelTopologyZone] {
				c.enqueueAllServices()
			}
		},
	})
	_, _ = sliceInf.Informer().AddEventHandler(runner.OnEveryEvent(c.enqueueSliceService))
	return c
}

// Run processes services until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers) }

func (c *Controller) enqueueAllServices() {
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return
	}
	for _, svc := range svcs {
		c.loop.Enqueue(svc)
	}
}

// enqueueSliceService reacts to someone else touching our slices (edits,
// deletions) so the Service converges back.
func (c *Controller) enqueueSliceService(obj interface{}) {
	s, ok := runner.Unwrap(obj).(*discovery.EndpointSlice)
	if !ok || s.Labels[discovery.LabelManagedBy] != ControllerName {
		return
	}
	if name := s.Labels[discovery.LabelServiceName]; name != "" {
		c.loop.Queue.Add(s.Namespace + "/" + name)
	}
}

func (c *Controller) sync(ctx context.Context, key string) error {
	logger := klog.FromContext(ctx).WithValues("service", key)
	start := time.Now()
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
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("get service %s: %w", key, err)
	}
	var plan Plan
	if err != nil || !podutil.ServesSelector(svc) || svc.DeletionTimestamp != nil {
		// Without a selector Service nothing of ours should remain. Owner
		// references would let a garbage collector do this, but slices
		// must not outlive the Service even where none runs.
		plan.Delete = existing
	} else {
		pods, err := c.index.PodsFor(ns, svc.Spec.Selector)
		if err != nil {
			return fmt.Errorf("list pods of %s: %w", key, err)
		}
		plan = Reconcile(Input{
			Service:              svc,
			Pods:                 pods,
			NodeZones:            c.zones(pods),
			Existing:             existing,
			MaxEndpointsPerSlice: c.opts.MaxEndpointsPerSlice,
		})
	}
	if plan.Empty() {
		logger.V(5).Info("EndpointSlices up to date")
		return nil
	}
	err = runner.ApplySlices(ctx, c.client, c.tracker, key, plan)
	logger.V(2).Info("Synced EndpointSlices", "created", len(plan.Create), "updated", len(plan.Update), "deleted", len(plan.Delete), "duration", time.Since(start), "err", err)
	return err
}

func (c *Controller) zones(pods []*v1.Pod) map[string]string {
	z := map[string]string{}
	for _, p := range pods {
		n := p.Spec.NodeName
		if n == "" {
			continue
		}
		if _, done := z[n]; done {
			continue
		}
		// A missing node only loses its zone: dropping the pod, as upstream
		// does, would blackhole services on clusters without Node objects.
		if node, err := c.nodes.Get(n); err == nil {
			z[n] = node.Labels[v1.LabelTopologyZone]
		} else {
			z[n] = ""
		}
	}
	return z
}
