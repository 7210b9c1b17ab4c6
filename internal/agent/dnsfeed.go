package agent

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// reflectorFeed feeds the DNS records straight from one reflector per
// kind, for `--dns-only`, where nothing else needs the objects: the
// reflectors' stores keep only each object's key, so the records' own
// compact form is the process's one copy of the cluster (an informer would
// keep every Service and EndpointSlice a second time, whole). Reflectors
// run until ctx ends.
func reflectorFeed(ctx context.Context, client kubernetes.Interface) dnsFeed {
	return func(kind dnsKind, update func(prev, cur any)) (cache.InformerSynced, error) {
		var (
			lw      *cache.ListWatch
			example runtime.Object
			standIn func(ns, name string) any
		)
		switch kind {
		case dnsServices:
			c := client.CoreV1().Services(metav1.NamespaceAll)
			lw = listWatch(c.List, c.Watch)
			example = &corev1.Service{}
			standIn = func(ns, name string) any {
				return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
			}
		case dnsEndpointSlices:
			c := client.DiscoveryV1().EndpointSlices(metav1.NamespaceAll)
			lw = listWatch(c.List, c.Watch)
			example = &discoveryv1.EndpointSlice{}
			standIn = func(ns, name string) any {
				return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
			}
		case dnsNamespaces:
			c := client.CoreV1().Namespaces()
			lw = listWatch(c.List, c.Watch)
			example = &corev1.Namespace{}
			standIn = func(_, name string) any { return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}} }
		case dnsPods:
			c := client.CoreV1().Pods(metav1.NamespaceAll)
			lw = listWatch(c.List, c.Watch)
			example = &corev1.Pod{}
			standIn = func(ns, name string) any {
				return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
			}
		default:
			return nil, fmt.Errorf("unknown kind %d", kind)
		}
		st := &keyStore{update: update, standIn: standIn, keys: map[keyOf]struct{}{}}
		// As the generated informers do: a client that cannot stream the
		// first list (the fake one of tests) is listed the old way.
		r := cache.NewReflectorWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, client), example, st, cache.ReflectorOptions{Name: fmt.Sprintf("dns-%T", example)})
		go r.RunWithContext(ctx)
		return st.synced.Load, nil
	}
}

// listWatch adapts a typed client's List and Watch.
func listWatch[L runtime.Object](list func(context.Context, metav1.ListOptions) (L, error),
	watch func(context.Context, metav1.ListOptions) (watch.Interface, error)) *cache.ListWatch {
	return &cache.ListWatch{
		ListWithContextFunc:  func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return list(ctx, o) },
		WatchFuncWithContext: watch,
	}
}

// keyOf names an object in a keyStore.
type keyOf struct{ ns, name string }

// keyStore is a reflector's store (cache.ReflectorStore) that passes every change on to update at
// once and keeps nothing of an object but its name: enough to tell which
// objects a relist no longer has. A deletion is passed as a stand-in object
// that carries only the name, which is all update reads of prev; an update
// is passed as an add of the new state (prev nil), which update treats as
// replacing what it had under that name.
type keyStore struct {
	update  func(prev, cur any)
	standIn func(ns, name string) any

	mu     sync.Mutex
	keys   map[keyOf]struct{}
	synced atomic.Bool
}

func nameOf(obj any) (keyOf, error) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return keyOf{}, err
	}
	return keyOf{m.GetNamespace(), m.GetName()}, nil
}

func (s *keyStore) Add(obj any) error {
	k, err := nameOf(obj)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[k] = struct{}{}
	s.update(nil, obj)
	return nil
}

func (s *keyStore) Update(obj any) error { return s.Add(obj) }

func (s *keyStore) Delete(obj any) error {
	k, err := nameOf(obj)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, k)
	s.update(s.standIn(k.ns, k.name), nil)
	return nil
}

// Replace is a relist: every listed object is (re)added, every known one
// the list lacks is deleted.
func (s *keyStore) Replace(list []any, _ string) error {
	keys := make(map[keyOf]struct{}, len(list))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, obj := range list {
		k, err := nameOf(obj)
		if err != nil {
			return err
		}
		keys[k] = struct{}{}
		s.update(nil, obj)
	}
	for k := range s.keys {
		if _, ok := keys[k]; !ok {
			s.update(s.standIn(k.ns, k.name), nil)
		}
	}
	s.keys = keys
	s.synced.Store(true)
	return nil
}

func (s *keyStore) Resync() error { return nil }
