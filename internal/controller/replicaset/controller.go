package replicaset

import (
	"context"
	"time"

	"github.com/portal-net/portal/internal/controller/internal/runner"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
)

// Options tunes the controller; zero values mean upstream defaults.
type Options struct {
	// BurstReplicas caps the pods created or deleted for one owner in one
	// sync; defaults to 500.
	BurstReplicas int
	// Clock drives availability (minReadySeconds) and expectation expiry;
	// defaults to the real clock.
	Clock clock.Clock
}

// DefaultBurstReplicas is upstream's default.
const DefaultBurstReplicas = 500

// Event reasons, as upstream's pod control records them.
const (
	reasonSuccessfulCreate = "SuccessfulCreate"
	reasonFailedCreate     = "FailedCreate"
	reasonSuccessfulDelete = "SuccessfulDelete"
	reasonFailedDelete     = "FailedDelete"
)

// Controller keeps the pods of one owner kind (ReplicaSets or
// ReplicationControllers) at their desired count.
type Controller struct {
	client   kubernetes.Interface
	kind     kind
	recorder record.EventRecorder
	opts     Options
	pods     corelisters.PodLister
	exp      *expectations
	loop     *runner.Loop
}

// New returns the ReplicaSet controller. It registers handlers on f; the
// caller starts f.
func New(client kubernetes.Interface, f informers.SharedInformerFactory, recorder record.EventRecorder, opts Options) *Controller {
	return newController("replicaset", client, newRSKind(client, f), f, recorder, opts)
}

// NewReplicationController returns the ReplicationController controller,
// the same logic over core/v1 ReplicationControllers.
func NewReplicationController(client kubernetes.Interface, f informers.SharedInformerFactory, recorder record.EventRecorder, opts Options) *Controller {
	return newController("replicationcontroller", client, newRCKind(client, f), f, recorder, opts)
}

func newController(name string, client kubernetes.Interface, k kind, f informers.SharedInformerFactory, recorder record.EventRecorder, opts Options) *Controller {
	if opts.BurstReplicas < 1 {
		opts.BurstReplicas = DefaultBurstReplicas
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	podInf := f.Core().V1().Pods()
	c := &Controller{
		client:   client,
		kind:     k,
		recorder: recorder,
		opts:     opts,
		pods:     podInf.Lister(),
		exp:      newExpectations(opts.Clock.Now),
	}
	c.loop = &runner.Loop{
		Name:   name,
		Queue:  runner.NewQueue(name),
		Synced: []cache.InformerSynced{k.Informer().HasSynced, podInf.Informer().HasSynced},
		Sync:   c.sync,
	}
	_, _ = k.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.loop.Enqueue,
		UpdateFunc: func(_, obj interface{}) { c.loop.Enqueue(obj) },
		DeleteFunc: func(obj interface{}) {
			if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
				c.exp.Delete(key)
			}
			c.loop.Enqueue(obj)
		},
	})
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addPod,
		UpdateFunc: c.updatePod,
		DeleteFunc: c.deletePod,
	})
	return c
}

// Run processes owners until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) { c.loop.Run(ctx, workers) }

// controllerKey returns the key of the owner of this kind that controls
// pod, or "" when another kind (or nobody) controls it. The UID check keeps
// a pod of a deleted owner from waking a new owner with the same name.
func (c *Controller) controllerKey(pod *v1.Pod, ref *metav1.OwnerReference) string {
	if ref == nil {
		return ""
	}
	gvk := c.kind.GVK()
	if ref.Kind != gvk.Kind || ref.APIVersion != gvk.GroupVersion().String() {
		return ""
	}
	o, err := c.kind.Get(pod.Namespace, ref.Name)
	if err != nil || o.GetUID() != ref.UID {
		return ""
	}
	return pod.Namespace + "/" + ref.Name
}

func (c *Controller) addPod(obj interface{}) {
	pod, ok := obj.(*v1.Pod)
	if !ok {
		return
	}
	if pod.DeletionTimestamp != nil {
		// Seen for the first time already terminating (e.g. after a
		// relist): for expectations that is a deletion.
		c.deletePod(pod)
		return
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		if key := c.controllerKey(pod, ref); key != "" {
			c.exp.CreationObserved(key)
			c.loop.Queue.Add(key)
		}
		return
	}
	c.enqueueSelecting(pod)
}

func (c *Controller) updatePod(old, cur interface{}) {
	oldPod, ok1 := old.(*v1.Pod)
	curPod, ok2 := cur.(*v1.Pod)
	if !ok1 || !ok2 || oldPod.ResourceVersion == curPod.ResourceVersion {
		return // periodic resync: nothing changed
	}
	labelsChanged := !labels.Equals(oldPod.Labels, curPod.Labels)
	if curPod.DeletionTimestamp != nil && oldPod.DeletionTimestamp == nil {
		// Graceful deletion began: the pod stops counting now, not when
		// it finally disappears, so the replacement starts early.
		c.deletePod(curPod)
		if labelsChanged {
			c.deletePod(oldPod)
		}
		return
	}
	oldRef, curRef := metav1.GetControllerOfNoCopy(oldPod), metav1.GetControllerOfNoCopy(curPod)
	refChanged := !refEqual(oldRef, curRef)
	if refChanged {
		if key := c.controllerKey(oldPod, oldRef); key != "" {
			c.loop.Queue.Add(key)
		}
	}
	if curRef != nil {
		if key := c.controllerKey(curPod, curRef); key != "" {
			c.loop.Queue.Add(key)
		}
		return
	}
	if labelsChanged || refChanged {
		c.enqueueSelecting(curPod)
	}
}

func (c *Controller) deletePod(obj interface{}) {
	pod, ok := runner.Unwrap(obj).(*v1.Pod)
	if !ok {
		return
	}
	// Orphans are not counted by anyone; their deletion changes nothing.
	key := c.controllerKey(pod, metav1.GetControllerOfNoCopy(pod))
	if key == "" {
		return
	}
	c.exp.DeletionObserved(key, pod.Namespace+"/"+pod.Name)
	c.loop.Queue.Add(key)
}

// enqueueSelecting wakes every owner whose selector matches the orphan pod
// so that one of them adopts it.
func (c *Controller) enqueueSelecting(pod *v1.Pod) {
	owners, err := c.kind.List(pod.Namespace)
	if err != nil {
		return
	}
	for _, o := range owners {
		sel, err := o.Selector()
		if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		c.loop.Queue.Add(o.GetNamespace() + "/" + o.GetName())
	}
}

func refEqual(a, b *metav1.OwnerReference) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.UID == b.UID
}

// requeueAfter looks at key again after d; used for availability, which no
// event announces.
func (c *Controller) requeueAfter(key string, d time.Duration) { c.loop.Queue.AddAfter(key, d) }
