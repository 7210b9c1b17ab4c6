// Package topologykeys lets a client-go Service informer carry the
// seed's spec.topologyKeys, which k8s.io/api's Service no longer has.
//
// The informer it installs lists and watches Services as portal's
// core.Service (the v1 object plus spec.topologyKeys), hands the informer
// plain *v1.Service objects, and remembers each service's keys by UID for
// Keys.For. Against an API without the field (upstream Kubernetes) every
// service simply has none.
package topologykeys

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/portal-net/portal/internal/api/core"
)

// Keys maps services to their topology keys. It keeps the current and
// the previous version of each service, so that an informer update
// handler comparing old and new objects sees each one's own keys.
type Keys struct {
	mu sync.RWMutex
	m  map[types.UID]versions
}

type versions struct{ cur, prev version }

type version struct {
	rv   string
	keys []string
}

// For returns svc's spec.topologyKeys (nil when it has none).
func (k *Keys) For(svc *v1.Service) []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	v := k.m[svc.UID]
	if svc.ResourceVersion != "" && svc.ResourceVersion == v.prev.rv {
		return v.prev.keys
	}
	return v.cur.keys
}

func (k *Keys) record(s *core.Service) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v := k.m[s.UID]
	if v.cur.rv == s.ResourceVersion {
		return
	}
	v.prev, v.cur = v.cur, version{rv: s.ResourceVersion, keys: slices.Clone(s.Spec.TopologyKeys)}
	k.m[s.UID] = v
}

// keepOnly forgets every service not in a fresh list (deleted while the
// watch was down).
func (k *Keys) keepOnly(items []core.Service) {
	listed := make(map[types.UID]bool, len(items))
	for i := range items {
		listed[items[i].UID] = true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for uid := range k.m {
		if !listed[uid] {
			delete(k.m, uid)
		}
	}
}

func (k *Keys) forget(uid types.UID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, uid)
}

// Register installs the Service informer of f. It must run before
// anything else asks f for that informer; otherwise it returns an error
// (the factory would keep the stock informer, which drops the field).
func Register(f informers.SharedInformerFactory, rc *rest.Config, resync time.Duration) (*Keys, error) {
	client, err := restClient(rc)
	if err != nil {
		return nil, err
	}
	k := &Keys{m: map[types.UID]versions{}}
	var ours cache.SharedIndexInformer
	got := f.InformerFor(&v1.Service{}, func(_ kubernetes.Interface, _ time.Duration) cache.SharedIndexInformer {
		ours = cache.NewSharedIndexInformer(k.listWatch(client), &v1.Service{}, resync,
			cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
		return ours
	})
	if ours == nil || got != ours {
		return nil, errors.New("topologykeys: the factory already has a Service informer")
	}
	return k, nil
}

// restClient talks core/v1, decoding Services as core.Service. Protobuf
// first: at 10,000 services JSON decoding was half the proxy's start-up
// (core.Service reads field 16 of the v1 message, see its Unmarshal);
// JSON stays as the fallback for an API that offers nothing else.
func restClient(rc *rest.Config) (rest.Interface, error) {
	sch := runtime.NewScheme()
	sch.AddKnownTypes(v1.SchemeGroupVersion, &core.Service{}, &core.ServiceList{})
	metav1.AddToGroupVersion(sch, v1.SchemeGroupVersion)
	cfg := rest.CopyConfig(rc)
	cfg.GroupVersion = &v1.SchemeGroupVersion
	cfg.APIPath = "/api"
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	cfg.NegotiatedSerializer = serializer.NewCodecFactory(sch).WithoutConversion()
	return rest.RESTClientFor(cfg)
}

func (k *Keys) listWatch(client rest.Interface) *cache.ListWatch {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			var l core.ServiceList
			err := client.Get().Resource("services").VersionedParams(&opts, metav1.ParameterCodec).Do(ctx).Into(&l)
			if err != nil {
				return nil, err
			}
			out := &v1.ServiceList{ListMeta: l.ListMeta, Items: make([]v1.Service, len(l.Items))}
			k.keepOnly(l.Items)
			for i := range l.Items {
				k.record(&l.Items[i])
				out.Items[i] = *l.Items[i].V1()
			}
			return out, nil
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.Watch = true
			w, err := client.Get().Resource("services").VersionedParams(&opts, metav1.ParameterCodec).Watch(ctx)
			if err != nil {
				return nil, err
			}
			return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
				if s, ok := e.Object.(*core.Service); ok {
					if e.Type == watch.Deleted {
						k.forget(s.UID)
					} else {
						k.record(s)
					}
					e.Object = s.V1()
				}
				return e, true
			}), nil
		},
	}
}
