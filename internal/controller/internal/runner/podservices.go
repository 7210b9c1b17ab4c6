package runner

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// PodServiceHandler returns pod informer handlers for a controller keyed by
// Service: a pod change enqueues, batched, every Service in its namespace
// that selects the pod, or selected it before a label change.
func (l *Loop) PodServiceHandler(services corelisters.ServiceLister) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj interface{}) { l.enqueuePodServices(services, obj, nil) },
		UpdateFunc: func(old, obj interface{}) { l.enqueuePodServices(services, obj, old) },
		DeleteFunc: func(obj interface{}) { l.enqueuePodServices(services, obj, nil) },
	}
}

func (l *Loop) enqueuePodServices(services corelisters.ServiceLister, obj, old interface{}) {
	pod, ok := Unwrap(obj).(*v1.Pod)
	if !ok {
		return
	}
	var oldLabels map[string]string
	if op, ok := old.(*v1.Pod); ok {
		oldLabels = op.Labels
	}
	svcs, err := services.Services(pod.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, svc := range svcs {
		if SelectorMatches(svc.Spec.Selector, pod.Labels) || (old != nil && SelectorMatches(svc.Spec.Selector, oldLabels)) {
			l.EnqueueBatched(svc.Namespace + "/" + svc.Name)
		}
	}
}
