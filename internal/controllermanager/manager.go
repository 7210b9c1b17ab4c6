package controllermanager

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/portal-net/portal/internal/config"
	"github.com/portal-net/portal/internal/sys/memtrim"
)

// LeaseNamespace holds the leader-election Lease.
const LeaseNamespace = "kube-system"

// Manager runs the controllers while it holds leadership.
type Manager struct {
	cfg      config.Controllers
	rest     *rest.Config
	client   kubernetes.Interface
	identity string
	leading  atomic.Bool
}

// New prepares a manager that talks to the API through restConfig.
func New(restConfig *rest.Config, cfg config.Controllers) (*Manager, error) {
	rc := rest.CopyConfig(restConfig)
	// Controllers burst at start (a full resync writes every object that
	// drifted); client-go's default 5 QPS would make that take minutes.
	rc.QPS, rc.Burst = 500, 1000
	rc.UserAgent = "portal-controller-manager"
	// The API server is on loopback or a LAN: gzip of large lists costs
	// more CPU (here ~10% of the controllers') than it saves.
	rc.DisableCompression = true
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("controller client: %w", err)
	}
	host, _ := os.Hostname()
	return &Manager{cfg: cfg, rest: rc, client: client, identity: host + "_" + string(uuid.NewUUID())}, nil
}

// Identity is this manager's leader-election identity.
func (m *Manager) Identity() string { return m.identity }

// Leading reports whether this manager's controllers are running.
func (m *Manager) Leading() bool { return m.leading.Load() }

// Run blocks until ctx ends. Without leader election the controllers run at
// once; with it, they run only while this manager holds the Lease, and a
// manager that loses it stands for election again.
func (m *Manager) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithName("controller-manager")
	ctx = klog.NewContext(ctx, logger)
	if m.cfg.MetricsBindAddress != "" {
		if err := m.serveMetrics(ctx, m.cfg.MetricsBindAddress); err != nil {
			return fmt.Errorf("controller metrics: %w", err)
		}
	}
	if !m.cfg.LeaderElect {
		m.lead(ctx)
		return nil
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: LeaseNamespace, Name: m.cfg.LeaseName},
		Client:     m.client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: m.identity},
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   m.cfg.LeaseDuration,
			RenewDeadline:   m.cfg.RenewDeadline,
			RetryPeriod:     m.cfg.RetryPeriod,
			ReleaseOnCancel: true,
			Name:            m.cfg.LeaseName,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: m.lead,
				OnStoppedLeading: func() { logger.Info("Leadership lost or released", "identity", m.identity) },
				OnNewLeader: func(id string) {
					if id != m.identity {
						logger.Info("Another controller manager leads", "leader", id)
					}
				},
			},
		})
		if err != nil {
			return fmt.Errorf("leader election: %w", err)
		}
		le.Run(ctx)
	}
	return nil
}

// lead starts informers and every controller and blocks until ctx ends
// (leadership lost or shutdown), then waits for them to stop so a later term
// starts from a clean slate.
func (m *Manager) lead(ctx context.Context) {
	logger := klog.FromContext(ctx)
	logger.Info("Starting controllers", "identity", m.identity)
	m.leading.Store(true)
	defer m.leading.Store(false)
	start := time.Now()

	cc, err := m.newContext(ctx)
	if err != nil {
		logger.Error(err, "Cannot start controllers")
		<-ctx.Done()
		return
	}
	defer cc.broadcaster.Shutdown()

	var wg sync.WaitGroup
	for _, d := range descriptors {
		run := d.start(cc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(klog.NewContext(ctx, logger.WithValues("controller", d.name)))
		}()
	}
	// Informers start after every controller registered its handlers, so
	// each sees the initial list exactly once.
	cc.Informers.Start(ctx.Done())
	for typ, ok := range cc.Informers.WaitForCacheSync(ctx.Done()) {
		if !ok && ctx.Err() == nil {
			logger.Info("Informer did not sync", "type", typ)
		}
	}
	logger.Info("Controllers running", "afterMs", time.Since(start).Milliseconds())
	// The initial lists leave large decode buffers behind; hand them back
	// to the OS once, as the steady state needs a fraction of that peak.
	memtrim.ReleaseStartup()
	<-ctx.Done()
	wg.Wait()
	cc.Informers.Shutdown()
}

// Context is what a controller gets to start: shared clients, informers and
// an event recorder per component.
type Context struct {
	Client    kubernetes.Interface
	Metadata  metadata.Interface
	Informers informers.SharedInformerFactory
	Config    config.Controllers
	// REST is the client configuration, for clients of portal's own kinds.
	REST *rest.Config

	broadcaster record.EventBroadcaster
}

// Recorder returns an event recorder reporting as component.
func (c *Context) Recorder(component string) record.EventRecorder {
	return c.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})
}

func (m *Manager) newContext(ctx context.Context) (*Context, error) {
	md, err := metadata.NewForConfig(m.rest)
	if err != nil {
		return nil, err
	}
	b := record.NewBroadcaster(record.WithContext(ctx))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: m.client.CoreV1().Events("")})
	return &Context{
		Client:      m.client,
		Metadata:    md,
		Informers:   informers.NewSharedInformerFactoryWithOptions(m.client, 0, informers.WithTransform(dropManagedFields)),
		Config:      m.cfg,
		REST:        m.rest,
		broadcaster: b,
	}, nil
}

// dropManagedFields trims server-side-apply bookkeeping from cached objects:
// no controller reads it, and it is a large share of every pod's memory.
// Updates built from a trimmed copy keep the stored managedFields, since the
// API server preserves them when an update omits them.
func dropManagedFields(obj interface{}) (interface{}, error) {
	if a, err := meta.Accessor(obj); err == nil && a.GetManagedFields() != nil {
		a.SetManagedFields(nil)
	}
	return obj, nil
}
