package namespace

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/portal-net/portal/internal/controller/internal/runner"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
)

// Options tunes the controller; zero values mean the defaults.
type Options struct {
	// MinRetry is the first delay before looking again at a namespace whose
	// content is still going; it doubles up to MaxRetry. Default 500ms.
	MinRetry time.Duration
	// MaxRetry caps that delay. Default 15s, upstream's finalizer estimate.
	MaxRetry time.Duration
}

// Controller finishes the deletion of Terminating namespaces.
type Controller struct {
	client  kubernetes.Interface
	deleter *contentDeleter
	opts    Options
	loop    *runner.Loop

	mu      sync.Mutex
	backoff map[string]time.Duration
}

// New registers informer handlers on f; the caller starts f. md and disc
// reach resources the typed client does not know. The recorder is taken
// for the common constructor shape only: like upstream's, this controller
// reports through namespace conditions, not events.
func New(client kubernetes.Interface, md metadata.Interface, disc discovery.DiscoveryInterface, f informers.SharedInformerFactory, _ record.EventRecorder, opts Options) *Controller {
	if opts.MinRetry <= 0 {
		opts.MinRetry = 500 * time.Millisecond
	}
	if opts.MaxRetry <= 0 {
		opts.MaxRetry = finalizerWait
	}
	nsInf := f.Core().V1().Namespaces()
	c := &Controller{
		client:  client,
		deleter: &contentDeleter{md: md, disc: disc, now: time.Now},
		opts:    opts,
		backoff: map[string]time.Duration{},
	}
	c.loop = &runner.Loop{
		Name:   "namespace",
		Queue:  runner.NewQueue("namespace"),
		Synced: []cache.InformerSynced{nsInf.Informer().HasSynced},
		Sync:   c.sync,
	}
	enqueue := func(obj interface{}) {
		if ns, ok := runner.Unwrap(obj).(*v1.Namespace); ok && ns.DeletionTimestamp != nil {
			c.loop.Enqueue(ns)
		}
	}
	_, _ = nsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj interface{}) { enqueue(obj) },
	})
	return c
}

// Run deletes namespace content until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers) }

func (c *Controller) sync(ctx context.Context, name string) error {
	logger := klog.FromContext(ctx).WithValues("namespace", name)
	// A live read: acting on a cached namespace that was already finalized
	// and recreated would empty the new one.
	ns, err := c.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		c.forget(name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get namespace %s: %w", name, err)
	}
	if ns.DeletionTimestamp == nil || !slices.Contains(ns.Spec.Finalizers, v1.FinalizerKubernetes) {
		c.forget(name)
		return nil
	}
	start := time.Now()
	progress, wait, err := c.deleter.deleteAll(ctx, name)
	if err != nil {
		return err
	}
	if err := c.updateStatus(ctx, ns, progress); err != nil {
		return err
	}
	if !progress.Empty() {
		delay := c.nextDelay(name, wait)
		logger.V(2).Info("Namespace content remaining", "remaining", progress.Remaining, "failures", len(progress.DeleteFailures)+len(progress.DiscoveryFailures), "retryIn", delay)
		c.loop.Queue.AddAfter(name, delay)
		return nil
	}
	if err := c.finalize(ctx, name); err != nil {
		return err
	}
	c.forget(name)
	logger.V(2).Info("Namespace emptied and finalized", "duration", time.Since(start))
	return nil
}

// nextDelay doubles the namespace's delay from MinRetry up to MaxRetry,
// and never waits past the content's own estimate: fast content is seen
// gone quickly, slow content is not polled hard.
func (c *Controller) nextDelay(name string, estimate time.Duration) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.backoff[name]
	if d == 0 {
		d = c.opts.MinRetry
	} else {
		d = min(2*d, c.opts.MaxRetry)
	}
	c.backoff[name] = d
	if estimate > 0 && estimate < d {
		return estimate
	}
	return d
}

func (c *Controller) forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.backoff, name)
}

// updateStatus writes the deletion conditions when they changed.
func (c *Controller) updateStatus(ctx context.Context, ns *v1.Namespace, p Progress) error {
	want := p.Conditions()
	cur := ns
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		conds, changed := mergeConditions(cur.Status.Conditions, want, metav1.Now())
		if !changed && cur.Status.Phase == v1.NamespaceTerminating {
			return nil
		}
		upd := cur.DeepCopy()
		upd.Status.Conditions = conds
		upd.Status.Phase = v1.NamespaceTerminating
		_, err := c.client.CoreV1().Namespaces().UpdateStatus(ctx, upd, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			fresh, gerr := c.client.CoreV1().Namespaces().Get(ctx, ns.Name, metav1.GetOptions{})
			if gerr != nil {
				return gerr
			}
			cur = fresh
		}
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}

// finalize removes our finalizer; the API server then deletes the
// namespace if no other finalizer remains.
func (c *Controller) finalize(ctx context.Context, name string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ns, err := c.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("get namespace %s: %w", name, err)
		}
		if !slices.Contains(ns.Spec.Finalizers, v1.FinalizerKubernetes) {
			return nil
		}
		ns.Spec.Finalizers = slices.DeleteFunc(slices.Clone(ns.Spec.Finalizers), func(f v1.FinalizerName) bool { return f == v1.FinalizerKubernetes })
		_, err = c.client.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("finalize namespace %s: %w", name, err)
		}
		return nil
	})
}
