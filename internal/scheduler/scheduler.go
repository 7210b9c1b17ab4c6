package scheduler

import (
	"context"
	"math/rand/v2"
	"reflect"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// DefaultSchedulerName is the spec.schedulerName this scheduler serves (an
// empty name means the same, as the API server defaults it).
const DefaultSchedulerName = v1.DefaultSchedulerName

// Options tunes the scheduler; zero values mean kube-scheduler's defaults.
type Options struct {
	// SchedulerName defaults to "default-scheduler".
	SchedulerName string
	// InitialBackoff (1s) doubles per failed attempt of a pod up to
	// MaxBackoff (10s): a pod moved back by a cluster change waits out the
	// rest of its backoff first.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// MaxUnschedulableDuration (5m) retries unschedulable pods even when no
	// cluster change woke them.
	MaxUnschedulableDuration time.Duration
	// Seed seeds tie-breaking between equal nodes; zero seeds from time.
	Seed uint64
}

// Scheduler binds pending pods to nodes.
type Scheduler struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	opts     Options
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister
	services corelisters.ServiceLister
	queue    workqueue.TypedRateLimitingInterface[string]
	synced   []cache.InformerSynced
	rand     *rand.Rand // used only by the single scheduling worker

	mu sync.Mutex
	// assumed holds pods bound by us that the informer still shows
	// unbound, keyed by namespace/name, with NodeName filled in.
	assumed map[string]*v1.Pod
	// unschedulable holds pods waiting for a cluster change, with their
	// failed attempts for backoff.
	unschedulable map[string]*attempt
	attempts      map[string]*attempt
	// wakes counts wakeUnschedulable calls, so that a decision made on a
	// snapshot older than a cluster change is retried rather than parked
	// (the change's wake-up found nothing to wake).
	wakes uint64
}

type attempt struct {
	count int
	last  time.Time
}

// New registers informer handlers on f; the caller starts f.
func New(client kubernetes.Interface, f informers.SharedInformerFactory, recorder record.EventRecorder, opts Options) *Scheduler {
	if opts.SchedulerName == "" {
		opts.SchedulerName = DefaultSchedulerName
	}
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 10 * time.Second
	}
	if opts.MaxUnschedulableDuration <= 0 {
		opts.MaxUnschedulableDuration = 5 * time.Minute
	}
	seed := opts.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	podInf := f.Core().V1().Pods()
	nodeInf := f.Core().V1().Nodes()
	svcInf := f.Core().V1().Services()
	s := &Scheduler{
		client:        client,
		recorder:      recorder,
		opts:          opts,
		pods:          podInf.Lister(),
		nodes:         nodeInf.Lister(),
		services:      svcInf.Lister(),
		rand:          rand.New(rand.NewPCG(seed, seed>>1|1)),
		assumed:       map[string]*v1.Pod{},
		unschedulable: map[string]*attempt{},
		attempts:      map[string]*attempt{},
	}
	s.queue = newQueue()
	s.synced = []cache.InformerSynced{podInf.Informer().HasSynced, nodeInf.Informer().HasSynced, svcInf.Informer().HasSynced}
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    s.onPodAdd,
		UpdateFunc: s.onPodUpdate,
		DeleteFunc: s.onPodDelete,
	})
	_, _ = nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(interface{}) { s.wakeUnschedulable() },
		UpdateFunc: func(old, obj interface{}) {
			o, ok1 := old.(*v1.Node)
			n, ok2 := obj.(*v1.Node)
			if ok1 && ok2 && nodeSchedulingChanged(o, n) {
				s.wakeUnschedulable()
			}
		},
	})
	return s
}

// Run schedules until ctx ends. Decisions are made by one worker whatever
// workers says: resource accounting is only exact when each decision sees
// the previous one.
func (s *Scheduler) Run(ctx context.Context, workers int) {
	defer s.queue.ShutDown()
	logger := klog.FromContext(ctx).WithValues("controller", "scheduler")
	ctx = klog.NewContext(ctx, logger)
	logger.Info("Starting scheduler", "schedulerName", s.opts.SchedulerName)
	defer logger.Info("Shutting down scheduler")
	if !cache.WaitForNamedCacheSync("scheduler", ctx.Done(), s.synced...) {
		return
	}
	go s.flushUnschedulable(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.work(ctx)
	}()
	<-ctx.Done()
	s.queue.ShutDown()
	<-done
}

// responsible reports whether pod waits for this scheduler.
func (s *Scheduler) responsible(pod *v1.Pod) bool {
	name := pod.Spec.SchedulerName
	if name == "" {
		name = DefaultSchedulerName
	}
	return pod.Spec.NodeName == "" && name == s.opts.SchedulerName && pod.DeletionTimestamp == nil &&
		pod.Status.Phase != v1.PodSucceeded && pod.Status.Phase != v1.PodFailed
}

func (s *Scheduler) onPodAdd(obj interface{}) {
	pod, ok := obj.(*v1.Pod)
	if !ok {
		return
	}
	if s.responsible(pod) {
		s.enqueue(pod)
	}
}

func (s *Scheduler) onPodUpdate(oldObj, obj interface{}) {
	old, ok1 := oldObj.(*v1.Pod)
	pod, ok2 := obj.(*v1.Pod)
	if !ok1 || !ok2 {
		return
	}
	key := podKey(pod)
	switch {
	case s.responsible(pod):
		// Our own status writes come back as updates; only a changed
		// spec or labels can change where the pod fits.
		if !s.responsible(old) || !reflect.DeepEqual(old.Spec, pod.Spec) || !reflect.DeepEqual(old.Labels, pod.Labels) {
			s.forgetUnschedulable(key)
			s.queue.Add(key)
		}
	case pod.Spec.NodeName != "":
		s.mu.Lock()
		delete(s.assumed, key)
		s.mu.Unlock()
		s.forget(key)
		// A bound pod finishing frees its node's resources and ports.
		if !terminal(old) && terminal(pod) {
			s.wakeUnschedulable()
		}
	default:
		s.forget(key)
	}
}

func (s *Scheduler) onPodDelete(obj interface{}) {
	pod, ok := unwrap(obj).(*v1.Pod)
	if !ok {
		return
	}
	key := podKey(pod)
	s.mu.Lock()
	_, wasAssumed := s.assumed[key]
	delete(s.assumed, key)
	s.mu.Unlock()
	s.forget(key)
	if pod.Spec.NodeName != "" || wasAssumed {
		s.wakeUnschedulable()
	}
}

func terminal(p *v1.Pod) bool {
	return p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed
}

// nodeSchedulingChanged ignores heartbeats: only what the predicates and
// scores read can make a waiting pod fit.
func nodeSchedulingChanged(o, n *v1.Node) bool {
	if !reflect.DeepEqual(o.Labels, n.Labels) || !reflect.DeepEqual(o.Spec.Taints, n.Spec.Taints) ||
		o.Spec.Unschedulable != n.Spec.Unschedulable || !reflect.DeepEqual(o.Status.Allocatable, n.Status.Allocatable) {
		return true
	}
	return readyOf(o) != readyOf(n)
}

func readyOf(n *v1.Node) v1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			return c.Status
		}
	}
	return v1.ConditionUnknown
}

// wakeUnschedulable moves every waiting pod back to the queue, each after
// what remains of its backoff.
func (s *Scheduler) wakeUnschedulable() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wakes++
	now := time.Now()
	for key, a := range s.unschedulable {
		delete(s.unschedulable, key)
		s.queue.AddAfter(key, max(0, a.last.Add(s.backoff(a.count)).Sub(now)))
	}
}

// flushUnschedulable retries pods that waited too long for a cluster change
// that would help them (kube-scheduler does the same every 5 minutes).
func (s *Scheduler) flushUnschedulable(ctx context.Context) {
	period := min(s.opts.MaxUnschedulableDuration/4, 30*time.Second)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.mu.Lock()
			for key, a := range s.unschedulable {
				if now.Sub(a.last) >= s.opts.MaxUnschedulableDuration {
					delete(s.unschedulable, key)
					s.queue.Add(key)
				}
			}
			s.mu.Unlock()
		}
	}
}

func (s *Scheduler) backoff(failures int) time.Duration {
	d := s.opts.InitialBackoff
	for i := 1; i < failures && d < s.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, s.opts.MaxBackoff)
}

// markUnschedulable parks key until a cluster change or the flush period;
// wakes is wakeCount from before the snapshot the decision was made on.
// When a change came since, the pod is retried after its backoff instead.
func (s *Scheduler) markUnschedulable(key string, wakes uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.attempts[key]
	if a == nil {
		a = &attempt{}
		s.attempts[key] = a
	}
	a.count++
	a.last = time.Now()
	if s.wakes != wakes {
		s.queue.AddAfter(key, s.backoff(a.count))
		return
	}
	s.unschedulable[key] = a
}

// wakeCount is the number of cluster changes that woke parked pods so far.
func (s *Scheduler) wakeCount() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wakes
}

func (s *Scheduler) forgetUnschedulable(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.unschedulable, key)
}

// forget drops all retry state of key: it was bound or deleted.
func (s *Scheduler) forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.unschedulable, key)
	delete(s.attempts, key)
}

func podKey(p *v1.Pod) string { return p.Namespace + "/" + p.Name }
