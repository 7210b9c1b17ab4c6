package slicepack

import (
	"fmt"
	"maps"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Group is a set of endpoints that share one port set. Groups with the same
// port set (in any order) are merged.
type Group struct {
	Ports     []discovery.EndpointPort
	Endpoints []discovery.Endpoint
}

// Options describes the slices one owner wants.
type Options struct {
	AddressType discovery.AddressType
	// MaxPerSlice caps endpoints per slice; values below 1 mean 100.
	MaxPerSlice int
	// Placeholder keeps one empty slice when there are no endpoints at all,
	// so consumers can tell "no endpoints" from "not yet reconciled".
	Placeholder bool
	// Meta is the metadata every owned slice must carry: namespace,
	// generateName, labels, annotations and owner references.
	Meta metav1.ObjectMeta
}

// Plan is the set of writes that moves the existing slices to the desired
// state. Update entries are full objects derived from existing ones (name and
// resourceVersion kept).
type Plan struct {
	Create []*discovery.EndpointSlice
	Update []*discovery.EndpointSlice
	Delete []*discovery.EndpointSlice
}

// Empty reports whether the plan has nothing to write.
func (p Plan) Empty() bool { return len(p.Create)+len(p.Update)+len(p.Delete) == 0 }

// PortKey is a canonical, order-independent identity of a port set.
func PortKey(ports []discovery.EndpointPort) string {
	parts := make([]string, 0, len(ports))
	for _, p := range ports {
		parts = append(parts, fmt.Sprintf("%s|%s|%s|%s", deref(p.Name), derefInt(p.Port), derefProto(p.Protocol), deref(p.AppProtocol)))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// EndpointKey identifies an endpoint across syncs: the same backend keeps its
// key while its conditions change, so it stays in the slice it lives in.
func EndpointKey(ep *discovery.Endpoint) string {
	k := strings.Join(ep.Addresses, ",")
	if ep.TargetRef != nil {
		k += "/" + ep.TargetRef.Namespace + "/" + ep.TargetRef.Name
	}
	return k
}

type groupState struct {
	ports  []discovery.EndpointPort
	byKey  map[string]discovery.Endpoint
	keys   []string
	placed map[string]bool
}

type sliceState struct {
	existing *discovery.EndpointSlice
	pk       string
	eps      []discovery.Endpoint
	changed  bool
}

// Pack computes the plan. It is deterministic for a given input.
func Pack(groups []Group, existing []*discovery.EndpointSlice, opts Options) Plan {
	maxPer := opts.MaxPerSlice
	if maxPer < 1 {
		maxPer = 100
	}
	desired := map[string]*groupState{}
	for _, g := range groups {
		pk := PortKey(g.Ports)
		gs, ok := desired[pk]
		if !ok {
			gs = &groupState{ports: g.Ports, byKey: map[string]discovery.Endpoint{}, placed: map[string]bool{}}
			desired[pk] = gs
		}
		for _, ep := range g.Endpoints {
			k := EndpointKey(&ep)
			if _, dup := gs.byKey[k]; !dup {
				gs.keys = append(gs.keys, k)
			}
			gs.byKey[k] = ep
		}
	}
	for pk, gs := range desired {
		if len(gs.keys) == 0 {
			delete(desired, pk)
			continue
		}
		sort.Strings(gs.keys)
	}

	sorted := append([]*discovery.EndpointSlice(nil), existing...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })

	var plan Plan
	var pool []*discovery.EndpointSlice // slices no longer needed, candidates for the placeholder
	var kept []*sliceState
	for _, s := range sorted {
		if s.AddressType != opts.AddressType {
			pool = append(pool, s)
			continue
		}
		pk := PortKey(s.Ports)
		gs, ok := desired[pk]
		if !ok {
			pool = append(pool, s)
			continue
		}
		st := &sliceState{existing: s, pk: pk}
		for i := range s.Endpoints {
			cur := s.Endpoints[i]
			k := EndpointKey(&cur)
			want, ok := gs.byKey[k]
			if !ok || gs.placed[k] || len(st.eps) >= maxPer {
				st.changed = true
				continue
			}
			gs.placed[k] = true
			st.eps = append(st.eps, want)
			if !apiequality.Semantic.DeepEqual(want, cur) {
				st.changed = true
			}
		}
		if !metaMatches(s, opts.Meta) {
			st.changed = true
		}
		kept = append(kept, st)
	}

	pks := make([]string, 0, len(desired))
	for pk := range desired {
		pks = append(pks, pk)
	}
	sort.Strings(pks)
	for _, pk := range pks {
		gs := desired[pk]
		var remaining []discovery.Endpoint
		for _, k := range gs.keys {
			if !gs.placed[k] {
				remaining = append(remaining, gs.byKey[k])
			}
		}
		// Slices being rewritten anyway absorb new endpoints for free.
		for _, st := range kept {
			if len(remaining) == 0 {
				break
			}
			if st.pk != pk || !st.changed || len(st.eps) == 0 {
				continue
			}
			n := min(maxPer-len(st.eps), len(remaining))
			if n > 0 {
				st.eps = append(st.eps, remaining[:n]...)
				remaining = remaining[n:]
			}
		}
		for len(remaining) > 0 {
			n := min(maxPer, len(remaining))
			chunk := remaining[:n]
			remaining = remaining[n:]
			if n < maxPer {
				// A partial chunk goes into the fullest untouched slice that
				// still has room, instead of creating yet another slice.
				var best *sliceState
				for _, st := range kept {
					if st.pk != pk || st.changed || len(st.eps) == 0 || maxPer-len(st.eps) < n {
						continue
					}
					if best == nil || len(st.eps) > len(best.eps) {
						best = st
					}
				}
				if best != nil {
					best.eps = append(best.eps, chunk...)
					best.changed = true
					continue
				}
			}
			plan.Create = append(plan.Create, newSlice(opts, gs.ports, chunk))
		}
	}

	live := len(plan.Create)
	for _, st := range kept {
		if len(st.eps) == 0 {
			pool = append(pool, st.existing)
			continue
		}
		live++
		if st.changed {
			plan.Update = append(plan.Update, rewrite(st.existing, opts, desired[st.pk].ports, st.eps))
		}
	}

	if opts.Placeholder && live == 0 {
		pool = keepPlaceholder(&plan, pool, opts)
	}
	plan.Delete = append(plan.Delete, pool...)
	return plan
}

// keepPlaceholder reuses an existing slice as the placeholder when possible
// and returns the pool minus that slice.
func keepPlaceholder(plan *Plan, pool []*discovery.EndpointSlice, opts Options) []*discovery.EndpointSlice {
	for i, s := range pool {
		if s.AddressType == opts.AddressType && len(s.Endpoints) == 0 && len(s.Ports) == 0 && metaMatches(s, opts.Meta) {
			return append(pool[:i:i], pool[i+1:]...)
		}
	}
	for i, s := range pool {
		if s.AddressType == opts.AddressType {
			plan.Update = append(plan.Update, rewrite(s, opts, nil, nil))
			return append(pool[:i:i], pool[i+1:]...)
		}
	}
	plan.Create = append(plan.Create, newSlice(opts, nil, nil))
	return pool
}

func newSlice(opts Options, ports []discovery.EndpointPort, eps []discovery.Endpoint) *discovery.EndpointSlice {
	s := &discovery.EndpointSlice{AddressType: opts.AddressType}
	opts.Meta.DeepCopyInto(&s.ObjectMeta)
	s.Ports = copyPorts(ports)
	s.Endpoints = sortedEndpoints(eps)
	return s
}

func rewrite(existing *discovery.EndpointSlice, opts Options, ports []discovery.EndpointPort, eps []discovery.Endpoint) *discovery.EndpointSlice {
	s := existing.DeepCopy()
	m := opts.Meta.DeepCopy()
	s.Labels = m.Labels
	s.Annotations = m.Annotations
	s.OwnerReferences = m.OwnerReferences
	s.AddressType = opts.AddressType
	s.Ports = copyPorts(ports)
	s.Endpoints = sortedEndpoints(eps)
	return s
}

func copyPorts(ports []discovery.EndpointPort) []discovery.EndpointPort {
	if len(ports) == 0 {
		return nil
	}
	out := make([]discovery.EndpointPort, len(ports))
	for i := range ports {
		ports[i].DeepCopyInto(&out[i])
	}
	return out
}

// sortedEndpoints never returns nil: the API requires the endpoints list.
func sortedEndpoints(eps []discovery.Endpoint) []discovery.Endpoint {
	out := make([]discovery.Endpoint, len(eps))
	for i := range eps {
		eps[i].DeepCopyInto(&out[i])
	}
	sort.SliceStable(out, func(i, j int) bool { return EndpointKey(&out[i]) < EndpointKey(&out[j]) })
	return out
}

func metaMatches(s *discovery.EndpointSlice, want metav1.ObjectMeta) bool {
	return maps.Equal(s.Labels, want.Labels) &&
		maps.Equal(s.Annotations, want.Annotations) &&
		apiequality.Semantic.DeepEqual(normRefs(s.OwnerReferences), normRefs(want.OwnerReferences))
}

func normRefs(r []metav1.OwnerReference) []metav1.OwnerReference {
	if len(r) == 0 {
		return nil
	}
	return r
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefInt(p *int32) string {
	if p == nil {
		return ""
	}
	return fmt.Sprint(*p)
}

func derefProto(p *v1.Protocol) string {
	if p == nil || *p == "" {
		return string(v1.ProtocolTCP)
	}
	return string(*p)
}
