package controllermanager

import (
	"context"

	"github.com/portal-net/portal/internal/controller/rootcacert"
	"k8s.io/klog/v2"

	"github.com/portal-net/portal/internal/controller/serviceaccount"

	poolclient "github.com/portal-net/portal/internal/api/portal/client"

	"github.com/portal-net/portal/internal/controller/daemonset"
	"github.com/portal-net/portal/internal/controller/deployment"
	"github.com/portal-net/portal/internal/controller/endpoints"
	"github.com/portal-net/portal/internal/controller/endpointslice"
	"github.com/portal-net/portal/internal/controller/endpointslicemirroring"
	"github.com/portal-net/portal/internal/controller/garbagecollector"
	"github.com/portal-net/portal/internal/controller/loadbalancer"
	"github.com/portal-net/portal/internal/controller/namespace"
	"github.com/portal-net/portal/internal/controller/nodeipam"
	"github.com/portal-net/portal/internal/controller/nodelifecycle"
	"github.com/portal-net/portal/internal/controller/replicaset"
	"github.com/portal-net/portal/internal/controller/resourcequota"
	"github.com/portal-net/portal/internal/controller/statefulset"
	"github.com/portal-net/portal/internal/scheduler"
)

// descriptor names a controller and how to start it. start registers
// informer handlers and returns the loop to run; informers start after all
// descriptors are started.
type descriptor struct {
	name  string
	start func(*Context) func(context.Context)
}

// descriptors lists every controller the manager runs, in start order.
var descriptors = []descriptor{
	{name: "endpointslice", start: func(c *Context) func(context.Context) {
		ctl := endpointslice.New(c.Client, c.Informers, endpointslice.Options{
			MaxEndpointsPerSlice: c.Config.MaxEndpointsPerSlice,
			BatchPeriod:          c.Config.EndpointUpdatesBatchPeriod,
		})
		return workers(ctl.Run, c.Config.Workers)
	}},
	{name: "endpoints", start: func(c *Context) func(context.Context) {
		ctl := endpoints.New(c.Client, c.Informers, endpoints.Options{BatchPeriod: c.Config.EndpointUpdatesBatchPeriod})
		return workers(ctl.Run, c.Config.Workers)
	}},
	{name: "endpointslicemirroring", start: func(c *Context) func(context.Context) {
		ctl := endpointslicemirroring.New(c.Client, c.Informers, endpointslicemirroring.Options{})
		return workers(ctl.Run, c.Config.Workers)
	}},
	{name: "replicaset", start: func(c *Context) func(context.Context) {
		ctl := replicaset.New(c.Client, c.Informers, c.Recorder("replicaset-controller"), replicaset.Options{})
		return workers(ctl.Run, c.Config.Workers)
	}},
	{name: "replicationcontroller", start: func(c *Context) func(context.Context) {
		ctl := replicaset.NewReplicationController(c.Client, c.Informers, c.Recorder("replication-controller"), replicaset.Options{})
		return workers(ctl.Run, c.Config.Workers)
	}},
	{name: "deployment", start: func(c *Context) func(context.Context) {
		ctl := deployment.New(c.Client, c.Informers, c.Recorder("deployment-controller"), deployment.Options{})
		return workers(ctl.Run, c.Config.Workers)
	}},
	{name: "statefulset", start: func(c *Context) func(context.Context) {
		ctl := statefulset.New(c.Client, c.Informers, c.Recorder("statefulset-controller"), statefulset.Options{})
		return workers(ctl.Run, c.Config.Workers)
	}},
	{name: "daemonset", start: func(c *Context) func(context.Context) {
		ctl := daemonset.New(c.Client, c.Informers, c.Recorder("daemonset-controller"), daemonset.Options{})
		return workers(ctl.Run, c.Config.Workers)
	}},
	{name: "garbagecollector", start: func(c *Context) func(context.Context) {
		ctl := garbagecollector.New(c.Client, c.Metadata, c.Client.Discovery(), c.Recorder("garbage-collector-controller"), garbagecollector.Options{})
		return workers(ctl.Run, c.Config.Workers)
	}},
	{name: "namespace", start: func(c *Context) func(context.Context) {
		ctl := namespace.New(c.Client, c.Metadata, c.Client.Discovery(), c.Informers, c.Recorder("namespace-controller"), namespace.Options{})
		return workers(ctl.Run, c.Config.Workers)
	}},
	{name: "serviceaccount", start: func(c *Context) func(context.Context) {
		ctl := serviceaccount.New(c.Client, c.Informers)
		return workers(ctl.Run, c.Config.Workers)
	}},
	{name: "resourcequota", start: func(c *Context) func(context.Context) {
		ctl := resourcequota.New(c.Client, c.Informers, resourcequota.Options{})
		return workers(ctl.Run, c.Config.Workers)
	}},
	{name: "root-ca-cert-publisher", start: func(c *Context) func(context.Context) {
		ctl, err := rootcacert.New(c.Client, c.Informers, c.Config.RootCAPEM)
		if err != nil {
			klog.ErrorS(err, "Controller not started", "controller", "root-ca-cert-publisher")
			return func(context.Context) {}
		}
		return workers(ctl.Run, c.Config.Workers)
	}},
	{name: "nodeipam", start: func(c *Context) func(context.Context) {
		ctl := nodeipam.New(c.Client, c.Informers, c.Recorder("node-controller"), nodeipam.Options{
			ClusterCIDR: c.Config.ClusterCIDR, NodeMaskSize: c.Config.NodeCIDRMaskSize,
		})
		return workers(ctl.Run, 1)
	}},
	{name: "nodelifecycle", start: func(c *Context) func(context.Context) {
		ctl := nodelifecycle.New(c.Client, c.Informers, c.Recorder("node-controller"), nodelifecycle.Options{
			NodeMonitorGracePeriod: c.Config.NodeMonitorGracePeriod,
			NodeMonitorPeriod:      c.Config.NodeMonitorPeriod,
			NodeStartupGracePeriod: c.Config.NodeStartupGracePeriod,
		})
		return workers(ctl.Run, c.Config.Workers)
	}},
	{name: "loadbalancer", start: func(c *Context) func(context.Context) {
		pools, err := poolclient.NewForConfig(c.REST)
		if err != nil {
			panic(err)
		}
		ctl, err := loadbalancer.New(c.Client, pools, c.Informers, c.Recorder("portal-lb-controller"), loadbalancer.Options{DefaultPool: c.Config.LBPool})
		if err != nil { // --lb-pool is validated with the flags
			panic(err)
		}
		return workers(ctl.Run, 1)
	}},
	// The scheduler's events come from "default-scheduler", as
	// kube-scheduler's do; it runs one worker so that its view of node usage
	// stays consistent.
	{name: "scheduler", start: func(c *Context) func(context.Context) {
		s := scheduler.New(c.Client, c.Informers, c.Recorder(scheduler.DefaultSchedulerName), scheduler.Options{})
		return workers(s.Run, 1)
	}},
}

func workers(run func(context.Context, int), n int) func(context.Context) {
	return func(ctx context.Context) { run(ctx, n) }
}
