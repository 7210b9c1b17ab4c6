package agent

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/portal-net/portal/internal/agent/prober"
)

var everything = labels.Everything()

// podWorker serialises everything the agent does to one pod: a goroutine
// that syncs the pod whenever it is kicked (API change, container exit,
// probe result, back-off timer, resync).
type podWorker struct {
	uid       types.UID
	namespace string
	name      string
	kickc     chan struct{}
	done      chan struct{}

	mu sync.Mutex
	// waiting is the waiting state of containers the agent could not
	// start (CreateContainerConfigError, ImageNotRunnable, CrashLoopBackOff).
	waiting map[string]*corev1.ContainerStateWaiting
	// lastTerm is the previous attempt's termination per container.
	lastTerm map[string]*corev1.ContainerStateTerminated
	// unhealthy marks containers whose liveness or startup probe failed:
	// the next sync restarts them.
	unhealthy map[string]prober.Kind
	// probed is the attempt the prober last heard about per container.
	probed map[string]int
	timer  *time.Timer
}

func newPodWorker(uid types.UID, ns, name string) *podWorker {
	return &podWorker{
		uid: uid, namespace: ns, name: name,
		kickc:     make(chan struct{}, 1),
		done:      make(chan struct{}),
		waiting:   map[string]*corev1.ContainerStateWaiting{},
		lastTerm:  map[string]*corev1.ContainerStateTerminated{},
		unhealthy: map[string]prober.Kind{},
		probed:    map[string]int{},
	}
}

func (w *podWorker) kick() { kick(w.kickc) }

// kickAfter syncs the pod again after d (back-off, retries).
func (w *podWorker) kickAfter(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
	}
	w.timer = time.AfterFunc(d, w.kick)
}

// podChanged starts or kicks the worker of a pod the informer reported.
func (a *Agent) podChanged(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	a.workerFor(p.UID, p.Namespace, p.Name).kick()
}

func (a *Agent) workerFor(uid types.UID, ns, name string) *podWorker {
	a.mu.Lock()
	defer a.mu.Unlock()
	w, ok := a.workers[uid]
	if !ok {
		w = newPodWorker(uid, ns, name)
		a.workers[uid] = w
		go a.runWorker(w)
	}
	return w
}

func (a *Agent) kickUID(uid types.UID) {
	a.mu.Lock()
	w, ok := a.workers[uid]
	a.mu.Unlock()
	if ok {
		w.kick()
		return
	}
	if p, ok := a.podByUID(uid); ok {
		a.workerFor(p.UID, p.Namespace, p.Name).kick()
	}
}

func (a *Agent) kickAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, w := range a.workers {
		w.kick()
	}
	// Pods the informer knows but no worker has yet (after a start).
	all, _ := a.pods.List(everything)
	for _, p := range all {
		if _, ok := a.workers[p.UID]; !ok {
			w := newPodWorker(p.UID, p.Namespace, p.Name)
			a.workers[p.UID] = w
			go a.runWorker(w)
			w.kick()
		}
	}
}

func (a *Agent) markUnhealthy(uid types.UID, container string, k prober.Kind) {
	a.mu.Lock()
	w, ok := a.workers[uid]
	a.mu.Unlock()
	if !ok {
		return
	}
	w.mu.Lock()
	w.unhealthy[container] = k
	w.mu.Unlock()
}

// stopWorkers ends every worker goroutine (the pods keep running).
func (a *Agent) stopWorkers() {
	a.mu.Lock()
	ws := a.workers
	a.workers = map[types.UID]*podWorker{}
	a.mu.Unlock()
	for _, w := range ws {
		close(w.done)
	}
}

func (a *Agent) runWorker(w *podWorker) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-w.done
		cancel()
	}()
	for {
		select {
		case <-w.done:
			return
		case <-w.kickc:
		}
		finished := a.syncWorker(ctx, w)
		if finished {
			a.mu.Lock()
			if a.workers[w.uid] == w {
				delete(a.workers, w.uid)
			}
			a.mu.Unlock()
			w.mu.Lock()
			if w.timer != nil {
				w.timer.Stop()
			}
			w.mu.Unlock()
			return
		}
	}
}

// syncWorker looks the pod up and syncs it; it reports whether the pod is
// gone from this node for good.
func (a *Agent) syncWorker(ctx context.Context, w *podWorker) bool {
	p, err := a.pods.Pods(w.namespace).Get(w.name)
	if err != nil || p.UID != w.uid {
		// Deleted from the API (force deletion, or the confirmation of our
		// own graceful one): kill what is left.
		a.cleanup(ctx, w)
		return true
	}
	done, err := a.syncPod(ctx, w, p.DeepCopy())
	if err != nil && ctx.Err() == nil {
		klog.ErrorS(err, "Syncing pod failed; retrying", "pod", klog.KObj(p))
		w.kickAfter(2 * time.Second)
	}
	return done
}
