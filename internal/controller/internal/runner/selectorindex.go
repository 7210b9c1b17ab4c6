package runner

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// Index names on the shared pod and service informers.
const (
	podLabelIndex        = "portal.dev/pod-labels"
	serviceSelectorIndex = "portal.dev/service-selector"
)

// SelectorIndex answers "which pods does this service select" and "which
// services select this pod" from the informer caches through indexes on
// each label pair, so the cost follows the number of matches instead of
// services × pods in a namespace (10,000 services of 10 pods in one
// namespace would otherwise be 10⁹ selector checks per full sync).
type SelectorIndex struct {
	pods     cache.Indexer
	services cache.Indexer
}

// NewSelectorIndex adds the indexes to f's pod and service informers (once,
// however many controllers ask) and returns a view over them. Call it
// before the factory starts.
func NewSelectorIndex(f informers.SharedInformerFactory) (*SelectorIndex, error) {
	podInf := f.Core().V1().Pods().Informer()
	svcInf := f.Core().V1().Services().Informer()
	if err := ensureIndex(podInf, podLabelIndex, podLabelKeys); err != nil {
		return nil, err
	}
	if err := ensureIndex(svcInf, serviceSelectorIndex, serviceSelectorKeys); err != nil {
		return nil, err
	}
	return &SelectorIndex{pods: podInf.GetIndexer(), services: svcInf.GetIndexer()}, nil
}

// MustSelectorIndex is NewSelectorIndex for controller constructors: it
// fails only when the factory was started before the controller was
// built, a programming error.
func MustSelectorIndex(f informers.SharedInformerFactory) *SelectorIndex {
	x, err := NewSelectorIndex(f)
	if err != nil {
		panic(err)
	}
	return x
}

func ensureIndex(inf cache.SharedIndexInformer, name string, fn cache.IndexFunc) error {
	if _, ok := inf.GetIndexer().GetIndexers()[name]; ok {
		return nil
	}
	if err := inf.AddIndexers(cache.Indexers{name: fn}); err != nil {
		return fmt.Errorf("index %s: %w", name, err)
	}
	return nil
}

func pairKey(ns, k, v string) string { return ns + "/" + k + "=" + v }

func podLabelKeys(obj interface{}) ([]string, error) {
	p, ok := obj.(*v1.Pod)
	if !ok {
		return nil, nil
	}
	keys := make([]string, 0, len(p.Labels))
	for k, v := range p.Labels {
		keys = append(keys, pairKey(p.Namespace, k, v))
	}
	return keys, nil
}

// serviceSelectorKeys indexes a service under every pair of its selector;
// a service without a selector selects nothing and is not indexed.
func serviceSelectorKeys(obj interface{}) ([]string, error) {
	s, ok := obj.(*v1.Service)
	if !ok {
		return nil, nil
	}
	keys := make([]string, 0, len(s.Spec.Selector))
	for k, v := range s.Spec.Selector {
		keys = append(keys, pairKey(s.Namespace, k, v))
	}
	return keys, nil
}

// PodsFor returns the pods in ns that selector matches; an empty selector
// matches none (as for Services).
func (x *SelectorIndex) PodsFor(ns string, selector map[string]string) ([]*v1.Pod, error) {
	if len(selector) == 0 {
		return nil, nil
	}
	// Candidates from the rarest pair, then the full match.
	var best []interface{}
	first := true
	for k, v := range selector {
		objs, err := x.pods.ByIndex(podLabelIndex, pairKey(ns, k, v))
		if err != nil {
			return nil, err
		}
		if first || len(objs) < len(best) {
			best, first = objs, false
		}
		if len(best) == 0 {
			return nil, nil
		}
	}
	out := make([]*v1.Pod, 0, len(best))
	for _, o := range best {
		if p, ok := o.(*v1.Pod); ok && SelectorMatches(selector, p.Labels) {
			out = append(out, p)
		}
	}
	return out, nil
}

// ServicesFor returns the services in ns whose selector matches podLabels.
func (x *SelectorIndex) ServicesFor(ns string, podLabels map[string]string) ([]*v1.Service, error) {
	seen := map[string]bool{}
	var out []*v1.Service
	for k, v := range podLabels {
		objs, err := x.services.ByIndex(serviceSelectorIndex, pairKey(ns, k, v))
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			s, ok := o.(*v1.Service)
			if !ok || seen[s.Name] {
				continue
			}
			seen[s.Name] = true
			if SelectorMatches(s.Spec.Selector, podLabels) {
				out = append(out, s)
			}
		}
	}
	return out, nil
}
