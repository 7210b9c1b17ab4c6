package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/portal-net/portal/internal/agent/podstatus"
	"github.com/portal-net/portal/internal/agent/prober"
	"github.com/portal-net/portal/internal/config"
	"github.com/portal-net/portal/internal/feed"
	"github.com/portal-net/portal/internal/podruntime"
	"github.com/portal-net/portal/internal/podruntime/network"
	"github.com/portal-net/portal/internal/proxy/topologykeys"
)

// Deps are the side effects an Agent works through; New fills in the
// real ones where they are nil.
type Deps struct {
	// Runtime runs the pods (default: the local process runtime).
	Runtime podruntime.Runtime
	// Network is the pod network of this node (default: bridge portal0).
	Network network.Manager
	// ClusterCA (PEM) signs the client certificates the agent's HTTPS API
	// accepts (the API server's, for logs and exec).
	ClusterCA []byte
}

// Agent is one node agent.
type Agent struct {
	cfg    config.Agent
	rc     *rest.Config
	client kubernetes.Interface
	rt     podruntime.Runtime
	net    network.Manager
	// admitMu serialises admission and sandbox creation of pods with
	// host ports (see admit).
	admitMu sync.Mutex
	// hostPorts maps the pods' host ports (nil: nftables, see hostports.go).
	hostPorts hostPortTable
	probes    *prober.Manager
	rec       record.EventRecorder
	lbRec     record.EventRecorder // the load-balancer speaker's events
	back      *podstatus.Backoff
	mach      nodeInfo

	hostResolv []byte
	clusterCA  []byte
	nodeIP     net.IP

	pods       corelisters.PodLister
	services   corelisters.ServiceLister
	podsSync   cache.InformerSynced
	svcsSynced cache.InformerSynced

	mu      sync.Mutex
	workers map[types.UID]*podWorker
	nodeUID string
}

// New builds an agent; Run starts it.
func New(cfg config.Agent, rc *rest.Config, deps Deps) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rc = rest.CopyConfig(rc)
	rc.UserAgent = "portal-agent/" + cfg.NodeName
	rc.QPS, rc.Burst = 50, 100
	// Protobuf: a third of JSON's decoding work and garbage for the
	// informers' lists of every Service and EndpointSlice.
	rc.ContentType = runtime.ContentTypeProtobuf
	rc.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:       cfg,
		rc:        rc,
		client:    cs,
		rt:        deps.Runtime,
		net:       deps.Network,
		back:      podstatus.NewBackoff(cfg.CrashBackoffInitial, cfg.CrashBackoffMax),
		workers:   map[types.UID]*podWorker{},
		nodeIP:    net.ParseIP(cfg.NodeIP),
		clusterCA: deps.ClusterCA,
	}
	a.hostResolv, _ = os.ReadFile(cfg.ResolvConf)
	return a, nil
}

// Run registers the node, sets up its pod network and runs its pods until
// ctx ends. Pods keep running after Run returns: their supervisors outlive
// the agent, and the next agent re-adopts them.
func (a *Agent) Run(ctx context.Context) error {
	for _, d := range []string{a.cfg.RootDir, a.cfg.RunDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if a.cfg.ProxyOnly {
		return a.runProxyOnly(ctx)
	}
	if a.cfg.DNSOnly {
		return a.runDNSOnly(ctx)
	}
	a.mach = machine(a.cfg)
	bc := record.NewBroadcaster(record.WithContext(ctx))
	bc.StartRecordingToSink(&eventSink{Interface: a.client.CoreV1().Events("")})
	defer bc.Shutdown()
	a.rec = bc.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: a.cfg.NodeName})
	a.lbRec = bc.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "portal-speaker", Host: a.cfg.NodeName})

	node, err := registerNode(ctx, a.client, a.cfg, a.mach)
	if err != nil {
		return err
	}
	a.setNodeUID(string(node.UID))
	go heartbeat(ctx, a.client, a.cfg, a.mach, a.getNodeUID)

	cidr, err := a.waitPodCIDR(ctx)
	if err != nil {
		return err
	}
	if a.net == nil {
		a.net = network.NewBridge(network.Config{
			StateDir: filepath.Join(a.cfg.RootDir, "network"),
			NetnsDir: filepath.Join(a.cfg.RunDir, "netns"),
		})
	}
	if err := a.net.Setup(ctx, cidr); err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	klog.InfoS("Pod network ready", "node", a.cfg.NodeName, "podCIDR", cidr.String())
	if a.rt == nil {
		if a.rt, err = newLocalRuntime(a.cfg, a.net); err != nil {
			return err
		}
	}

	a.probes = prober.NewManager(prober.Options{Exec: a.execProbe, Record: a.recordProbe})
	defer a.probes.Stop()

	podInf := informers.NewSharedInformerFactoryWithOptions(a.client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", a.cfg.NodeName).String()
	}))
	inf, keys, err := a.informers()
	if err != nil {
		return err
	}
	pods := podInf.Core().V1().Pods()
	a.pods = pods.Lister()
	a.services = inf.Core().V1().Services().Lister()
	nodes := inf.Core().V1().Nodes()
	if _, err := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { a.podChanged(o) },
		UpdateFunc: func(_, o any) { a.podChanged(o) },
		DeleteFunc: func(o any) { a.podChanged(o) },
	}); err != nil {
		return err
	}
	hostPorts := make(chan struct{}, 1)
	if _, err := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { kick(hostPorts) },
		UpdateFunc: func(any, any) { kick(hostPorts) },
		DeleteFunc: func(any) { kick(hostPorts) },
	}); err != nil {
		return err
	}
	routes := make(chan struct{}, 1)
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { kick(routes) },
		UpdateFunc: func(any, any) { kick(routes) },
		DeleteFunc: func(any) { kick(routes) },
	}); err != nil {
		return err
	}
	slices := feed.EndpointSlices(a.client)
	if err := a.startProxy(ctx, inf, keys, slices); err != nil {
		return fmt.Errorf("service proxy: %w", err)
	}
	if err := a.startSpeaker(ctx, inf, slices); err != nil {
		return fmt.Errorf("load-balancer announcements: %w", err)
	}
	// DNS answers on the pod bridge's own address: every pod reaches it
	// (other nodes' pods through the pod routes), the node's outside
	// network does not, so the forwarder is no open resolver there.
	gw, _ := netip.AddrFromSlice(cidr.IP.To4())
	if err := a.startDNS(ctx, informerSources(inf, slices, a.cfg.DNS && a.cfg.DNSAutopath), gw.Next()); err != nil {
		return fmt.Errorf("cluster DNS: %w", err)
	}
	podInf.Start(ctx.Done())
	inf.Start(ctx.Done())
	slices.Start(ctx)
	defer podInf.Shutdown()
	defer inf.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), pods.Informer().HasSynced, inf.Core().V1().Services().Informer().HasSynced, nodes.Informer().HasSynced) {
		return ctx.Err()
	}
	if err := a.serveAPI(ctx); err != nil {
		return err
	}
	go a.syncRoutes(ctx, nodes.Lister(), routes)
	go a.syncHostPorts(ctx, hostPorts)
	go a.runtimeEvents(ctx)
	go a.probeUpdates(ctx)

	if err := a.adopt(ctx); err != nil {
		klog.ErrorS(err, "Re-adopting pods")
	}
	// Every pod gets a sync now and then, as kubelet's resync.
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			a.stopWorkers()
			return nil
		case <-t.C:
			a.kickAll()
		}
	}
}

// runProxyOnly is `portal agent --proxy-only`: the service proxy alone,
// reading Services, EndpointSlices and Nodes of whatever API it points at.
func (a *Agent) runProxyOnly(ctx context.Context) error {
	inf, keys, err := a.informers()
	if err != nil {
		return err
	}
	slices := feed.EndpointSlices(a.client)
	if err := a.startProxy(ctx, inf, keys, slices); err != nil {
		return fmt.Errorf("service proxy: %w", err)
	}
	inf.Start(ctx.Done())
	slices.Start(ctx)
	defer inf.Shutdown()
	<-ctx.Done()
	return nil
}

// dnsOnlyGCPercent is the GC target of `--dns-only` unless GOGC is set.
const dnsOnlyGCPercent = 50

// runDNSOnly is `portal agent --dns-only`: the cluster DNS server alone.
func (a *Agent) runDNSOnly(ctx context.Context) error {
	a.cfg.DNS = true
	if _, set := os.LookupEnv("GOGC"); !set {
		// The heap of a DNS server alone is its records and its answer
		// cache, which change slowly and are most of what it allocates:
		// at the default GOGC of 100 the runtime keeps as much again as
		// headroom. Half of that costs a few more collections of a heap
		// that hardly makes garbage.
		debug.SetGCPercent(dnsOnlyGCPercent)
	}
	nodeIP, err := netip.ParseAddr(a.cfg.NodeIP)
	if err != nil {
		return fmt.Errorf("--node-ip: %w", err)
	}
	src := reflectedSources(a.client, a.cfg.DNSAutopath)
	if err := a.startDNS(ctx, src, nodeIP); err != nil {
		return fmt.Errorf("cluster DNS: %w", err)
	}
	src.start(ctx)
	<-ctx.Done()
	return nil
}

// informers is the agent's cluster-wide informer factory. Its Service
// informer also carries spec.topologyKeys (see topologykeys), so it is
// installed before anything else asks for it.
func (a *Agent) informers() (informers.SharedInformerFactory, *topologykeys.Keys, error) {
	inf := informers.NewSharedInformerFactoryWithOptions(a.client, 0, informers.WithTransform(dropManagedFields))
	keys, err := topologykeys.Register(inf, a.rc, 0)
	if err != nil {
		return nil, nil, err
	}
	return inf, keys, nil
}

// dropManagedFields keeps server-side apply's bookkeeping out of the
// informer caches: the agent never reads it, and on every Service and
// EndpointSlice of a large cluster it is a good part of the memory.
func dropManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

func (a *Agent) setNodeUID(u string) { a.mu.Lock(); a.nodeUID = u; a.mu.Unlock() }
func (a *Agent) getNodeUID() string  { a.mu.Lock(); defer a.mu.Unlock(); return a.nodeUID }

// waitPodCIDR waits for the node's spec.podCIDR (set by the controller
// manager's node IPAM, or by --pod-cidr).
func (a *Agent) waitPodCIDR(ctx context.Context) (*net.IPNet, error) {
	logged := false
	for {
		n, err := a.client.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
		if err == nil {
			cidr, err := podCIDR(n)
			if err != nil {
				return nil, err
			}
			if cidr != nil {
				return cidr, nil
			}
		}
		if !logged {
			klog.InfoS("Waiting for the node's pod CIDR", "node", a.cfg.NodeName)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// syncRoutes keeps host-gateway routes to every other node's pod CIDR.
func (a *Agent) syncRoutes(ctx context.Context, nodes corelisters.NodeLister, kicked <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-kicked:
		}
		all, err := nodes.List(everything)
		if err != nil {
			continue
		}
		sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
		var routes []network.Route
		for _, n := range all {
			if n.Name == a.cfg.NodeName {
				continue
			}
			cidr, err := podCIDR(n)
			ip := nodeIP(n)
			if err != nil || cidr == nil || ip == nil {
				continue
			}
			routes = append(routes, network.Route{Dst: cidr, Via: ip})
		}
		if err := a.net.SyncRoutes(ctx, routes); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "Syncing routes to other nodes' pods")
		}
	}
}

// runtimeEvents re-syncs a pod whenever one of its containers exits.
func (a *Agent) runtimeEvents(ctx context.Context) {
	for uid := range a.rt.Events(ctx) {
		a.kickUID(uid)
	}
}

// probeUpdates turns probe results into status updates and restarts.
func (a *Agent) probeUpdates(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-a.probes.Updates():
			if !ok {
				return
			}
			if !u.OK && (u.Kind == prober.Liveness || u.Kind == prober.Startup) {
				a.markUnhealthy(u.UID, u.Container, u.Kind)
			}
			a.kickUID(u.UID)
		}
	}
}

// adopt reconciles the runtime's sandboxes with the API's pods after a
// start: sandboxes of pods that are gone are removed, the others get
// their worker (which finds their containers running and leaves them).
func (a *Agent) adopt(ctx context.Context) error {
	sbs, err := a.rt.List(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, sb := range sbs {
		if _, ok := a.podByUID(sb.UID); ok {
			a.kickUID(sb.UID)
			continue
		}
		klog.InfoS("Removing the sandbox of a pod that no longer exists", "pod", klog.KRef(sb.Namespace, sb.Name), "uid", sb.UID)
		if err := a.rt.RemoveSandbox(ctx, sb.UID); err != nil {
			errs = append(errs, err)
		}
		_ = os.RemoveAll(a.volumeDir(sb.UID))
	}
	a.kickAll()
	return errors.Join(errs...)
}

func (a *Agent) podByUID(uid types.UID) (*corev1.Pod, bool) {
	all, err := a.pods.List(everything)
	if err != nil {
		return nil, false
	}
	for _, p := range all {
		if p.UID == uid {
			return p, true
		}
	}
	return nil, false
}

func kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
