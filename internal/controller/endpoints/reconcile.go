package endpoints

import (
	"maps"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/portal-net/portal/internal/controller/internal/podutil"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// MaxCapacity is the most addresses one Endpoints object carries; more
	// are truncated, as upstream, because huge Endpoints objects hurt every
	// watcher. EndpointSlices have no such limit.
	MaxCapacity = 1000
	// OverCapacityAnnotation marks a truncated Endpoints object.
	OverCapacityAnnotation = "endpoints.kubernetes.io/over-capacity"
	truncated              = "truncated"
)

// Action says which write Reconcile wants.
type Action int

const (
	// ActionNone means the existing object is already right.
	ActionNone Action = iota
	// ActionCreate means the Endpoints object does not exist yet.
	ActionCreate
	// ActionUpdate means the existing object must be replaced.
	ActionUpdate
)

func (a Action) String() string {
	return [...]string{"none", "create", "update"}[a]
}

// Reconcile computes the Endpoints object svc should have given the pods
// its selector matches. existing may be nil. The returned object is ready to
// send (resourceVersion kept on update) and nil for ActionNone.
func Reconcile(svc *v1.Service, pods []*v1.Pod, existing *v1.Endpoints) (*v1.Endpoints, Action) {
	subsets, over := DesiredSubsets(svc, pods)
	labels := desiredLabels(svc)
	if existing != nil && (existing.Annotations[OverCapacityAnnotation] == truncated) == over &&
		maps.Equal(existing.Labels, labels) &&
		apiequality.Semantic.DeepEqual(canonical(existing.Subsets), subsets) {
		return nil, ActionNone
	}
	action := ActionUpdate
	var ep *v1.Endpoints
	if existing == nil {
		action = ActionCreate
		ep = &v1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace}}
	} else {
		ep = existing.DeepCopy()
	}
	ep.Labels = labels
	ann := map[string]string{}
	for k, v := range ep.Annotations {
		ann[k] = v
	}
	delete(ann, OverCapacityAnnotation)
	if over {
		ann[OverCapacityAnnotation] = truncated
	}
	if t := triggerTime(svc, pods); !t.IsZero() {
		ann[v1.EndpointsLastChangeTriggerTime] = t.UTC().Format(time.RFC3339Nano)
	}
	if len(ann) == 0 {
		ann = nil
	}
	ep.Annotations = ann
	ep.Subsets = subsets
	return ep, action
}

// DesiredSubsets groups the pods' addresses by resolved port set, sorted
// deterministically, and reports whether they had to be truncated.
func DesiredSubsets(svc *v1.Service, pods []*v1.Pod) ([]v1.EndpointSubset, bool) {
	byKey := map[string]*v1.EndpointSubset{}
	for _, pod := range pods {
		// Legacy Endpoints have no terminating condition: terminating pods
		// are dropped unless the Service wants every address published.
		if !podutil.Included(pod, svc.Spec.PublishNotReadyAddresses) {
			continue
		}
		ip := podutil.IPv4(pod)
		if ip == "" {
			continue
		}
		var ports []v1.EndpointPort
		for i := range svc.Spec.Ports {
			sp := &svc.Spec.Ports[i]
			num, err := podutil.FindPort(pod, sp)
			if err != nil {
				continue
			}
			ports = append(ports, v1.EndpointPort{Name: sp.Name, Port: num, Protocol: podutil.Protocol(sp.Protocol), AppProtocol: sp.AppProtocol})
		}
		if len(ports) == 0 && !(len(svc.Spec.Ports) == 0 && svc.Spec.ClusterIP == v1.ClusterIPNone) {
			// Only a headless service without ports lists bare addresses.
			continue
		}
		sortPorts(ports)
		k := portKey(ports)
		ss := byKey[k]
		if ss == nil {
			ss = &v1.EndpointSubset{Ports: ports}
			byKey[k] = ss
		}
		addr := v1.EndpointAddress{
			IP:        ip,
			TargetRef: &v1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		}
		if n := pod.Spec.NodeName; n != "" {
			addr.NodeName = &n
		}
		if podutil.ShouldSetHostname(pod, svc) {
			addr.Hostname = pod.Spec.Hostname
		}
		if svc.Spec.PublishNotReadyAddresses || podutil.Ready(pod) {
			ss.Addresses = append(ss.Addresses, addr)
		} else {
			ss.NotReadyAddresses = append(ss.NotReadyAddresses, addr)
		}
	}
	subsets := make([]v1.EndpointSubset, 0, len(byKey))
	for _, ss := range byKey {
		subsets = append(subsets, *ss)
	}
	subsets = canonical(subsets)
	return subsets, truncate(subsets)
}

// truncate cuts subsets down to MaxCapacity addresses, keeping ready ones
// first and sharing the cut across subsets in proportion to their size.
func truncate(subsets []v1.EndpointSubset) bool {
	ready, notReady := 0, 0
	for _, ss := range subsets {
		ready += len(ss.Addresses)
		notReady += len(ss.NotReadyAddresses)
	}
	if ready+notReady <= MaxCapacity {
		return false
	}
	cutReady := ready > MaxCapacity
	budget, total := MaxCapacity-ready, notReady
	if cutReady {
		budget, total = MaxCapacity, ready
	}
	left := budget
	for i := range subsets {
		ss := &subsets[i]
		n := len(ss.NotReadyAddresses)
		if cutReady {
			n = len(ss.Addresses)
		}
		share := left
		if i < len(subsets)-1 {
			share = (n*budget + total - 1) / total
		}
		share = min(share, left, n)
		if cutReady {
			ss.Addresses = ss.Addresses[:share]
			ss.NotReadyAddresses = nil
		} else {
			ss.NotReadyAddresses = ss.NotReadyAddresses[:share]
		}
		left -= share
	}
	return true
}

// canonical returns a sorted deep copy so order never causes a rewrite.
func canonical(in []v1.EndpointSubset) []v1.EndpointSubset {
	if len(in) == 0 {
		return nil
	}
	out := make([]v1.EndpointSubset, len(in))
	for i := range in {
		in[i].DeepCopyInto(&out[i])
		sortPorts(out[i].Ports)
		sortAddrs(out[i].Addresses)
		sortAddrs(out[i].NotReadyAddresses)
		if len(out[i].Addresses) == 0 {
			out[i].Addresses = nil
		}
		if len(out[i].NotReadyAddresses) == 0 {
			out[i].NotReadyAddresses = nil
		}
		if len(out[i].Ports) == 0 {
			out[i].Ports = nil
		}
	}
	sort.Slice(out, func(i, j int) bool { return portKey(out[i].Ports) < portKey(out[j].Ports) })
	return out
}

func sortPorts(p []v1.EndpointPort) {
	sort.Slice(p, func(i, j int) bool {
		if p[i].Name != p[j].Name {
			return p[i].Name < p[j].Name
		}
		if p[i].Port != p[j].Port {
			return p[i].Port < p[j].Port
		}
		return p[i].Protocol < p[j].Protocol
	})
}

func sortAddrs(a []v1.EndpointAddress) {
	sort.Slice(a, func(i, j int) bool {
		if a[i].IP != a[j].IP {
			return a[i].IP < a[j].IP
		}
		return refName(a[i].TargetRef) < refName(a[j].TargetRef)
	})
}

func refName(r *v1.ObjectReference) string {
	if r == nil {
		return ""
	}
	return r.Namespace + "/" + r.Name
}

func portKey(ports []v1.EndpointPort) string {
	parts := make([]string, len(ports))
	for i, p := range ports {
		ap := ""
		if p.AppProtocol != nil {
			ap = *p.AppProtocol
		}
		parts[i] = p.Name + "|" + strconv.Itoa(int(p.Port)) + "|" + string(p.Protocol) + "|" + ap
	}
	return strings.Join(parts, ",")
}

// desiredLabels copies the Service's labels and marks the object as not to
// be mirrored: its slices come from the EndpointSlice controller directly.
func desiredLabels(svc *v1.Service) map[string]string {
	l := map[string]string{}
	for k, v := range svc.Labels {
		l[k] = v
	}
	l[discovery.LabelSkipMirror] = "true"
	if svc.Spec.ClusterIP == v1.ClusterIPNone {
		l[v1.IsHeadlessService] = ""
	} else {
		delete(l, v1.IsHeadlessService)
	}
	return l
}

// triggerTime approximates upstream's last-change-trigger-time: the newest
// input change we can see without tracking history.
func triggerTime(svc *v1.Service, pods []*v1.Pod) time.Time {
	t := svc.CreationTimestamp.Time
	later := func(c metav1.Time) {
		if c.After(t) {
			t = c.Time
		}
	}
	for _, p := range pods {
		later(p.CreationTimestamp)
		if p.DeletionTimestamp != nil {
			later(*p.DeletionTimestamp)
		}
		for _, c := range p.Status.Conditions {
			if c.Type == v1.PodReady {
				later(c.LastTransitionTime)
			}
		}
	}
	return t
}
