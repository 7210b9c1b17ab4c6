package endpointslice

import (
	"github.com/portal-net/portal/internal/controller/internal/podutil"
	"github.com/portal-net/portal/internal/controller/internal/slicepack"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// ControllerName is the managed-by label value of slices this controller owns.
	ControllerName = "endpointslice-controller.k8s.io"
	// DefaultMaxEndpointsPerSlice matches kube-controller-manager's default.
	DefaultMaxEndpointsPerSlice = 100
)

// Plan is the set of writes for one Service.
type Plan = slicepack.Plan

// Input is everything Reconcile needs about one Service.
type Input struct {
	Service *v1.Service
	// Pods are the pods matched by the Service's selector in its namespace;
	// Reconcile itself drops those that cannot serve.
	Pods []*v1.Pod
	// NodeZones maps node name to its topology.kubernetes.io/zone label.
	NodeZones map[string]string
	// Existing are the slices this controller manages for the Service.
	Existing             []*discovery.EndpointSlice
	MaxEndpointsPerSlice int
}

// Reconcile computes the plan that brings Existing to the desired slices.
func Reconcile(in Input) Plan {
	return slicepack.Pack(DesiredGroups(in.Service, in.Pods, in.NodeZones), in.Existing, slicepack.Options{
		AddressType: discovery.AddressTypeIPv4,
		MaxPerSlice: in.MaxEndpointsPerSlice,
		Placeholder: true,
		Meta:        SliceMeta(in.Service),
	})
}

// DesiredGroups turns pods into endpoints grouped by their resolved port set.
// Pods resolving a named targetPort to different numbers land in different
// groups, and hence different slices.
func DesiredGroups(svc *v1.Service, pods []*v1.Pod, zones map[string]string) []slicepack.Group {
	byKey := map[string]int{}
	var groups []slicepack.Group
	for _, pod := range pods {
		if !podutil.Included(pod, true) {
			continue
		}
		ip := podutil.IPv4(pod)
		if ip == "" {
			continue
		}
		ports := endpointPorts(svc, pod)
		if len(svc.Spec.Ports) > 0 && len(ports) == 0 {
			// None of the service's ports exist on this pod: it cannot
			// serve the Service at all.
			continue
		}
		ep := podEndpoint(svc, pod, ip, zones)
		pk := slicepack.PortKey(ports)
		i, ok := byKey[pk]
		if !ok {
			i = len(groups)
			byKey[pk] = i
			groups = append(groups, slicepack.Group{Ports: ports})
		}
		groups[i].Endpoints = append(groups[i].Endpoints, ep)
	}
	return groups
}

func endpointPorts(svc *v1.Service, pod *v1.Pod) []discovery.EndpointPort {
	var out []discovery.EndpointPort
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		num, err := podutil.FindPort(pod, sp)
		if err != nil {
			continue
		}
		name := sp.Name
		proto := podutil.Protocol(sp.Protocol)
		p := discovery.EndpointPort{Name: &name, Port: &num, Protocol: &proto}
		if sp.AppProtocol != nil {
			ap := *sp.AppProtocol
			p.AppProtocol = &ap
		}
		out = append(out, p)
	}
	return out
}

func podEndpoint(svc *v1.Service, pod *v1.Pod, ip string, zones map[string]string) discovery.Endpoint {
	serving := podutil.Ready(pod)
	terminating := pod.DeletionTimestamp != nil
	// A terminating pod is never "ready" so old clients drain it, unless the
	// Service asked for every address to be published.
	ready := svc.Spec.PublishNotReadyAddresses || (serving && !terminating)
	ep := discovery.Endpoint{
		Addresses:  []string{ip},
		Conditions: discovery.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
		TargetRef:  &v1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
	}
	if n := pod.Spec.NodeName; n != "" {
		ep.NodeName = &n
		if z := zones[n]; z != "" {
			ep.Zone = &z
		}
	}
	if podutil.ShouldSetHostname(pod, svc) {
		h := pod.Spec.Hostname
		ep.Hostname = &h
	}
	return ep
}

// SliceMeta is the metadata every slice of svc carries. Service labels are
// propagated so selectors on slices can follow the Service's own labels.
func SliceMeta(svc *v1.Service) metav1.ObjectMeta {
	labels := map[string]string{}
	for k, v := range svc.Labels {
		labels[k] = v
	}
	delete(labels, discovery.LabelServiceName)
	delete(labels, discovery.LabelManagedBy)
	if svc.Spec.ClusterIP == v1.ClusterIPNone {
		labels[v1.IsHeadlessService] = ""
	} else {
		delete(labels, v1.IsHeadlessService)
	}
	labels[discovery.LabelServiceName] = svc.Name
	labels[discovery.LabelManagedBy] = ControllerName
	return metav1.ObjectMeta{
		Namespace:       svc.Namespace,
		GenerateName:    svc.Name + "-",
		Labels:          labels,
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(svc, v1.SchemeGroupVersion.WithKind("Service"))},
	}
}
