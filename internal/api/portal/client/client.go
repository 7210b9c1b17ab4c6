// Package client is a small typed client for portal.dev/v1 AddressPools
// (list, watch, get, create, update, status) and an informer over it, so
// controllers and tests use the kind without a generated clientset. Fake
// is an in-memory implementation for controller tests.
package client

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	portalv1 "github.com/portal-net/portal/internal/api/portal/v1"
)

// AddressPools reads and writes AddressPools.
type AddressPools interface {
	List(ctx context.Context, opts metav1.ListOptions) (*portalv1.AddressPoolList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
	Get(ctx context.Context, name string) (*portalv1.AddressPool, error)
	Create(ctx context.Context, p *portalv1.AddressPool) (*portalv1.AddressPool, error)
	Update(ctx context.Context, p *portalv1.AddressPool) (*portalv1.AddressPool, error)
	UpdateStatus(ctx context.Context, p *portalv1.AddressPool) (*portalv1.AddressPool, error)
}

var (
	scheme = runtime.NewScheme()
	codecs = serializer.NewCodecFactory(scheme)
)

func init() {
	if err := portalv1.AddToScheme(scheme); err != nil {
		panic(err)
	}
}

// NewForConfig returns AddressPools over the portal.dev/v1 REST API.
func NewForConfig(cfg *rest.Config) (AddressPools, error) {
	c := rest.CopyConfig(cfg)
	gv := portalv1.SchemeGroupVersion
	c.GroupVersion = &gv
	c.APIPath = "/apis"
	c.ContentType = runtime.ContentTypeJSON
	c.NegotiatedSerializer = codecs.WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, err
	}
	return &restPools{rc: rc}, nil
}

type restPools struct{ rc *rest.RESTClient }

const resource = "addresspools"

var params = runtime.NewParameterCodec(scheme)

func (r *restPools) List(ctx context.Context, opts metav1.ListOptions) (*portalv1.AddressPoolList, error) {
	out := &portalv1.AddressPoolList{}
	err := r.rc.Get().Resource(resource).VersionedParams(&opts, params).Do(ctx).Into(out)
	return out, err
}

func (r *restPools) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return r.rc.Get().Resource(resource).VersionedParams(&opts, params).Watch(ctx)
}

func (r *restPools) Get(ctx context.Context, name string) (*portalv1.AddressPool, error) {
	out := &portalv1.AddressPool{}
	err := r.rc.Get().Resource(resource).Name(name).Do(ctx).Into(out)
	return out, err
}

func (r *restPools) Create(ctx context.Context, p *portalv1.AddressPool) (*portalv1.AddressPool, error) {
	out := &portalv1.AddressPool{}
	err := r.rc.Post().Resource(resource).Body(p).Do(ctx).Into(out)
	return out, err
}

func (r *restPools) Update(ctx context.Context, p *portalv1.AddressPool) (*portalv1.AddressPool, error) {
	out := &portalv1.AddressPool{}
	err := r.rc.Put().Resource(resource).Name(p.Name).Body(p).Do(ctx).Into(out)
	return out, err
}

func (r *restPools) UpdateStatus(ctx context.Context, p *portalv1.AddressPool) (*portalv1.AddressPool, error) {
	out := &portalv1.AddressPool{}
	err := r.rc.Put().Resource(resource).Name(p.Name).SubResource("status").Body(p).Do(ctx).Into(out)
	return out, err
}

// NewInformer returns an informer of every AddressPool; the caller runs it.
func NewInformer(c AddressPools, resync time.Duration) cache.SharedIndexInformer {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return c.List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return c.Watch(ctx, opts)
		},
	}
	return cache.NewSharedIndexInformer(lw, &portalv1.AddressPool{}, resync, cache.Indexers{})
}
