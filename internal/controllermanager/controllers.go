package controllermanager

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/portal-net/portal/internal/config"
	"github.com/portal-net/portal/internal/controller/endpoints"
	"github.com/portal-net/portal/internal/controller/endpointslice"
	"github.com/portal-net/portal/internal/controller/endpointslicemirroring"
)

// descriptor names a controller and how to start it. start registers
// informer handlers and returns the loop to run; informers start after all
// descriptors are started.
type descriptor struct {
	name    string
	enabled func(config.Controllers) bool
	start   func(*Context) (func(context.Context), error)
}

// descriptors lists every controller the manager runs, in start order.
var descriptors = []descriptor{
	{name: "endpointslice", start: func(c *Context) (func(context.Context), error) {
		ctl := endpointslice.New(c.Client, c.Informers, endpointslice.Options{
			MaxEndpointsPerSlice: c.Config.MaxEndpointsPerSlice,
			BatchPeriod:          c.Config.EndpointUpdatesBatchPeriod,
		})
		return workers(ctl.Run, c.Config.Workers), nil
	}},
	{name: "endpoints", start: func(c *Context) (func(context.Context), error) {
		ctl := endpoints.New(c.Client, c.Informers, endpoints.Options{BatchPeriod: c.Config.EndpointUpdatesBatchPeriod})
		return workers(ctl.Run, c.Config.Workers), nil
	}},
	{name: "endpointslicemirroring", start: func(c *Context) (func(context.Context), error) {
		ctl := endpointslicemirroring.New(c.Client, c.Informers, endpointslicemirroring.Options{})
		return workers(ctl.Run, c.Config.Workers), nil
	}},
}

func workers(run func(context.Context, int), n int) func(context.Context) {
	return func(ctx context.Context) { run(ctx, n) }
}

func metav1ObjectMeta(ns, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name}
}
