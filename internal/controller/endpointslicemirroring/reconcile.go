package endpointslicemirroring

import (
	"net/netip"

	"github.com/portal-net/portal/internal/controller/internal/slicepack"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// ControllerName is the managed-by label value of mirrored slices.
	ControllerName = "endpointslicemirroring-controller.k8s.io"
	// DefaultMaxEndpointsPerSubset caps mirrored addresses per subset and
	// endpoints per mirrored slice, as upstream's default.
	DefaultMaxEndpointsPerSubset = 1000
	// leaderAnnotation marks Endpoints used as leader-election locks, which
	// are not real endpoints.
	leaderAnnotation = "control-plane.alpha.kubernetes.io/leader"
)

// Plan is the set of slice writes for one Endpoints object.
type Plan = slicepack.Plan

// ShouldMirror reports whether ep (named after svc) is to be mirrored.
func ShouldMirror(svc *v1.Service, ep *v1.Endpoints) bool {
	if svc == nil || ep == nil || svc.Spec.Selector != nil || svc.DeletionTimestamp != nil {
		return false
	}
	if ep.Labels[discovery.LabelSkipMirror] == "true" {
		return false
	}
	_, leader := ep.Annotations[leaderAnnotation]
	return !leader
}

// Reconcile computes the slice writes that mirror ep. svc or ep may be nil
// (deleted); existing are the slices this controller manages for the name.
func Reconcile(svc *v1.Service, ep *v1.Endpoints, existing []*discovery.EndpointSlice, maxPerSubset int) Plan {
	if maxPerSubset < 1 {
		maxPerSubset = DefaultMaxEndpointsPerSubset
	}
	if !ShouldMirror(svc, ep) {
		return Plan{Delete: existing}
	}
	v4, v6 := groups(ep, maxPerSubset)
	var old4, old6 []*discovery.EndpointSlice
	for _, s := range existing {
		if s.AddressType == discovery.AddressTypeIPv6 {
			old6 = append(old6, s)
		} else {
			old4 = append(old4, s)
		}
	}
	meta := sliceMeta(ep)
	p4 := slicepack.Pack(v4, old4, slicepack.Options{AddressType: discovery.AddressTypeIPv4, MaxPerSlice: maxPerSubset, Meta: meta})
	p6 := slicepack.Pack(v6, old6, slicepack.Options{AddressType: discovery.AddressTypeIPv6, MaxPerSlice: maxPerSubset, Meta: meta})
	return Plan{
		Create: append(p4.Create, p6.Create...),
		Update: append(p4.Update, p6.Update...),
		Delete: append(p4.Delete, p6.Delete...),
	}
}

// groups converts subsets into per-family endpoint groups. Addresses that
// are not IPs (the Endpoints API is loosely validated) cannot be mirrored.
func groups(ep *v1.Endpoints, maxPerSubset int) (v4, v6 []slicepack.Group) {
	for _, ss := range ep.Subsets {
		ports := make([]discovery.EndpointPort, 0, len(ss.Ports))
		for _, p := range ss.Ports {
			name, port, proto := p.Name, p.Port, p.Protocol
			if proto == "" {
				proto = v1.ProtocolTCP
			}
			dp := discovery.EndpointPort{Name: &name, Port: &port, Protocol: &proto}
			if p.AppProtocol != nil {
				ap := *p.AppProtocol
				dp.AppProtocol = &ap
			}
			ports = append(ports, dp)
		}
		g4 := slicepack.Group{Ports: ports}
		g6 := slicepack.Group{Ports: ports}
		n := 0
		add := func(addrs []v1.EndpointAddress, ready bool) {
			for _, a := range addrs {
				if n >= maxPerSubset {
					return
				}
				ip, err := netip.ParseAddr(a.IP)
				if err != nil {
					continue
				}
				n++
				e := toEndpoint(a, ip.String(), ready)
				if ip.Is4() {
					g4.Endpoints = append(g4.Endpoints, e)
				} else {
					g6.Endpoints = append(g6.Endpoints, e)
				}
			}
		}
		add(ss.Addresses, true)
		add(ss.NotReadyAddresses, false)
		v4 = append(v4, g4)
		v6 = append(v6, g6)
	}
	return v4, v6
}

func toEndpoint(a v1.EndpointAddress, ip string, ready bool) discovery.Endpoint {
	e := discovery.Endpoint{Addresses: []string{ip}, Conditions: discovery.EndpointConditions{Ready: &ready}}
	if a.Hostname != "" {
		h := a.Hostname
		e.Hostname = &h
	}
	if a.NodeName != nil && *a.NodeName != "" {
		n := *a.NodeName
		e.NodeName = &n
	}
	if a.TargetRef != nil {
		e.TargetRef = a.TargetRef.DeepCopy()
	}
	return e
}

// sliceMeta carries the Endpoints' labels and annotations over (minus the
// ones describing the Endpoints object itself) and makes the Endpoints the
// controlling owner, so deleting it garbage-collects the mirrors.
func sliceMeta(ep *v1.Endpoints) metav1.ObjectMeta {
	labels := map[string]string{}
	for k, v := range ep.Labels {
		labels[k] = v
	}
	labels[discovery.LabelServiceName] = ep.Name
	labels[discovery.LabelManagedBy] = ControllerName
	var ann map[string]string
	for k, v := range ep.Annotations {
		if k == v1.EndpointsLastChangeTriggerTime || k == v1.LastAppliedConfigAnnotation {
			continue
		}
		if ann == nil {
			ann = map[string]string{}
		}
		ann[k] = v
	}
	return metav1.ObjectMeta{
		Namespace:       ep.Namespace,
		GenerateName:    ep.Name + "-",
		Labels:          labels,
		Annotations:     ann,
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ep, v1.SchemeGroupVersion.WithKind("Endpoints"))},
	}
}
