package garbagecollector

import (
	"context"
	"fmt"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// monitors runs one metadata watch per deletable resource and follows
// discovery as resources come and go.
type monitors struct {
	md         metadata.Interface
	disc       discovery.DiscoveryInterface
	ignored    map[schema.GroupResource]bool
	handlerFor func(schema.GroupVersionResource, schema.GroupVersionKind) cache.ResourceEventHandler

	mu      sync.Mutex
	running map[schema.GroupVersionResource]*monitor
	// found is set after the first successful discovery; until then the
	// graph is empty and "synced" would be a lie.
	found bool
	wg    sync.WaitGroup
}

type monitor struct {
	informer cache.SharedIndexInformer
	stop     context.CancelFunc
}

func newMonitors(md metadata.Interface, disc discovery.DiscoveryInterface, ignored map[schema.GroupResource]bool,
	handlerFor func(schema.GroupVersionResource, schema.GroupVersionKind) cache.ResourceEventHandler) *monitors {
	return &monitors{md: md, disc: disc, ignored: ignored, handlerFor: handlerFor, running: map[schema.GroupVersionResource]*monitor{}}
}

// resync starts watches for newly discovered resources and stops those of
// resources that went away; it reports whether any watch started and which
// resources went. When discovery fails for
// some groups, their watches are kept: a flaky aggregated API must not make
// the collector forget what it knows.
func (m *monitors) resync(ctx context.Context) (added bool, removed []schema.GroupVersionResource, err error) {
	want, partial, err := deletableResources(m.disc, m.ignored)
	if err != nil {
		return false, nil, err
	}
	logger := klog.FromContext(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !partial {
		for gvr, mon := range m.running {
			if _, ok := want[gvr]; !ok {
				mon.stop()
				delete(m.running, gvr)
				removed = append(removed, gvr)
				logger.V(2).Info("Stopped watching resource", "resource", gvr.String())
			}
		}
	}
	for gvr, gvk := range want {
		if _, ok := m.running[gvr]; ok {
			continue
		}
		inf := metadatainformer.NewFilteredMetadataInformer(m.md, gvr, metav1.NamespaceAll, 0, cache.Indexers{}, nil).Informer()
		if err := inf.SetTransform(trimMetadata); err != nil {
			return added, removed, fmt.Errorf("watch %s: %w", gvr, err)
		}
		if _, err := inf.AddEventHandler(m.handlerFor(gvr, gvk)); err != nil {
			return added, removed, fmt.Errorf("watch %s: %w", gvr, err)
		}
		mctx, cancel := context.WithCancel(ctx)
		m.running[gvr] = &monitor{informer: inf, stop: cancel}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			inf.RunWithContext(mctx)
		}()
		logger.V(2).Info("Watching resource", "resource", gvr.String())
		added = true
	}
	m.found = true
	return added, removed, nil
}

// synced reports whether the first discovery is done and every watch has
// listed its resource, i.e. whether the graph can be trusted to list all
// dependents of an owner.
func (m *monitors) synced() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.found {
		return false
	}
	for _, mon := range m.running {
		if !mon.informer.HasSynced() {
			return false
		}
	}
	return true
}

func (m *monitors) discovered() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.found
}

// wait blocks until every watch has stopped (their contexts derive from the
// one given to resync).
func (m *monitors) wait() { m.wg.Wait() }

// trimMetadata drops what the collector never reads before it is cached:
// managedFields, annotations (last-applied configurations can be large) and
// labels.
func trimMetadata(obj interface{}) (interface{}, error) {
	if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
		m.ManagedFields = nil
		m.Annotations = nil
		m.Labels = nil
	}
	return obj, nil
}

// deletableResources lists the preferred version of every resource that
// supports list, watch and delete, with its kind. partial reports that some
// groups failed discovery.
func deletableResources(disc discovery.DiscoveryInterface, ignored map[schema.GroupResource]bool) (map[schema.GroupVersionResource]schema.GroupVersionKind, bool, error) {
	lists, err := disc.ServerPreferredResources()
	partial := false
	if err != nil {
		if !discovery.IsGroupDiscoveryFailedError(err) || len(lists) == 0 {
			return nil, false, fmt.Errorf("discover resources: %w", err)
		}
		partial = true
	}
	lists = discovery.FilteredBy(discovery.SupportsAllVerbs{Verbs: []string{"delete", "list", "watch"}}, lists)
	out := map[schema.GroupVersionResource]schema.GroupVersionKind{}
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") || ignored[schema.GroupResource{Group: gv.Group, Resource: r.Name}] {
				continue
			}
			out[gv.WithResource(r.Name)] = gv.WithKind(r.Kind)
		}
	}
	return out, partial, nil
}
