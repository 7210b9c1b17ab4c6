// Package quota computes what objects consume of a ResourceQuota, as
// Kubernetes' quota evaluators do: the resourcequota controller sums it
// over a namespace and the API server's quota admission adds the usage of
// an object being created.
package quota

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
)

// storageClassSuffix qualifies per-class PersistentVolumeClaim quotas
// ("gold.storageclass.storage.k8s.io/requests.storage").
const storageClassSuffix = ".storageclass.storage.k8s.io/"

// Resource is the plural resource name of an object quota can count, or
// "" for objects it does not count.
func Resource(obj runtime.Object) string {
	switch obj.(type) {
	case *corev1.Pod:
		return "pods"
	case *corev1.Service:
		return "services"
	case *corev1.ConfigMap:
		return "configmaps"
	case *corev1.Secret:
		return "secrets"
	case *corev1.ReplicationController:
		return "replicationcontrollers"
	case *corev1.ResourceQuota:
		return "resourcequotas"
	case *corev1.PersistentVolumeClaim:
		return "persistentvolumeclaims"
	}
	return ""
}

// PodCounts says whether a pod is charged to quota: terminal pods are not,
// nor pods whose deletion grace period has passed (a lost node must not
// keep its pods charged and block replacements).
func PodCounts(p *corev1.Pod, now time.Time) bool {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return false
	}
	if p.DeletionTimestamp != nil && p.DeletionGracePeriodSeconds != nil {
		end := p.DeletionTimestamp.Add(time.Duration(*p.DeletionGracePeriodSeconds) * time.Second)
		if now.After(end) {
			return false
		}
	}
	return true
}

// Usage is what obj consumes: its object count (both the legacy name,
// "pods", and "count/pods"), and for pods their compute requests and
// limits, for services their node ports and load balancers, for claims
// their storage requests.
func Usage(obj runtime.Object, now time.Time) corev1.ResourceList {
	res := Resource(obj)
	if res == "" {
		return nil
	}
	out := corev1.ResourceList{}
	one := func(name string) { add(out, corev1.ResourceName(name), *resource.NewQuantity(1, resource.DecimalSI)) }
	switch o := obj.(type) {
	case *corev1.Pod:
		if !PodCounts(o, now) {
			return out
		}
		podUsage(o, out)
	case *corev1.Service:
		switch o.Spec.Type {
		case corev1.ServiceTypeLoadBalancer:
			one(string(corev1.ResourceServicesLoadBalancers))
			if o.Spec.AllocateLoadBalancerNodePorts != nil && !*o.Spec.AllocateLoadBalancerNodePorts {
				break
			}
			for range o.Spec.Ports {
				one(string(corev1.ResourceServicesNodePorts))
			}
		case corev1.ServiceTypeNodePort:
			for range o.Spec.Ports {
				one(string(corev1.ResourceServicesNodePorts))
			}
		}
	case *corev1.PersistentVolumeClaim:
		class := ""
		if o.Spec.StorageClassName != nil {
			class = *o.Spec.StorageClassName
		}
		if class != "" {
			one(class + storageClassSuffix + "persistentvolumeclaims")
		}
		if q, ok := o.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
			add(out, corev1.ResourceRequestsStorage, q)
			if class != "" {
				add(out, corev1.ResourceName(class+storageClassSuffix+string(corev1.ResourceRequestsStorage)), q)
			}
		}
	}
	one(res)
	one("count/" + res)
	return out
}

// podUsage adds a pod's count and its effective requests and limits: the
// larger of the containers' sum and any single init container, plus the
// pod overhead, as the scheduler sees them.
func podUsage(p *corev1.Pod, out corev1.ResourceList) {
	requests := effective(p, func(c *corev1.Container) corev1.ResourceList { return c.Resources.Requests })
	limits := effective(p, func(c *corev1.Container) corev1.ResourceList { return c.Resources.Limits })
	for name, q := range requests {
		switch {
		case name == corev1.ResourceCPU || name == corev1.ResourceMemory || name == corev1.ResourceEphemeralStorage:
			add(out, name, q)
			add(out, "requests."+name, q)
		default: // hugepages-*, extended resources
			add(out, "requests."+name, q)
		}
	}
	for name, q := range limits {
		if name == corev1.ResourceCPU || name == corev1.ResourceMemory || name == corev1.ResourceEphemeralStorage {
			add(out, "limits."+name, q)
		}
	}
}

func effective(p *corev1.Pod, of func(*corev1.Container) corev1.ResourceList) corev1.ResourceList {
	sum := corev1.ResourceList{}
	for i := range p.Spec.Containers {
		for name, q := range of(&p.Spec.Containers[i]) {
			add(sum, name, q)
		}
	}
	for i := range p.Spec.InitContainers {
		for name, q := range of(&p.Spec.InitContainers[i]) {
			if cur, ok := sum[name]; !ok || q.Cmp(cur) > 0 {
				sum[name] = q.DeepCopy()
			}
		}
	}
	for name, q := range p.Spec.Overhead {
		if _, ok := sum[name]; ok {
			add(sum, name, q)
		}
	}
	return sum
}

func add(l corev1.ResourceList, name corev1.ResourceName, q resource.Quantity) {
	cur, ok := l[name]
	if !ok {
		l[name] = q.DeepCopy()
		return
	}
	cur.Add(q)
	l[name] = cur
}

// Add returns a + b.
func Add(a, b corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for n, q := range a {
		add(out, n, q)
	}
	for n, q := range b {
		add(out, n, q)
	}
	return out
}

// Mask keeps the entries of l named in names.
func Mask(l, names corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for n, q := range l {
		if _, ok := names[n]; ok {
			out[n] = q.DeepCopy()
		}
	}
	return out
}

// Matches says whether quota q applies to obj. Scoped quotas only apply
// to pods; a pod must match every scope and scope selector term.
func Matches(q *corev1.ResourceQuota, obj runtime.Object) bool {
	var reqs []corev1.ScopedResourceSelectorRequirement
	for _, s := range q.Spec.Scopes {
		reqs = append(reqs, corev1.ScopedResourceSelectorRequirement{ScopeName: s, Operator: corev1.ScopeSelectorOpExists})
	}
	if q.Spec.ScopeSelector != nil {
		reqs = append(reqs, q.Spec.ScopeSelector.MatchExpressions...)
	}
	if len(reqs) == 0 {
		return true
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return false
	}
	for _, r := range reqs {
		if !podMatchesScope(p, r) {
			return false
		}
	}
	return true
}

func podMatchesScope(p *corev1.Pod, r corev1.ScopedResourceSelectorRequirement) bool {
	switch r.ScopeName {
	case corev1.ResourceQuotaScopeTerminating:
		return p.Spec.ActiveDeadlineSeconds != nil && *p.Spec.ActiveDeadlineSeconds >= 0
	case corev1.ResourceQuotaScopeNotTerminating:
		return p.Spec.ActiveDeadlineSeconds == nil || *p.Spec.ActiveDeadlineSeconds < 0
	case corev1.ResourceQuotaScopeBestEffort:
		return bestEffort(p)
	case corev1.ResourceQuotaScopeNotBestEffort:
		return !bestEffort(p)
	case corev1.ResourceQuotaScopeCrossNamespacePodAffinity:
		return crossNamespaceAffinity(p)
	case corev1.ResourceQuotaScopePriorityClass:
		has := false
		for _, v := range r.Values {
			has = has || v == p.Spec.PriorityClassName
		}
		switch r.Operator {
		case corev1.ScopeSelectorOpExists:
			return true
		case corev1.ScopeSelectorOpDoesNotExist:
			return false
		case corev1.ScopeSelectorOpIn:
			return has
		case corev1.ScopeSelectorOpNotIn:
			return !has
		}
	}
	return false
}

func bestEffort(p *corev1.Pod) bool {
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			for _, l := range []corev1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
				if !l.Cpu().IsZero() || !l.Memory().IsZero() {
					return false
				}
			}
		}
	}
	return true
}

func crossNamespaceAffinity(p *corev1.Pod) bool {
	a := p.Spec.Affinity
	if a == nil {
		return false
	}
	var terms []corev1.PodAffinityTerm
	if a.PodAffinity != nil {
		terms = append(terms, a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution...)
		for _, w := range a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			terms = append(terms, w.PodAffinityTerm)
		}
	}
	if a.PodAntiAffinity != nil {
		terms = append(terms, a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution...)
		for _, w := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			terms = append(terms, w.PodAffinityTerm)
		}
	}
	for _, t := range terms {
		if len(t.Namespaces) > 0 || t.NamespaceSelector != nil {
			return true
		}
	}
	return false
}

// Exceeded checks adding delta to the quota's status: it returns the new
// usage, or the upstream "exceeded quota" message naming every resource
// over its hard limit. Only resources in status.hard are charged; a
// resource without a recorded usage counts from zero.
func Exceeded(q *corev1.ResourceQuota, delta corev1.ResourceList) (corev1.ResourceList, string) {
	requested := Mask(delta, q.Status.Hard)
	used := Add(q.Status.Used, requested)
	var over []corev1.ResourceName
	for n, req := range requested {
		if req.Sign() <= 0 {
			continue
		}
		if u := used[n]; u.Cmp(q.Status.Hard[n]) > 0 {
			over = append(over, n)
		}
	}
	if len(over) == 0 {
		return used, ""
	}
	pick := func(l corev1.ResourceList) corev1.ResourceList {
		out := corev1.ResourceList{}
		for _, n := range over {
			if v, ok := l[n]; ok {
				out[n] = v
			} else {
				out[n] = *resource.NewQuantity(0, resource.DecimalSI)
			}
		}
		return out
	}
	return nil, fmt.Sprintf("exceeded quota: %s, requested: %s, used: %s, limited: %s",
		q.Name, String(pick(requested)), String(pick(q.Status.Used)), String(pick(q.Status.Hard)))
}

// String prints a list as upstream does: "cpu=1,pods=2", sorted by name.
func String(l corev1.ResourceList) string {
	parts := make([]string, 0, len(l))
	for n, q := range l {
		parts = append(parts, string(n)+"="+q.String())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
