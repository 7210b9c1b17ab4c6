// Package loadbalancer gives `type: LoadBalancer` services an address
// without a cloud (issue 9): it assigns status.loadBalancer.ingress from the
// cluster's address pools (internal/lb/ipam keeps the books) and says, with
// an event and the service condition "portal.dev/AddressAssigned", why a
// service stays pending. The service proxy already serves ingress
// addresses on every node; announcing them on the wire (ARP/NDP) is the
// agent's part.
//
// Services with a spec.loadBalancerClass other than Class are left to
// whoever implements that class. At start the controller restores every
// address already in a status (oldest service first) before assigning
// anything, so a restart never moves an address.
package loadbalancer

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	poolclient "github.com/portal-net/portal/internal/api/portal/client"
	portalv1 "github.com/portal-net/portal/internal/api/portal/v1"
	"github.com/portal-net/portal/internal/controller/internal/runner"
	"github.com/portal-net/portal/internal/lb/ipam"
)

// ConditionAssigned is the service condition this controller keeps.
const ConditionAssigned = "portal.dev/AddressAssigned"

// Options configure the controller.
type Options struct {
	// DefaultPool, when set, are the addresses of the AddressPool named
	// "default" (--lb-pool): the controller creates that pool, or sets
	// its addresses, when it starts.
	DefaultPool []string
	// Class is the spec.loadBalancerClass this controller implements;
	// services without a class are always its own.
	Class string
}

// Controller assigns LoadBalancer addresses.
type Controller struct {
	client     kubernetes.Interface
	pools      poolclient.AddressPools
	recorder   record.EventRecorder
	services   corelisters.ServiceLister
	namespaces corelisters.NamespaceLister
	poolInf    cache.SharedIndexInformer
	alloc      *ipam.Allocator
	opts       Options
	loop       *runner.Loop
	// poolLoop keeps the AddressPools' status.
	poolLoop *runner.Loop

	restoreOnce sync.Once
	// invalid holds why pools the allocator does not use were refused.
	mu      sync.Mutex
	invalid map[string]string
}

// New registers informer handlers on f; the caller starts f. The
// AddressPool informer is the controller's own and runs with it.
func New(client kubernetes.Interface, pools poolclient.AddressPools, f informers.SharedInformerFactory, recorder record.EventRecorder, opts Options) (*Controller, error) {
	if _, err := ipam.ParseRanges(opts.DefaultPool...); err != nil {
		return nil, fmt.Errorf("default address pool: %w", err)
	}
	svcInf := f.Core().V1().Services()
	nsInf := f.Core().V1().Namespaces()
	c := &Controller{
		client:     client,
		pools:      pools,
		recorder:   recorder,
		services:   svcInf.Lister(),
		namespaces: nsInf.Lister(),
		poolInf:    poolclient.NewInformer(pools, 0),
		alloc:      ipam.New(),
		opts:       opts,
		invalid:    map[string]string{},
	}
	svcSynced, nsSynced := svcInf.Informer().HasSynced, nsInf.Informer().HasSynced
	c.loop = &runner.Loop{
		Name:  "loadbalancer",
		Queue: runner.NewQueue("loadbalancer"),
		// Synced once the caches are, and then (once) the pools are
		// loaded and the addresses in the statuses restored, before any
		// service is synced.
		Synced: []cache.InformerSynced{func() bool {
			if !svcSynced() || !nsSynced() || !c.poolInf.HasSynced() {
				return false
			}
			c.restoreOnce.Do(func() {
				c.loadPools()
				c.restore()
			})
			return true
		}},
		Sync: c.sync,
	}
	c.poolLoop = &runner.Loop{
		Name:   "loadbalancer-pools",
		Queue:  runner.NewQueue("loadbalancer-pools"),
		Synced: c.loop.Synced,
		Sync:   c.syncPoolStatus,
	}
	_, _ = svcInf.Informer().AddEventHandler(runner.OnEveryEvent(c.loop.Enqueue))
	_, _ = nsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		// Namespace labels decide pool selectors.
		UpdateFunc: func(_, obj any) {
			if ns, ok := runner.Unwrap(obj).(*v1.Namespace); ok {
				c.enqueueNamespace(ns.Name)
			}
		},
	})
	_, _ = c.poolInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.poolsChanged() },
		// Only spec changes (a new generation) matter: the status this
		// controller writes must not resync every service.
		UpdateFunc: func(old, obj any) {
			o, ok1 := old.(*portalv1.AddressPool)
			n, ok2 := obj.(*portalv1.AddressPool)
			if !ok1 || !ok2 || o.Generation != n.Generation {
				c.poolsChanged()
			}
		},
		DeleteFunc: func(obj any) { c.poolsChanged() },
	})
	return c, nil
}

// Run assigns addresses until ctx ends. One worker keeps the order of
// assignments (and so the addresses) independent of scheduling.
func (c *Controller) Run(ctx context.Context, _ int) {
	go c.poolInf.RunWithContext(ctx)
	go c.poolLoop.Run(ctx, 1)
	if len(c.opts.DefaultPool) > 0 {
		go c.ensureDefaultPool(ctx)
	}
	c.loop.Run(ctx, 1)
}

// ours reports whether svc is a LoadBalancer service of our class.
func (c *Controller) ours(svc *v1.Service) bool {
	if svc.Spec.Type != v1.ServiceTypeLoadBalancer {
		return false
	}
	return svc.Spec.LoadBalancerClass == nil || (c.opts.Class != "" && *svc.Spec.LoadBalancerClass == c.opts.Class)
}

// restore records the addresses services already hold, oldest first.
func (c *Controller) restore() {
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return
	}
	sort.Slice(svcs, func(i, j int) bool {
		a, b := svcs[i].CreationTimestamp, svcs[j].CreationTimestamp
		if !a.Equal(&b) {
			return a.Before(&b)
		}
		return svcs[i].Namespace+"/"+svcs[i].Name < svcs[j].Namespace+"/"+svcs[j].Name
	})
	for _, svc := range svcs {
		ips := ingressIPs(svc)
		if !c.ours(svc) || len(ips) == 0 {
			continue
		}
		req, err := ipam.RequestFromService(svc, c.namespaceLabels(svc.Namespace))
		if err == nil {
			_, err = c.alloc.Restore(req.Service, ips, req)
		}
		if err != nil {
			klog.InfoS("Address in the status not restored; the service gets a new one", "service", klog.KObj(svc), "err", err)
		}
	}
}

func ingressIPs(svc *v1.Service) []netip.Addr {
	var out []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(in.IP); err == nil {
			out = append(out, a)
		}
	}
	return out
}

func (c *Controller) namespaceLabels(ns string) map[string]string {
	n, err := c.namespaces.Get(ns)
	if err != nil {
		return map[string]string{v1.LabelMetadataName: ns}
	}
	return n.Labels
}

func (c *Controller) enqueueNamespace(ns string) {
	svcs, err := c.services.Services(ns).List(labels.Everything())
	if err != nil {
		return
	}
	for _, s := range svcs {
		if c.ours(s) {
			c.loop.Enqueue(s)
		}
	}
}

// enqueuePending queues every service of ours without an address: a
// released address may be theirs now.
func (c *Controller) enqueuePending() {
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return
	}
	for _, s := range svcs {
		if c.ours(s) && len(s.Status.LoadBalancer.Ingress) == 0 {
			c.loop.Enqueue(s)
		}
	}
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && !c.ours(svc)) {
		// Only a release changes the pools' usage: the many services that
		// are no load balancers cost nothing here.
		if c.alloc.Release(ipam.ServiceKey{Namespace: ns, Name: name}) {
			c.enqueuePending()
			c.enqueuePoolStatuses()
		}
		if err == nil && svc.Spec.Type != v1.ServiceTypeLoadBalancer && len(svc.Status.LoadBalancer.Ingress) > 0 &&
			meta.FindStatusCondition(svc.Status.Conditions, ConditionAssigned) != nil {
			// It was ours and is no load balancer any more.
			return c.writeStatus(ctx, svc, nil, nil)
		}
		return nil
	}
	if err != nil {
		return err
	}
	defer c.enqueuePoolStatuses()
	req, err := ipam.RequestFromService(svc, c.namespaceLabels(ns))
	var a ipam.Assignment
	if err == nil {
		a, err = c.alloc.Assign(req)
	}
	if err != nil {
		if len(svc.Status.LoadBalancer.Ingress) > 0 {
			c.enqueuePending() // what it held is free now
		}
		cond := &metav1.Condition{Type: ConditionAssigned, Status: metav1.ConditionFalse, Reason: ipam.Reason(err), Message: err.Error()}
		if old := meta.FindStatusCondition(svc.Status.Conditions, ConditionAssigned); old == nil || old.Status != cond.Status || old.Message != cond.Message {
			c.recorder.Event(svc, v1.EventTypeWarning, "AddressNotAssigned", err.Error())
		}
		return c.writeStatus(ctx, svc, nil, cond)
	}
	var ingress []v1.LoadBalancerIngress
	vip := v1.LoadBalancerIPModeVIP
	var msg []string
	for _, ad := range a.Addresses {
		ingress = append(ingress, v1.LoadBalancerIngress{IP: ad.IP.String(), IPMode: &vip})
		msg = append(msg, fmt.Sprintf("%s (pool %s)", ad.IP, ad.Pool))
	}
	cond := &metav1.Condition{Type: ConditionAssigned, Status: metav1.ConditionTrue, Reason: "Assigned", Message: "assigned " + strings.Join(msg, ", ")}
	if !sameIngress(svc.Status.LoadBalancer.Ingress, ingress) {
		c.recorder.Event(svc, v1.EventTypeNormal, "AddressAssigned", "Assigned "+strings.Join(msg, ", "))
	}
	return c.writeStatus(ctx, svc, ingress, cond)
}

// writeStatus sets the ingress and the condition (nil: removed) when they
// differ from the service's.
func (c *Controller) writeStatus(ctx context.Context, svc *v1.Service, ingress []v1.LoadBalancerIngress, cond *metav1.Condition) error {
	next := svc.DeepCopy()
	next.Status.LoadBalancer.Ingress = ingress
	if cond != nil {
		cond.ObservedGeneration = svc.Generation
		meta.SetStatusCondition(&next.Status.Conditions, *cond)
	} else {
		meta.RemoveStatusCondition(&next.Status.Conditions, ConditionAssigned)
	}
	if sameIngress(svc.Status.LoadBalancer.Ingress, next.Status.LoadBalancer.Ingress) && conditionsEqual(svc.Status.Conditions, next.Status.Conditions) {
		return nil
	}
	_, err := c.client.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // a newer version is on its way through the informer
	}
	return err
}

func sameIngress(a, b []v1.LoadBalancerIngress) bool {
	return slices.EqualFunc(a, b, func(x, y v1.LoadBalancerIngress) bool {
		return x.IP == y.IP && x.Hostname == y.Hostname && (x.IPMode == nil) == (y.IPMode == nil) && (x.IPMode == nil || *x.IPMode == *y.IPMode)
	})
}

func conditionsEqual(a, b []metav1.Condition) bool {
	return slices.EqualFunc(a, b, func(x, y metav1.Condition) bool {
		return x.Type == y.Type && x.Status == y.Status && x.Reason == y.Reason && x.Message == y.Message && x.ObservedGeneration == y.ObservedGeneration
	})
}
