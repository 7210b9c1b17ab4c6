package runner

import (
	"maps"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"
)

// PodServiceHandler returns pod informer handlers for a controller keyed by
// Service: a pod change enqueues, batched, every Service in its namespace
// that selects the pod, or selected it before a label change.
func (l *Loop) PodServiceHandler(index *SelectorIndex) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj interface{}) { l.enqueuePodServices(index, obj, nil) },
		UpdateFunc: func(old, obj interface{}) { l.enqueuePodServices(index, obj, old) },
		DeleteFunc: func(obj interface{}) { l.enqueuePodServices(index, obj, nil) },
	}
}

func (l *Loop) enqueuePodServices(index *SelectorIndex, obj, old interface{}) {
	pod, ok := Unwrap(obj).(*v1.Pod)
	if !ok {
		return
	}
	svcs, _ := index.ServicesFor(pod.Namespace, pod.Labels)
	if op, ok := old.(*v1.Pod); ok && !maps.Equal(op.Labels, pod.Labels) {
		before, _ := index.ServicesFor(op.Namespace, op.Labels)
		svcs = append(svcs, before...)
	}
	for _, svc := range svcs {
		l.EnqueueBatched(svc.Namespace + "/" + svc.Name)
	}
}
