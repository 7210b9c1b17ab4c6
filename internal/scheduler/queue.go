package scheduler

import (
	"context"
	"fmt"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// The controllers' shared runner lives under internal/controller and is not
// importable here; the scheduler needs less of it anyway (one worker, no
// retry cap: a pod is retried until it is bound or gone).

func newQueue() workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "scheduler"},
	)
}

func (s *Scheduler) enqueue(obj interface{}) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("scheduler: key for %T: %w", obj, err))
		return
	}
	s.queue.Add(key)
}

// work makes decisions one at a time until the queue shuts down.
func (s *Scheduler) work(ctx context.Context) {
	logger := klog.FromContext(ctx)
	for {
		key, quit := s.queue.Get()
		if quit {
			return
		}
		if err := s.scheduleOne(ctx, key); err != nil {
			logger.Info("Scheduling attempt failed, retrying", "pod", key, "err", err)
			s.queue.AddRateLimited(key)
		} else {
			s.queue.Forget(key)
		}
		s.queue.Done(key)
	}
}

func unwrap(obj interface{}) interface{} {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}
