package garbagecollector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/portal-net/portal/internal/controller/internal/runner"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/lru"
)

// Options tunes the collector; zero values mean upstream defaults.
type Options struct {
	// DiscoveryPeriod is how often discovery is re-read to watch resources
	// that appeared (CRDs, aggregated APIs) and drop those that went;
	// default 30s.
	DiscoveryPeriod time.Duration
	// IgnoredResources are never watched, in addition to events (core and
	// events.k8s.io), which upstream ignores too: they are numerous and never
	// carry ownerReferences worth collecting.
	IgnoredResources []schema.GroupResource
	// AbsentOwnerCacheSize bounds the cache of owners confirmed absent, which
	// spares a GET per dependent when many share one deleted owner;
	// default 500.
	AbsentOwnerCacheSize int
}

// Controller is the garbage collector.
type Controller struct {
	client   kubernetes.Interface
	md       metadata.Interface
	disc     discovery.DiscoveryInterface
	recorder record.EventRecorder
	opts     Options

	graph    *graph
	mapper   *restmapper.DeferredDiscoveryRESTMapper
	absent   *lru.Cache
	monitors *monitors
	attempt  *runner.Loop
	orphan   *runner.Loop

	// parked are objects with an owner of a kind discovery does not know.
	// Retrying them cannot help until a resource appears, so they wait for
	// the next discovery that adds one instead of burning retries.
	parkedMu sync.Mutex
	parked   map[types.UID]struct{}
}

// New returns a collector. It needs the metadata client to watch and write
// every resource generically and discovery to find them; client is kept for
// callers' symmetry with the other controllers.
func New(client kubernetes.Interface, md metadata.Interface, disc discovery.DiscoveryInterface, recorder record.EventRecorder, opts Options) *Controller {
	if opts.DiscoveryPeriod <= 0 {
		opts.DiscoveryPeriod = 30 * time.Second
	}
	if opts.AbsentOwnerCacheSize <= 0 {
		opts.AbsentOwnerCacheSize = 500
	}
	ignored := map[schema.GroupResource]bool{
		{Group: "", Resource: "events"}:              true,
		{Group: "events.k8s.io", Resource: "events"}: true,
	}
	for _, gr := range opts.IgnoredResources {
		ignored[gr] = true
	}
	c := &Controller{
		client:   client,
		md:       md,
		disc:     disc,
		recorder: recorder,
		opts:     opts,
		graph:    newGraph(),
		mapper:   restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc)),
		absent:   lru.New(opts.AbsentOwnerCacheSize),
		parked:   map[types.UID]struct{}{},
	}
	c.monitors = newMonitors(md, disc, ignored, c.handlerFor)
	c.attempt = &runner.Loop{
		Name:   "garbagecollector",
		Queue:  runner.NewQueue("garbage_collector_attempt_to_delete"),
		Synced: []cache.InformerSynced{c.monitors.synced},
		Sync:   c.syncAttempt,
	}
	c.orphan = &runner.Loop{
		Name:   "garbagecollector-orphan",
		Queue:  runner.NewQueue("garbage_collector_attempt_to_orphan"),
		Synced: []cache.InformerSynced{c.monitors.synced},
		Sync:   c.syncOrphan,
	}
	return c
}

// Run watches and collects until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	// The loops name themselves in their logs; discovery gets its own name.
	discCtx := klog.NewContext(ctx, klog.FromContext(ctx).WithValues("controller", "garbagecollector-discovery"))
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); c.discoveryLoop(discCtx) }()
	go func() { defer wg.Done(); c.attempt.Run(ctx, workers) }()
	go func() { defer wg.Done(); c.orphan.Run(ctx, workers) }()
	wg.Wait()
	c.monitors.wait()
}

// discoveryLoop keeps the set of watched resources in line with discovery.
// Until the first discovery succeeds it retries every second, since nothing
// can be collected before.
func (c *Controller) discoveryLoop(ctx context.Context) {
	logger := klog.FromContext(ctx)
	for {
		c.mapper.Reset()
		added, removed, err := c.monitors.resync(ctx)
		if err != nil {
			logger.Error(err, "Discovering deletable resources")
		}
		for _, gvr := range removed {
			c.apply(c.graph.forgetResource(gvr))
		}
		if added {
			c.unpark()
		}
		delay := c.opts.DiscoveryPeriod
		if !c.monitors.discovered() {
			delay = time.Second
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// handlerFor feeds the graph from the watch of one resource. Metadata
// watches do not carry the object's kind, so it comes from discovery.
func (c *Controller) handlerFor(gvr schema.GroupVersionResource, gvk schema.GroupVersionKind) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj interface{}) { c.observe(gvr, gvk, obj) },
		UpdateFunc: func(_, obj interface{}) { c.observe(gvr, gvk, obj) },
		DeleteFunc: func(obj interface{}) {
			m, err := meta.Accessor(runner.Unwrap(obj))
			if err != nil {
				return
			}
			c.apply(c.graph.forget(m.GetUID()))
		},
	}
}

func (c *Controller) observe(gvr schema.GroupVersionResource, gvk schema.GroupVersionKind, obj interface{}) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return
	}
	c.apply(c.graph.observe(toObject(gvr, gvk, m)))
}

func toObject(gvr schema.GroupVersionResource, gvk schema.GroupVersionKind, m *metav1.PartialObjectMetadata) object {
	apiVersion, kind := gvk.ToAPIVersionAndKind()
	return object{
		Resource:   gvr,
		APIVersion: apiVersion,
		Kind:       kind,
		Namespace:  m.Namespace,
		Name:       m.Name,
		UID:        m.UID,
		Owners:     m.OwnerReferences,
		Deleting:   m.DeletionTimestamp != nil,
		Finalizers: m.Finalizers,
	}
}

func (c *Controller) apply(eff effects) {
	for _, uid := range eff.Attempt {
		c.attempt.Queue.Add(string(uid))
	}
	for _, uid := range eff.Orphan {
		c.orphan.Queue.Add(string(uid))
	}
}

// syncAttempt processes one object: a dependent whose owners may be gone,
// or an owner being deleted in the foreground.
func (c *Controller) syncAttempt(ctx context.Context, key string) error {
	uid := types.UID(key)
	obj, ok := c.graph.get(uid)
	if !ok || (obj.Deleting && !obj.deletingDependents()) {
		return nil
	}
	latest, err := c.live(ctx, obj)
	if latest == nil || err != nil {
		return err
	}
	cur := toObject(obj.Resource, obj.gvk(), latest)
	if cur.deletingDependents() {
		return c.syncForeground(ctx, cur)
	}
	if len(cur.Owners) == 0 {
		return nil
	}
	refs := make([]classifiedRef, 0, len(cur.Owners))
	for _, ref := range cur.Owners {
		state, err := c.classify(ctx, cur, ref)
		if errors.Is(err, errClusterScopedDependent) {
			// Retrying cannot fix this reference; leave the object alone.
			return nil
		}
		if errors.Is(err, errUnknownKind) {
			klog.FromContext(ctx).V(2).Info("Owner kind unknown, waiting for discovery",
				"object", klog.KRef(cur.Namespace, cur.Name), "owner", ref.APIVersion+"/"+ref.Kind, "err", err)
			c.park(uid)
			return nil
		}
		if err != nil {
			return err
		}
		refs = append(refs, classifiedRef{Ref: ref, State: state})
	}
	deps := c.graph.dependents(uid)
	depDeleting := false
	for _, d := range deps {
		depDeleting = depDeleting || d.deletingDependents()
	}
	p := decide(cur, refs, len(deps) > 0, depDeleting)
	if p.noop() {
		return nil
	}
	logger := klog.FromContext(ctx).WithValues("object", klog.KRef(cur.Namespace, cur.Name), "resource", cur.Resource.String(), "uid", uid)
	if p.Owners != nil {
		logger.V(2).Info("Updating ownerReferences", "ownerReferences", len(p.Owners))
		if err := c.patch(ctx, cur.Resource, latest, map[string]any{"ownerReferences": p.Owners}); err != nil {
			return err
		}
	}
	if p.Delete {
		logger.V(2).Info("Deleting dependent whose owners are gone", "propagationPolicy", p.Policy)
		return c.delete(ctx, cur, p.Policy)
	}
	return nil
}

// syncForeground lets an owner deleted in the foreground go once no
// dependent blocks it, and pushes the blocking dependents meanwhile. The
// owner is requeued by the graph when one of them goes.
func (c *Controller) syncForeground(ctx context.Context, owner object) error {
	if !c.monitors.synced() {
		// A dependent of a resource just discovered may not be in the graph.
		return runner.ErrStale
	}
	remove, process := foregroundPlan(c.graph.dependents(owner.UID))
	for _, uid := range process {
		c.attempt.Queue.Add(string(uid))
	}
	if !remove {
		return nil
	}
	klog.FromContext(ctx).V(2).Info("No dependent blocks the owner any more, removing its finalizer",
		"object", klog.KRef(owner.Namespace, owner.Name), "finalizer", metav1.FinalizerDeleteDependents)
	return c.removeFinalizer(ctx, owner, metav1.FinalizerDeleteDependents)
}

// syncOrphan strips references to an owner carrying the orphan finalizer
// from all its dependents, then removes the finalizer.
func (c *Controller) syncOrphan(ctx context.Context, key string) error {
	uid := types.UID(key)
	owner, ok := c.graph.get(uid)
	if !ok || !owner.orphaning() {
		return nil
	}
	if !c.monitors.synced() {
		return runner.ErrStale
	}
	var errs []error
	for _, d := range c.graph.dependents(uid) {
		latest, err := c.live(ctx, d.object)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if latest == nil {
			continue
		}
		refs := withoutOwners(latest.OwnerReferences, []types.UID{uid})
		if len(refs) == len(latest.OwnerReferences) {
			continue
		}
		if err := c.patch(ctx, d.Resource, latest, map[string]any{"ownerReferences": refs}); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	klog.FromContext(ctx).V(2).Info("Dependents orphaned, removing the owner's finalizer",
		"object", klog.KRef(owner.Namespace, owner.Name), "finalizer", metav1.FinalizerOrphanDependents)
	return c.removeFinalizer(ctx, owner, metav1.FinalizerOrphanDependents)
}

// errClusterScopedDependent marks a cluster-scoped object naming a
// namespaced owner, a reference that can never resolve.
var errClusterScopedDependent = errors.New("cluster-scoped object references a namespaced owner")

// absentKey identifies an owner confirmed absent in one namespace ("" for
// cluster-scoped owners). UIDs are never reused, so absence is permanent.
type absentKey struct {
	uid       types.UID
	namespace string
}

// classify finds out whether the owner ref names exists. The graph answers
// for owners it has observed; anything else is a live GET, so a lagging
// watch can never make an owner look absent.
func (c *Controller) classify(ctx context.Context, dep object, ref metav1.OwnerReference) (ownerState, error) {
	if o, ok := c.graph.owner(dep, ref); ok {
		if o.deletingDependents() {
			return ownerWaiting, nil
		}
		return ownerPresent, nil
	}
	mapping, err := c.mapOwner(ref)
	if err != nil {
		return 0, err
	}
	namespace := ""
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if dep.Namespace == "" {
			c.recorder.Eventf(objectRef(dep), v1.EventTypeWarning, "OwnerRefInvalidNamespace",
				"ownerRef [%s/%s, name: %s, uid: %s] names a namespaced owner, which a cluster-scoped object cannot have",
				ref.APIVersion, ref.Kind, ref.Name, ref.UID)
			return 0, errClusterScopedDependent
		}
		namespace = dep.Namespace
	}
	key := absentKey{uid: ref.UID, namespace: namespace}
	if _, ok := c.absent.Get(key); ok {
		return ownerAbsent, nil
	}
	got, err := c.md.Resource(mapping.Resource).Namespace(namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return 0, fmt.Errorf("get owner %s %s/%s: %w", mapping.Resource, namespace, ref.Name, err)
	case got.UID != ref.UID:
	case got.DeletionTimestamp != nil && toObject(mapping.Resource, mapping.GroupVersionKind, got).has(metav1.FinalizerDeleteDependents):
		return ownerWaiting, nil
	default:
		return ownerPresent, nil
	}
	c.absent.Add(key, struct{}{})
	if elsewhere, ok := c.graph.get(ref.UID); ok && namespace != "" && elsewhere.Namespace != namespace {
		c.recorder.Eventf(objectRef(dep), v1.EventTypeWarning, "OwnerRefInvalidNamespace",
			"ownerRef [%s/%s, name: %s, uid: %s] does not exist in namespace %q",
			ref.APIVersion, ref.Kind, ref.Name, ref.UID, namespace)
	}
	return ownerAbsent, nil
}

func (c *Controller) park(uid types.UID) {
	c.parkedMu.Lock()
	defer c.parkedMu.Unlock()
	c.parked[uid] = struct{}{}
}

// unpark requeues every parked object, as a new resource may serve its
// owner's kind.
func (c *Controller) unpark() {
	c.parkedMu.Lock()
	parked := c.parked
	c.parked = map[types.UID]struct{}{}
	c.parkedMu.Unlock()
	for uid := range parked {
		c.attempt.Queue.Add(string(uid))
	}
}

// errUnknownKind marks an owner reference whose kind no served resource has.
var errUnknownKind = errors.New("no served resource has the owner's kind")

// mapOwner resolves an owner reference's kind to a resource, falling back
// to the group's preferred version when the referenced one is not served.
func (c *Controller) mapOwner(ref metav1.OwnerReference) (*meta.RESTMapping, error) {
	gvk := schema.FromAPIVersionAndKind(ref.APIVersion, ref.Kind)
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		m, err = c.mapper.RESTMapping(gvk.GroupKind())
	}
	if meta.IsNoMatchError(err) {
		return nil, fmt.Errorf("map owner kind %s: %w: %w", gvk, errUnknownKind, err)
	}
	if err != nil {
		return nil, fmt.Errorf("map owner kind %s: %w", gvk, err)
	}
	return m, nil
}

func objectRef(o object) *v1.ObjectReference {
	return &v1.ObjectReference{APIVersion: o.APIVersion, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name, UID: o.UID}
}

// live GETs o; nil without error means it is gone or was replaced.
func (c *Controller) live(ctx context.Context, o object) (*metav1.PartialObjectMetadata, error) {
	got, err := c.md.Resource(o.Resource).Namespace(o.Namespace).Get(ctx, o.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s/%s: %w", o.Resource, o.Namespace, o.Name, err)
	}
	if got.UID != o.UID {
		return nil, nil
	}
	return got, nil
}

// patch writes metadata fields with a JSON merge patch pinned to the UID and
// resourceVersion that were read, so a concurrent change makes it fail with
// a conflict (and the key retries) instead of being overwritten. A merge
// patch, unlike a strategic one, works for custom resources too.
func (c *Controller) patch(ctx context.Context, gvr schema.GroupVersionResource, latest *metav1.PartialObjectMetadata, fields map[string]any) error {
	m := map[string]any{"uid": latest.UID, "resourceVersion": latest.ResourceVersion}
	for k, v := range fields {
		m[k] = v
	}
	data, err := json.Marshal(map[string]any{"metadata": m})
	if err != nil {
		return fmt.Errorf("encode patch: %w", err)
	}
	_, err = c.md.Resource(gvr).Namespace(latest.Namespace).Patch(ctx, latest.Name, types.MergePatchType, data, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("patch %s %s/%s: %w", gvr, latest.Namespace, latest.Name, err)
	}
	return nil
}

func (c *Controller) removeFinalizer(ctx context.Context, o object, finalizer string) error {
	latest, err := c.live(ctx, o)
	if latest == nil || err != nil {
		return err
	}
	if !toObject(o.Resource, o.gvk(), latest).has(finalizer) {
		return nil
	}
	return c.patch(ctx, o.Resource, latest, map[string]any{"finalizers": withoutFinalizer(latest.Finalizers, finalizer)})
}

// delete deletes o if it still has its UID.
func (c *Controller) delete(ctx context.Context, o object, policy metav1.DeletionPropagation) error {
	uid := o.UID
	err := c.md.Resource(o.Resource).Namespace(o.Namespace).Delete(ctx, o.Name, metav1.DeleteOptions{
		Preconditions:     &metav1.Preconditions{UID: &uid},
		PropagationPolicy: &policy,
	})
	// Conflict: the UID precondition failed, the name holds a new object.
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s %s/%s: %w", o.Resource, o.Namespace, o.Name, err)
	}
	return nil
}
