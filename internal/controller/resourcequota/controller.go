// Package resourcequota keeps the status of ResourceQuotas, as
// kube-controller-manager's resourcequota controller does: status.hard
// mirrors spec.hard and status.used is what the namespace's objects
// consume of each resource named there.
//
// As upstream, creates do not trigger a recount: quota admission in the
// API server charges status.used before an object is stored, and a recount
// racing with the informers could undo that charge. Usage is recomputed
// when a quota is created or its spec changes, when counted objects are
// deleted or change what they consume (a pod finishing), and every
// ResyncPeriod for all quotas, which also repairs charges of creates that
// failed after admission.
package resourcequota

import (
	"context"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/portal-net/portal/internal/controller/internal/runner"
	"github.com/portal-net/portal/internal/quota"
)

// Options tune the controller; zero values take the defaults.
type Options struct {
	// ResyncPeriod is how often every quota is recounted (5 minutes).
	ResyncPeriod time.Duration
	// BatchPeriod collects object changes of a namespace into one recount
	// (1 second).
	BatchPeriod time.Duration
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Controller keeps quota status.
type Controller struct {
	client kubernetes.Interface
	quotas corelisters.ResourceQuotaLister
	// listers of the counted resources, by plural name.
	listers map[string]func(ns string) ([]runtime.Object, error)
	loop    *runner.Loop
	opts    Options
}

// New registers informer handlers on f; the caller starts f.
func New(client kubernetes.Interface, f informers.SharedInformerFactory, opts Options) *Controller {
	if opts.ResyncPeriod <= 0 {
		opts.ResyncPeriod = 5 * time.Minute
	}
	if opts.BatchPeriod <= 0 {
		opts.BatchPeriod = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	core := f.Core().V1()
	qInf := core.ResourceQuotas()
	c := &Controller{client: client, quotas: qInf.Lister(), opts: opts}
	c.loop = &runner.Loop{
		Name:        "resourcequota",
		Queue:       runner.NewQueue("resourcequota"),
		Synced:      []cache.InformerSynced{qInf.Informer().HasSynced},
		Sync:        c.sync,
		BatchPeriod: opts.BatchPeriod,
	}
	_, _ = qInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.loop.Queue.Add(obj.(*v1.ResourceQuota).Namespace) },
		UpdateFunc: func(old, obj any) {
			q, o := obj.(*v1.ResourceQuota), old.(*v1.ResourceQuota)
			// Admission's charges change status.used only: no recount.
			if !equality.Semantic.DeepEqual(q.Spec, o.Spec) || !equality.Semantic.DeepEqual(q.Spec.Hard, q.Status.Hard) {
				c.loop.Queue.Add(q.Namespace)
			}
		},
	})
	c.listers = map[string]func(string) ([]runtime.Object, error){}
	watch := func(res string, inf cache.SharedIndexInformer, list func(ns string) ([]runtime.Object, error)) {
		c.listers[res] = list
		c.loop.Synced = append(c.loop.Synced, inf.HasSynced)
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			UpdateFunc: func(old, obj any) {
				now := c.opts.Now()
				if !equality.Semantic.DeepEqual(quota.Usage(old.(runtime.Object), now), quota.Usage(obj.(runtime.Object), now)) {
					c.enqueueNamespaceOf(obj)
				}
			},
			DeleteFunc: c.enqueueNamespaceOf,
		})
	}
	pods := core.Pods()
	watch("pods", pods.Informer(), func(ns string) ([]runtime.Object, error) {
		return objects(pods.Lister().Pods(ns).List(labels.Everything()))
	})
	svcs := core.Services()
	watch("services", svcs.Informer(), func(ns string) ([]runtime.Object, error) {
		return objects(svcs.Lister().Services(ns).List(labels.Everything()))
	})
	cms := core.ConfigMaps()
	watch("configmaps", cms.Informer(), func(ns string) ([]runtime.Object, error) {
		return objects(cms.Lister().ConfigMaps(ns).List(labels.Everything()))
	})
	secrets := core.Secrets()
	watch("secrets", secrets.Informer(), func(ns string) ([]runtime.Object, error) {
		return objects(secrets.Lister().Secrets(ns).List(labels.Everything()))
	})
	rcs := core.ReplicationControllers()
	watch("replicationcontrollers", rcs.Informer(), func(ns string) ([]runtime.Object, error) {
		return objects(rcs.Lister().ReplicationControllers(ns).List(labels.Everything()))
	})
	pvcs := core.PersistentVolumeClaims()
	watch("persistentvolumeclaims", pvcs.Informer(), func(ns string) ([]runtime.Object, error) {
		return objects(pvcs.Lister().PersistentVolumeClaims(ns).List(labels.Everything()))
	})
	c.listers["resourcequotas"] = func(ns string) ([]runtime.Object, error) {
		return objects(c.quotas.ResourceQuotas(ns).List(labels.Everything()))
	}
	return c
}

func objects[T runtime.Object](items []T, err error) ([]runtime.Object, error) {
	out := make([]runtime.Object, len(items))
	for i, o := range items {
		out[i] = o
	}
	return out, err
}

func (c *Controller) enqueueNamespaceOf(obj any) {
	if m, ok := runner.Unwrap(obj).(metav1.Object); ok {
		c.loop.EnqueueBatched(m.GetNamespace())
	}
}

// Run keeps quota status until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	go wait.UntilWithContext(ctx, func(context.Context) {
		qs, _ := c.quotas.List(labels.Everything())
		for _, q := range qs {
			c.loop.Queue.Add(q.Namespace)
		}
	}, c.opts.ResyncPeriod)
	c.loop.Run(ctx, workers)
}

// sync recounts the quotas of a namespace (keys are namespaces).
func (c *Controller) sync(ctx context.Context, ns string) error {
	qs, err := c.quotas.ResourceQuotas(ns).List(labels.Everything())
	if err != nil || len(qs) == 0 {
		return err
	}
	objs := map[string][]runtime.Object{}
	for _, q := range qs {
		for _, res := range Counted(q.Spec.Hard) {
			if _, done := objs[res]; done {
				continue
			}
			if objs[res], err = c.listers[res](ns); err != nil {
				return err
			}
		}
	}
	now := c.opts.Now()
	for _, q := range qs {
		var all []runtime.Object
		for _, res := range Counted(q.Spec.Hard) {
			all = append(all, objs[res]...)
		}
		status := v1.ResourceQuotaStatus{Hard: q.Spec.Hard.DeepCopy(), Used: ComputeUsage(q, all, now)}
		if equality.Semantic.DeepEqual(status, q.Status) {
			continue
		}
		nq := q.DeepCopy()
		nq.Status = status
		if _, err := c.client.CoreV1().ResourceQuotas(ns).UpdateStatus(ctx, nq, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// countedResources are the resources the controller lists.
var countedResources = []string{"pods", "services", "configmaps", "secrets", "replicationcontrollers", "persistentvolumeclaims", "resourcequotas"}

// Counted returns the resources whose objects make up the usage of hard.
func Counted(hard v1.ResourceList) []string {
	var out []string
	for _, res := range countedResources {
		for name := range hard {
			if consumes(res, name) {
				out = append(out, res)
				break
			}
		}
	}
	return out
}

// consumes says whether objects of res can consume the quota resource
// name.
func consumes(res string, name v1.ResourceName) bool {
	n := string(name)
	if n == res || n == "count/"+res {
		return true
	}
	switch res {
	case "pods":
		return !strings.Contains(n, storageClassMarker) && !strings.HasPrefix(n, "count/") &&
			(n == "cpu" || n == "memory" || n == "ephemeral-storage" || strings.HasPrefix(n, "requests.") || strings.HasPrefix(n, "limits.")) &&
			n != string(v1.ResourceRequestsStorage)
	case "services":
		return name == v1.ResourceServicesNodePorts || name == v1.ResourceServicesLoadBalancers
	case "persistentvolumeclaims":
		return name == v1.ResourceRequestsStorage || strings.Contains(n, storageClassMarker)
	}
	return false
}

const storageClassMarker = ".storageclass.storage.k8s.io/"

// ComputeUsage is what objs (all of the quota's namespace) consume of the
// resources in q.Spec.Hard that the controller can count; names it
// cannot count (count/ of other resources) get no usage.
func ComputeUsage(q *v1.ResourceQuota, objs []runtime.Object, now time.Time) v1.ResourceList {
	used := v1.ResourceList{}
	for name := range q.Spec.Hard {
		for _, res := range countedResources {
			if consumes(res, name) {
				used[name] = *resource.NewQuantity(0, resource.DecimalSI)
				break
			}
		}
	}
	for _, o := range objs {
		if !quota.Matches(q, o) {
			continue
		}
		used = quota.Add(used, quota.Mask(quota.Usage(o, now), used))
	}
	return used
}
