package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// ErrStale asks for a quiet retry: the cache has not caught up with our own
// writes yet, so acting now would duplicate them.
var ErrStale = errors.New("informer cache has not observed the controller's last writes yet")

// maxRetries bounds retries of one key before it is dropped until its next
// event; the rate limiter's backoff makes this span several minutes.
const maxRetries = 15

// Loop runs Sync for keys from Queue with a pool of workers.
type Loop struct {
	Name   string
	Queue  workqueue.TypedRateLimitingInterface[string]
	Synced []cache.InformerSynced
	Sync   func(ctx context.Context, key string) error
	// BatchPeriod delays pod-driven work so bursts coalesce into one sync.
	BatchPeriod time.Duration
}

// NewQueue returns the rate-limited queue every controller uses.
func NewQueue(name string) workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: name},
	)
}

// Run blocks until ctx ends. Informers must already be started (or be
// started concurrently) by the owner of the factory.
func (l *Loop) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrash()
	defer l.Queue.ShutDown()
	logger := klog.FromContext(ctx).WithValues("controller", l.Name)
	ctx = klog.NewContext(ctx, logger)
	logger.Info("Starting controller", "workers", workers)
	defer logger.Info("Shutting down controller")
	if !cache.WaitForNamedCacheSync(l.Name, ctx.Done(), l.Synced...) {
		return
	}
	if workers < 1 {
		workers = 1
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wait.UntilWithContext(ctx, l.worker, time.Second)
		}()
	}
	<-ctx.Done()
	l.Queue.ShutDown()
	wg.Wait()
}

func (l *Loop) worker(ctx context.Context) {
	for l.next(ctx) {
	}
}

func (l *Loop) next(ctx context.Context) bool {
	key, quit := l.Queue.Get()
	if quit {
		return false
	}
	defer l.Queue.Done(key)
	err := l.Sync(ctx, key)
	logger := klog.FromContext(ctx)
	switch {
	case err == nil:
		l.Queue.Forget(key)
	case errors.Is(err, ErrStale):
		logger.V(4).Info("Cache is stale, retrying", "key", key)
		l.Queue.AddRateLimited(key)
	case l.Queue.NumRequeues(key) < maxRetries:
		logger.Info("Sync failed, retrying", "key", key, "err", err)
		l.Queue.AddRateLimited(key)
	default:
		logger.Error(err, "Sync failed, dropping key until its next change", "key", key)
		l.Queue.Forget(key)
		utilruntime.HandleError(err)
	}
	return true
}

// Enqueue adds the key of obj (tombstones included).
func (l *Loop) Enqueue(obj interface{}) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("%s: key for %T: %w", l.Name, obj, err))
		return
	}
	l.Queue.Add(key)
}

// EnqueueBatched adds key after the batch period so that bursts of pod
// changes for one service become one sync.
func (l *Loop) EnqueueBatched(key string) {
	if l.BatchPeriod > 0 {
		l.Queue.AddAfter(key, l.BatchPeriod)
		return
	}
	l.Queue.Add(key)
}

// Unwrap returns the object inside a tombstone.
func Unwrap(obj interface{}) interface{} {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}

// SelectorMatches reports whether a service selector selects podLabels. A
// nil selector selects nothing: selector-less services have user-managed
// endpoints.
func SelectorMatches(selector map[string]string, podLabels map[string]string) bool {
	if selector == nil {
		return false
	}
	return labels.SelectorFromSet(selector).Matches(labels.Set(podLabels))
}

// OnEveryEvent returns informer handlers that call fn with the object of
// every add, update (the new object) and delete (possibly a tombstone).
func OnEveryEvent(fn func(obj interface{})) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    fn,
		UpdateFunc: func(_, obj interface{}) { fn(obj) },
		DeleteFunc: fn,
	}
}
