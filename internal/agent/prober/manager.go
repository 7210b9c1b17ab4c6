package prober

import (
	"context"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/portal-net/portal/internal/agent/podenv"
)

// updatesBuffer is the capacity of the channel returned by Updates. Updates
// beyond it wait in an unbounded queue, so a worker or a caller of
// ContainerStarted never blocks on a slow consumer.
const updatesBuffer = 64

type containerKey struct {
	uid  types.UID
	name string
}

// containerProbes is the probe state of the current attempt of one
// container. All fields are guarded by Manager.mu.
type containerProbes struct {
	pod     *v1.Pod
	running bool
	cancel  context.CancelFunc

	hasReadiness, hasStartup bool
	readyResult              bool // last committed readiness result
	startedResult            bool // startup probe succeeded
	// started is closed when the container counts as started; liveness and
	// readiness workers wait for it.
	started chan struct{}

	ready bool // effective readiness last reported
}

func (c *containerProbes) isStarted() bool {
	return c.running && (!c.hasStartup || c.startedResult)
}

func (c *containerProbes) effectiveReady() bool {
	if !c.isStarted() || c.pod.DeletionTimestamp != nil {
		return false
	}
	return !c.hasReadiness || c.readyResult
}

// Manager runs the probe workers of all containers on the node.
type Manager struct {
	prober *prober
	record Recorder
	now    func() time.Time
	scale  time.Duration

	mu         sync.Mutex
	containers map[containerKey]*containerProbes
	stopped    bool
	wg         sync.WaitGroup

	qmu     sync.Mutex
	queue   []Update
	qsignal chan struct{}
	out     chan Update
	done    chan struct{}
	pumped  chan struct{}
}

// NewManager returns a running Manager; call Stop to end it.
func NewManager(opts Options) *Manager {
	m := &Manager{
		prober:     newProber(opts),
		record:     opts.Record,
		now:        opts.Now,
		scale:      opts.TimeScale,
		containers: map[containerKey]*containerProbes{},
		qsignal:    make(chan struct{}, 1),
		out:        make(chan Update, updatesBuffer),
		done:       make(chan struct{}),
		pumped:     make(chan struct{}),
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.scale <= 0 {
		m.scale = time.Second
	}
	go m.pump()
	return m
}

// Updates returns the channel of result changes. It is closed by Stop.
func (m *Manager) Updates() <-chan Update { return m.out }

// ContainerStarted (re)starts the probe workers of container in pod for a new
// attempt that started at startedAt, resetting its results.
func (m *Manager) ContainerStarted(pod *v1.Pod, container string, podIP string, startedAt time.Time) {
	m.start(pod, container, podIP, startedAt, false, false)
}

// ContainerAdopted starts the probe workers of a container that was
// already running when this agent started (a restart of the agent, not
// of the container), with the results the pod's status reported for it:
// a container that was ready stays ready until its probes say otherwise
// (failureThreshold failures), so an agent restart never takes working
// pods out of their services.
func (m *Manager) ContainerAdopted(pod *v1.Pod, container string, podIP string, startedAt time.Time, wasReady, wasStarted bool) {
	m.start(pod, container, podIP, startedAt, wasReady, wasStarted)
}

func (m *Manager) start(pod *v1.Pod, container string, podIP string, startedAt time.Time, wasReady, wasStarted bool) {
	spec := podenv.FindContainer(pod, container)
	key := containerKey{pod.UID, container}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	reported := false
	if old := m.containers[key]; old != nil {
		reported = old.ready
		old.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &containerProbes{pod: pod, running: true, cancel: cancel, started: make(chan struct{}),
		readyResult: wasReady, startedResult: wasStarted}
	m.containers[key] = c

	var live, ready, startup *v1.Probe
	if spec != nil {
		live, ready, startup = spec.LivenessProbe, spec.ReadinessProbe, spec.StartupProbe
	}
	c.hasReadiness, c.hasStartup = ready != nil, startup != nil
	if !c.hasStartup || c.startedResult {
		close(c.started)
	}
	c.ready = c.effectiveReady()
	if c.ready != reported {
		m.enqueue(Update{UID: pod.UID, Container: container, Kind: Readiness, OK: c.ready})
	}

	t := target{uid: pod.UID, podIP: podIP, container: spec}
	for _, w := range []struct {
		kind  Kind
		probe *v1.Probe
	}{{Startup, startup}, {Liveness, live}, {Readiness, ready}} {
		if w.probe == nil || (w.kind == Startup && c.startedResult) {
			continue
		}
		wk := &worker{m: m, key: key, c: c, kind: w.kind, probe: w.probe, target: t, startedAt: startedAt}
		m.wg.Add(1)
		go wk.run(ctx)
	}
}

// ContainerStopped stops the probe workers of container; it is not ready
// until it is started again.
func (m *Manager) ContainerStopped(uid types.UID, container string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.containers[containerKey{uid, container}]
	if c == nil || !c.running {
		return
	}
	c.cancel()
	c.running = false
	m.reconcileReady(containerKey{uid, container}, c, "")
}

// UpdatePod gives the manager the latest version of a pod whose containers
// it probes. A pod being deleted (DeletionTimestamp set) is not ready: its
// readiness probes stop running and its containers report Ready false.
func (m *Manager) UpdatePod(pod *v1.Pod) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, c := range m.containers {
		if key.uid != pod.UID {
			continue
		}
		c.pod = pod
		m.reconcileReady(key, c, "")
	}
}

// RemovePod stops and forgets all probes of the pod.
func (m *Manager) RemovePod(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, c := range m.containers {
		if key.uid == uid {
			c.cancel()
			delete(m.containers, key)
		}
	}
}

// Ready reports whether the container is ready: running, started, not
// being deleted, and its readiness probe (if any) passed.
func (m *Manager) Ready(uid types.UID, container string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.containers[containerKey{uid, container}]
	return c != nil && c.ready
}

// Started reports whether the container is running and its startup probe
// (if any) succeeded.
func (m *Manager) Started(uid types.UID, container string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.containers[containerKey{uid, container}]
	return c != nil && c.isStarted()
}

// Stop ends all workers, waits for them and closes the Updates channel.
func (m *Manager) Stop() {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return
	}
	m.stopped = true
	for _, c := range m.containers {
		c.cancel()
	}
	m.mu.Unlock()
	m.wg.Wait()
	close(m.done)
	<-m.pumped
}

// reconcileReady recomputes the effective readiness of c and reports a
// change. Callers hold m.mu.
func (m *Manager) reconcileReady(key containerKey, c *containerProbes, msg string) {
	r := c.effectiveReady()
	if r == c.ready {
		return
	}
	c.ready = r
	if r {
		msg = ""
	}
	m.enqueue(Update{UID: key.uid, Container: key.name, Kind: Readiness, OK: r, Message: msg})
}

func (m *Manager) enqueue(u Update) {
	m.qmu.Lock()
	m.queue = append(m.queue, u)
	m.qmu.Unlock()
	select {
	case m.qsignal <- struct{}{}:
	default:
	}
}

// pump moves queued updates to the out channel in order.
func (m *Manager) pump() {
	defer close(m.pumped)
	defer close(m.out)
	for {
		m.qmu.Lock()
		q := m.queue
		m.queue = nil
		m.qmu.Unlock()
		for _, u := range q {
			select {
			case m.out <- u:
			case <-m.done:
				return
			}
		}
		select {
		case <-m.qsignal:
		case <-m.done:
			return
		}
	}
}
