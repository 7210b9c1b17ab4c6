package nodelifecycle

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/portal-net/portal/internal/controller/internal/runner"
	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	coordinationlisters "k8s.io/client-go/listers/coordination/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Defaults of kube-controller-manager 1.37. The grace period has been 50s
// since 1.32 (kubernetes/kubernetes#126287, up from 40s).
const (
	DefaultNodeMonitorGracePeriod = 50 * time.Second
	DefaultNodeMonitorPeriod      = 5 * time.Second
	DefaultNodeStartupGracePeriod = 60 * time.Second
)

// Event reasons, as upstream records them.
const (
	ReasonNodeNotReady         = "NodeNotReady"
	ReasonTaintManagerEviction = "TaintManagerEviction"
)

// Options tunes the controller; zero values mean the defaults above.
type Options struct {
	// NodeMonitorGracePeriod is how long a running node may go without
	// renewing its lease or heartbeat before it is marked Unknown.
	NodeMonitorGracePeriod time.Duration
	// NodeMonitorPeriod is how often every node's health is checked.
	NodeMonitorPeriod time.Duration
	// NodeStartupGracePeriod replaces the grace period for a node that
	// never posted a Ready condition.
	NodeStartupGracePeriod time.Duration
	// Clock is the time source of every decision; nil is the real clock.
	Clock clock.Clock
}

func (o Options) withDefaults() Options {
	if o.NodeMonitorGracePeriod <= 0 {
		o.NodeMonitorGracePeriod = DefaultNodeMonitorGracePeriod
	}
	if o.NodeMonitorPeriod <= 0 {
		o.NodeMonitorPeriod = DefaultNodeMonitorPeriod
	}
	if o.NodeStartupGracePeriod <= 0 {
		o.NodeStartupGracePeriod = DefaultNodeStartupGracePeriod
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return o
}

// podsByNode indexes pods by spec.nodeName; the name is ours so another
// controller's index on the shared informer cannot clash with it.
const podsByNode = "nodelifecycle.spec.nodeName"

// Controller watches node health, taints and pod eviction.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	opts     Options
	nodes    corelisters.NodeLister
	leases   coordinationlisters.LeaseLister
	pods     corelisters.PodLister
	podIndex cache.Indexer
	nodeLoop *runner.Loop
	podLoop  *runner.Loop
	// after requeues a pod key once its eviction deadline comes; tests
	// replace it to see the schedule.
	after func(key string, d time.Duration)

	mu     sync.Mutex
	health map[string]*health
	// taintSeen is when the controller first saw a taint without
	// timeAdded, keyed by node, key and effect.
	taintSeen map[string]time.Time
	// pending are pods with an eviction scheduled, so a cancellation can
	// be reported.
	pending map[string]bool
}

// New registers informer handlers on f; the caller starts f.
func New(client kubernetes.Interface, f informers.SharedInformerFactory, recorder record.EventRecorder, opts Options) *Controller {
	opts = opts.withDefaults()
	nodeInf := f.Core().V1().Nodes()
	podInf := f.Core().V1().Pods()
	leaseInf := f.Coordination().V1().Leases()
	_ = podInf.Informer().AddIndexers(cache.Indexers{podsByNode: func(obj interface{}) ([]string, error) {
		if p, ok := obj.(*v1.Pod); ok && p.Spec.NodeName != "" {
			return []string{p.Spec.NodeName}, nil
		}
		return nil, nil
	}})
	c := &Controller{
		client:    client,
		recorder:  recorder,
		opts:      opts,
		nodes:     nodeInf.Lister(),
		leases:    leaseInf.Lister(),
		pods:      podInf.Lister(),
		podIndex:  podInf.Informer().GetIndexer(),
		health:    map[string]*health{},
		taintSeen: map[string]time.Time{},
		pending:   map[string]bool{},
	}
	synced := []cache.InformerSynced{nodeInf.Informer().HasSynced, podInf.Informer().HasSynced, leaseInf.Informer().HasSynced}
	c.nodeLoop = &runner.Loop{Name: "nodelifecycle-node", Queue: runner.NewQueue("nodelifecycle-node"), Synced: synced, Sync: c.syncNode}
	c.podLoop = &runner.Loop{Name: "nodelifecycle-pod", Queue: runner.NewQueue("nodelifecycle-pod"), Synced: synced, Sync: c.syncPod}
	c.after = c.podLoop.Queue.AddAfter

	_, _ = nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.nodeLoop.Enqueue,
		UpdateFunc: func(old, obj interface{}) {
			c.nodeLoop.Enqueue(obj)
			o, ok1 := old.(*v1.Node)
			n, ok2 := obj.(*v1.Node)
			if ok1 && ok2 && (readyStatus(o) != readyStatus(n) || !taintsEqual(o.Spec.Taints, n.Spec.Taints)) {
				c.enqueuePodsOn(n.Name)
			}
		},
		DeleteFunc: c.nodeLoop.Enqueue,
	})
	_, _ = leaseInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueLeaseNode,
		UpdateFunc: func(_, obj interface{}) { c.enqueueLeaseNode(obj) },
	})
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueuePod,
		UpdateFunc: func(_, obj interface{}) { c.enqueuePod(obj) },
	})
	return c
}

// Run blocks until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.nodeLoop.Run(ctx, 1) }()
	go func() { defer wg.Done(); c.podLoop.Run(ctx, workers) }()
	// The periodic pass is what notices silence: a dead node sends no
	// events.
	wait.UntilWithContext(ctx, c.enqueueAllNodes, c.opts.NodeMonitorPeriod)
	wg.Wait()
}

func (c *Controller) enqueueAllNodes(ctx context.Context) {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		klog.FromContext(ctx).Error(err, "Listing nodes")
		return
	}
	for _, n := range nodes {
		c.nodeLoop.Queue.Add(n.Name)
	}
}

func (c *Controller) enqueueLeaseNode(obj interface{}) {
	if l, ok := runner.Unwrap(obj).(*coordinationv1.Lease); ok && l.Namespace == v1.NamespaceNodeLease {
		c.nodeLoop.Queue.Add(l.Name)
	}
}

func (c *Controller) enqueuePod(obj interface{}) {
	if p, ok := runner.Unwrap(obj).(*v1.Pod); ok && p.Spec.NodeName != "" && p.DeletionTimestamp == nil {
		c.podLoop.Enqueue(p)
	}
}

func (c *Controller) enqueuePodsOn(node string) {
	objs, err := c.podIndex.ByIndex(podsByNode, node)
	if err != nil {
		return
	}
	for _, o := range objs {
		c.enqueuePod(o)
	}
}

func taintsEqual(a, b []v1.Taint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].MatchTaint(&b[i]) || a[i].Value != b[i].Value {
			return false
		}
	}
	return true
}

// forgetNode drops what the controller remembers of a deleted node.
func (c *Controller) forgetNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.health, name)
	for k := range c.taintSeen {
		if len(k) > len(name) && k[:len(name)+1] == name+"/" {
			delete(c.taintSeen, k)
		}
	}
}

// since is the start time of a taint without timeAdded: when the
// controller first saw it.
func (c *Controller) since(node string) func(v1.Taint) time.Time {
	return func(t v1.Taint) time.Time {
		c.mu.Lock()
		defer c.mu.Unlock()
		k := node + "/" + t.Key + "/" + string(t.Effect)
		at, ok := c.taintSeen[k]
		if !ok {
			at = c.opts.Clock.Now()
			c.taintSeen[k] = at
		}
		return at
	}
}

// errorf wraps an API error for the retry log; NotFound is no error, as
// the object is gone and there is nothing left to retry.
func errorf(format string, err error, args ...any) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
