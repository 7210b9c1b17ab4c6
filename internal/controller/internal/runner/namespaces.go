package runner

import (
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// NamespaceHandler queues the name of every namespace added or updated,
// for loops that keep one object per namespace (keyed by namespace name).
func (l *Loop) NamespaceHandler() cache.ResourceEventHandlerFuncs {
	enqueue := func(obj any) {
		if ns, ok := Unwrap(obj).(*v1.Namespace); ok {
			l.Queue.Add(ns.Name)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}
}

// ActiveNamespace reports whether the namespace exists and is not
// terminating: nothing may be created in one that is.
func ActiveNamespace(namespaces corelisters.NamespaceLister, name string) (bool, error) {
	n, err := namespaces.Get(name)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return n.Status.Phase != v1.NamespaceTerminating && n.DeletionTimestamp == nil, nil
}
