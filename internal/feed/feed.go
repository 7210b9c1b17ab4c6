// Package feed delivers the changes of one kind of API object to the
// components that build their own state from them (the service proxy's
// trackers, the DNS records), either from a shared informer or from a
// reflector that keeps no copy of the objects.
//
// An informer caches every object whole, so that listers can read them
// and update handlers get the previous version. The proxy and the DNS
// server never read a lister for EndpointSlices and keep their own
// compact form, so at 10,000 services × 10 endpoints the informer's copy
// is the largest thing in the agent. Reflected keeps, per object, only
// what its subscribers read of a previous version (a name, a label).
package feed

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Update receives one change: prev nil means added, cur nil deleted.
type Update func(prev, cur any)

// Source delivers every change of one kind of object.
type Source interface {
	// Subscribe adds update (before the source starts) and returns when it
	// has seen the first complete list.
	Subscribe(update Update) (cache.InformerSynced, error)
}

// FromInformer adapts a shared informer: deletions arrive with the last
// known object, also when the informer missed the delete itself.
func FromInformer(inf cache.SharedIndexInformer) Source { return informerSource{inf} }

type informerSource struct{ inf cache.SharedIndexInformer }

func (s informerSource) Subscribe(update Update) (cache.InformerSynced, error) {
	reg, err := s.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { update(nil, o) },
		UpdateFunc: func(o, n any) { update(o, n) },
		DeleteFunc: func(o any) {
			if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			update(o, nil)
		},
	})
	if err != nil {
		return nil, err
	}
	return reg.HasSynced, nil
}

// Name is an object's namespace and name.
type Name struct{ Namespace, Name string }

// Reflected is a Source fed by a reflector whose store keeps, per object,
// only K: what Prev needs to rebuild the previous version subscribers are
// given on an update or delete. Subscribers see each change once, in
// order, one at a time.
type Reflected[K any] struct {
	lw      cache.ListerWatcher
	example runtime.Object
	keep    func(obj any) K
	prev    func(Name, K) any

	subs    []Update
	started atomic.Bool
	synced  atomic.Bool

	mu   sync.Mutex
	kept map[Name]K
}

// NewReflected watches lw (objects like example). keep extracts what a
// subscriber reads of a previous version; prev builds that version (a
// stand-in object carrying only those fields) when one is due.
func NewReflected[K any](lw cache.ListerWatcher, example runtime.Object, keep func(obj any) K, prev func(Name, K) any) *Reflected[K] {
	return &Reflected[K]{lw: lw, example: example, keep: keep, prev: prev, kept: map[Name]K{}}
}

// Subscribe implements Source; it fails once the reflector has started.
func (r *Reflected[K]) Subscribe(update Update) (cache.InformerSynced, error) {
	if r.started.Load() {
		return nil, errors.New("feed: subscribe after start")
	}
	r.subs = append(r.subs, update)
	return r.synced.Load, nil
}

// Start runs the reflector until ctx ends.
func (r *Reflected[K]) Start(ctx context.Context) {
	if r.started.Swap(true) {
		return
	}
	ref := cache.NewReflectorWithOptions(r.lw, r.example, (*store[K])(r), cache.ReflectorOptions{})
	go ref.RunWithContext(ctx)
}

// HasSynced reports whether the first list has been delivered.
func (r *Reflected[K]) HasSynced() bool { return r.synced.Load() }

// Len is the number of objects known.
func (r *Reflected[K]) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.kept)
}

func (r *Reflected[K]) deliver(prev, cur any) {
	for _, u := range r.subs {
		u(prev, cur)
	}
}

// store is the reflector's view of a Reflected (cache.ReflectorStore).
type store[K any] Reflected[K]

func nameOf(obj any) (Name, error) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return Name{}, err
	}
	return Name{m.GetNamespace(), m.GetName()}, nil
}

// set delivers obj as the new state of its name; callers hold mu.
func (s *store[K]) set(n Name, obj any) {
	var prev any
	if k, ok := s.kept[n]; ok {
		prev = s.prev(n, k)
	}
	s.kept[n] = s.keep(obj)
	(*Reflected[K])(s).deliver(prev, obj)
}

func (s *store[K]) Add(obj any) error {
	n, err := nameOf(obj)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set(n, obj)
	return nil
}

func (s *store[K]) Update(obj any) error { return s.Add(obj) }

func (s *store[K]) Delete(obj any) error {
	n, err := nameOf(obj)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.kept[n]
	if !ok {
		k = s.keep(obj)
	}
	delete(s.kept, n)
	(*Reflected[K])(s).deliver(s.prev(n, k), nil)
	return nil
}

// Replace is a (re)list: every listed object is delivered as an update of
// what was known under its name (or an add), every known name the list
// lacks as a delete.
func (s *store[K]) Replace(list []any, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	listed := make(map[Name]struct{}, len(list))
	for _, obj := range list {
		n, err := nameOf(obj)
		if err != nil {
			return err
		}
		listed[n] = struct{}{}
		s.set(n, obj)
	}
	for n, k := range s.kept {
		if _, ok := listed[n]; !ok {
			delete(s.kept, n)
			(*Reflected[K])(s).deliver(s.prev(n, k), nil)
		}
	}
	s.synced.Store(true)
	return nil
}

func (s *store[K]) Resync() error { return nil }

// ListWatch adapts a typed client's List and Watch for NewReflected.
// client is the clientset they come from: one that cannot stream the
// first list (the fake one of tests) is listed the old way, as the
// generated informers do.
func ListWatch[L runtime.Object](client any, list func(context.Context, metav1.ListOptions) (L, error),
	watch func(context.Context, metav1.ListOptions) (watch.Interface, error)) cache.ListerWatcher {
	return cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc:  func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return list(ctx, o) },
		WatchFuncWithContext: watch,
	}, client)
}

// EndpointSlices watches every EndpointSlice, keeping of each only its
// service's name: the service proxy's tracker reads a previous version's
// kubernetes.io/service-name label (a relabelled slice leaves its old
// service), the DNS records only its name. Start it once everything has
// subscribed.
func EndpointSlices(client kubernetes.Interface) *Reflected[string] {
	c := client.DiscoveryV1().EndpointSlices(metav1.NamespaceAll)
	return NewReflected(ListWatch(client, c.List, c.Watch), &discoveryv1.EndpointSlice{},
		func(obj any) string {
			if es, ok := obj.(*discoveryv1.EndpointSlice); ok {
				return es.Labels[discoveryv1.LabelServiceName]
			}
			return ""
		},
		func(n Name, svc string) any {
			es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: n.Namespace, Name: n.Name}}
			if svc != "" {
				es.Labels = map[string]string{discoveryv1.LabelServiceName: svc}
			}
			return es
		})
}
