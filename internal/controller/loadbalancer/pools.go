package loadbalancer

import (
	"context"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	portalv1 "github.com/portal-net/portal/internal/api/portal/v1"
	"github.com/portal-net/portal/internal/lb/ipam"
)

// DefaultPoolName is the pool --lb-pool keeps.
const DefaultPoolName = "default"

// PoolConditionReady is the AddressPool condition this controller keeps.
const PoolConditionReady = "Ready"

// loadPools hands the AddressPools in the cache to the allocator. Pools
// it cannot use (the API server validates with the same parser, so only
// objects stored by something else) are left out and say why in their
// status.
func (c *Controller) loadPools() {
	c.mu.Lock()
	defer c.mu.Unlock()
	var pools []ipam.Pool
	invalid := map[string]string{}
	for _, obj := range c.poolInf.GetStore().List() {
		ap, ok := obj.(*portalv1.AddressPool)
		if !ok {
			continue
		}
		p, errs := ipam.PoolFromAPI(ap)
		if len(errs) > 0 {
			invalid[ap.Name] = errs.ToAggregate().Error()
			continue
		}
		pools = append(pools, p)
	}
	orphans, err := c.alloc.SetPools(pools)
	if err != nil { // only a pool PoolFromAPI accepted and validate refuses
		klog.ErrorS(err, "Address pools not applied")
		return
	}
	c.invalid = invalid
	for _, o := range orphans {
		klog.InfoS("Address no longer allowed by the pools; the service gets another", "service", o.Service, "address", o.Address, "reason", o.Err)
	}
}

// poolsChanged reloads the pools and resyncs every service of ours: an
// orphaned address moves, a pending service may fit now.
func (c *Controller) poolsChanged() {
	c.loadPools()
	svcs, err := c.services.List(labels.Everything())
	if err == nil {
		for _, s := range svcs {
			if c.ours(s) {
				c.loop.Enqueue(s)
			}
		}
	}
	c.enqueuePoolStatuses()
}

func (c *Controller) enqueuePoolStatuses() {
	for _, name := range c.poolInf.GetStore().ListKeys() {
		c.poolLoop.Queue.Add(name)
	}
}

// syncPoolStatus writes a pool's usage and Ready condition when they
// changed.
func (c *Controller) syncPoolStatus(ctx context.Context, name string) error {
	obj, exists, err := c.poolInf.GetStore().GetByKey(name)
	if err != nil || !exists {
		return err
	}
	ap := obj.(*portalv1.AddressPool)
	next := ap.DeepCopy()
	cond := metav1.Condition{Type: PoolConditionReady, ObservedGeneration: ap.Generation}
	c.mu.Lock()
	why, bad := c.invalid[name]
	c.mu.Unlock()
	if u, ok := c.alloc.Usage(name); ok && !bad {
		next.Status.Assigned, next.Status.AvailableIPv4, next.Status.AvailableIPv6 = u.Assigned, u.Available4, u.Available6
		cond.Status, cond.Reason = metav1.ConditionTrue, "Ready"
		cond.Message = fmt.Sprintf("%d addresses assigned", u.Assigned)
	} else {
		if why == "" {
			why = "pool not loaded yet"
		}
		next.Status.Assigned, next.Status.AvailableIPv4, next.Status.AvailableIPv6 = 0, 0, 0
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "InvalidSpec", why
	}
	meta.SetStatusCondition(&next.Status.Conditions, cond)
	if next.Status.Assigned == ap.Status.Assigned && next.Status.AvailableIPv4 == ap.Status.AvailableIPv4 &&
		next.Status.AvailableIPv6 == ap.Status.AvailableIPv6 && conditionsEqual(next.Status.Conditions, ap.Status.Conditions) {
		return nil
	}
	_, err = c.pools.UpdateStatus(ctx, next)
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // the informer brings the newer version, which is queued again
	}
	return err
}

// ensureDefaultPool makes the "default" AddressPool hold --lb-pool's
// addresses, retrying until it succeeds or ctx ends. Only the addresses
// are the flag's: other fields set on the object are kept.
func (c *Controller) ensureDefaultPool(ctx context.Context) {
	want := slices.Clone(c.opts.DefaultPool)
	_ = wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Steps: 1 << 30, Cap: 10 * time.Second},
		func(ctx context.Context) (bool, error) {
			err := c.applyDefaultPool(ctx, want)
			if err != nil {
				klog.InfoS("Default address pool not written yet, retrying", "err", err)
			}
			return err == nil, nil
		})
}

func (c *Controller) applyDefaultPool(ctx context.Context, want []string) error {
	cur, err := c.pools.Get(ctx, DefaultPoolName)
	if apierrors.IsNotFound(err) {
		_, err = c.pools.Create(ctx, &portalv1.AddressPool{
			ObjectMeta: metav1.ObjectMeta{Name: DefaultPoolName, Labels: map[string]string{"app.kubernetes.io/managed-by": "portal"}},
			Spec:       portalv1.AddressPoolSpec{Addresses: want},
		})
		if err == nil {
			klog.InfoS("Created the default address pool", "addresses", want)
		}
		return err
	}
	if err != nil {
		return err
	}
	if slices.Equal(cur.Spec.Addresses, want) {
		return nil
	}
	klog.InfoS("Setting the default address pool's addresses from --lb-pool", "was", cur.Spec.Addresses, "addresses", want)
	cur.Spec.Addresses = want
	_, err = c.pools.Update(ctx, cur)
	return err
}
