package client

import (
	"context"
	"sort"
	"strconv"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	portalv1 "github.com/portal-net/portal/internal/api/portal/v1"
)

// Fake keeps AddressPools in memory, with resource versions and watches
// that replay what happened after the version they start from, so an
// informer over it misses nothing. Update refuses a stale
// resourceVersion with a conflict, as the API server does.
type Fake struct {
	mu       sync.Mutex
	rv       int
	objs     map[string]*portalv1.AddressPool
	history  []watch.Event // every event, in order; small in tests
	watchers []*watch.RaceFreeFakeWatcher
}

// NewFake returns a Fake holding pools.
func NewFake(pools ...*portalv1.AddressPool) *Fake {
	f := &Fake{objs: map[string]*portalv1.AddressPool{}}
	for _, p := range pools {
		if _, err := f.Create(context.Background(), p); err != nil {
			panic(err)
		}
	}
	return f
}

func (f *Fake) emit(t watch.EventType, p *portalv1.AddressPool) {
	ev := watch.Event{Type: t, Object: p.DeepCopy()}
	f.history = append(f.history, ev)
	for _, w := range f.watchers {
		if !w.IsStopped() {
			w.Action(ev.Type, ev.Object.DeepCopyObject())
		}
	}
}

func (f *Fake) bump(p *portalv1.AddressPool) {
	f.rv++
	p.ResourceVersion = strconv.Itoa(f.rv)
}

// List implements AddressPools.
func (f *Fake) List(_ context.Context, _ metav1.ListOptions) (*portalv1.AddressPoolList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &portalv1.AddressPoolList{ListMeta: metav1.ListMeta{ResourceVersion: strconv.Itoa(f.rv)}}
	for _, p := range f.objs {
		out.Items = append(out.Items, *p.DeepCopy())
	}
	sort.Slice(out.Items, func(i, j int) bool { return out.Items[i].Name < out.Items[j].Name })
	return out, nil
}

// Watch implements AddressPools.
func (f *Fake) Watch(_ context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	from, _ := strconv.Atoi(opts.ResourceVersion)
	w := watch.NewRaceFreeFake()
	if opts.SendInitialEvents != nil && *opts.SendInitialEvents {
		// A watch-list (what informers ask for first): the current
		// objects, then the bookmark that ends the initial events.
		for _, p := range f.objs {
			w.Add(p.DeepCopy())
		}
		w.Action(watch.Bookmark, &portalv1.AddressPool{ObjectMeta: metav1.ObjectMeta{
			ResourceVersion: strconv.Itoa(f.rv),
			Annotations:     map[string]string{metav1.InitialEventsAnnotationKey: "true"},
		}})
		from = f.rv
	}
	for _, ev := range f.history {
		if rv, _ := strconv.Atoi(ev.Object.(*portalv1.AddressPool).ResourceVersion); rv > from {
			w.Action(ev.Type, ev.Object.DeepCopyObject())
		}
	}
	f.watchers = append(f.watchers, w)
	return w, nil
}

// Get implements AddressPools.
func (f *Fake) Get(_ context.Context, name string) (*portalv1.AddressPool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.objs[name]
	if !ok {
		return nil, apierrors.NewNotFound(portalv1.Resource(resource), name)
	}
	return p.DeepCopy(), nil
}

// Create implements AddressPools.
func (f *Fake) Create(_ context.Context, p *portalv1.AddressPool) (*portalv1.AddressPool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.objs[p.Name]; ok {
		return nil, apierrors.NewAlreadyExists(portalv1.Resource(resource), p.Name)
	}
	p = p.DeepCopy()
	p.Generation = 1
	f.bump(p)
	f.objs[p.Name] = p
	f.emit(watch.Added, p)
	return p.DeepCopy(), nil
}

func (f *Fake) update(p *portalv1.AddressPool, status bool) (*portalv1.AddressPool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old, ok := f.objs[p.Name]
	if !ok {
		return nil, apierrors.NewNotFound(portalv1.Resource(resource), p.Name)
	}
	if p.ResourceVersion != "" && p.ResourceVersion != old.ResourceVersion {
		return nil, apierrors.NewConflict(portalv1.Resource(resource), p.Name, nil)
	}
	next := old.DeepCopy()
	if status {
		next.Status = *p.Status.DeepCopy()
	} else {
		next.Spec = *p.Spec.DeepCopy()
		next.Labels, next.Annotations = p.Labels, p.Annotations
		next.Generation++
	}
	f.bump(next)
	f.objs[p.Name] = next
	f.emit(watch.Modified, next)
	return next.DeepCopy(), nil
}

// Update implements AddressPools: spec, labels and annotations.
func (f *Fake) Update(_ context.Context, p *portalv1.AddressPool) (*portalv1.AddressPool, error) {
	return f.update(p, false)
}

// UpdateStatus implements AddressPools: status only.
func (f *Fake) UpdateStatus(_ context.Context, p *portalv1.AddressPool) (*portalv1.AddressPool, error) {
	return f.update(p, true)
}

// Delete removes a pool.
func (f *Fake) Delete(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.objs[name]
	if !ok {
		return
	}
	delete(f.objs, name)
	p = p.DeepCopy()
	f.bump(p)
	f.emit(watch.Deleted, p)
}
