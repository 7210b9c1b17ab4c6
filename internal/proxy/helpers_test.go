package proxy

import (
	"net/netip"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func nsn(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: "ns", Name: name}
}

func spn(svc, port string, proto v1.Protocol) ServicePortName {
	return ServicePortName{NamespacedName: nsn(svc), Port: port, Protocol: proto}
}

// svc builds a ClusterIP service "ns/name" with the given ports; mods
// adjust it.
func svc(name, ip string, ports []v1.ServicePort, mods ...func(*v1.Service)) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec:       v1.ServiceSpec{Type: v1.ServiceTypeClusterIP, ClusterIP: ip, ClusterIPs: []string{ip}, Ports: ports},
	}
	for _, m := range mods {
		m(s)
	}
	return s
}

func port(name string, p int32, proto v1.Protocol) v1.ServicePort {
	return v1.ServicePort{Name: name, Port: p, Protocol: proto}
}

type sliceEP struct {
	ip                          string
	node, zone                  string
	ready, serving, terminating *bool
	zoneHints, nodeHints        []string
}

func ep(ip, node, zone string) sliceEP { return sliceEP{ip: ip, node: node, zone: zone} }

func (e sliceEP) notReady() sliceEP { e.ready = ptr.To(false); e.serving = ptr.To(false); return e }
func (e sliceEP) term(serving bool) sliceEP {
	e.ready, e.serving, e.terminating = ptr.To(false), ptr.To(serving), ptr.To(true)
	return e
}

type slicePortSpec struct {
	name  string
	port  int32
	proto v1.Protocol
}

func slice(name, service string, ports []slicePortSpec, eps ...sliceEP) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for _, p := range ports {
		sp := discoveryv1.EndpointPort{Name: ptr.To(p.name), Port: ptr.To(p.port)}
		if p.proto != "" {
			sp.Protocol = ptr.To(p.proto)
		}
		s.Ports = append(s.Ports, sp)
	}
	for _, e := range eps {
		de := discoveryv1.Endpoint{
			Addresses:  []string{e.ip},
			Conditions: discoveryv1.EndpointConditions{Ready: e.ready, Serving: e.serving, Terminating: e.terminating},
		}
		if e.node != "" {
			de.NodeName = ptr.To(e.node)
		}
		if e.zone != "" {
			de.Zone = ptr.To(e.zone)
		}
		if e.zoneHints != nil || e.nodeHints != nil {
			de.Hints = &discoveryv1.EndpointHints{}
			for _, z := range e.zoneHints {
				de.Hints.ForZones = append(de.Hints.ForZones, discoveryv1.ForZone{Name: z})
			}
			for _, n := range e.nodeHints {
				de.Hints.ForNodes = append(de.Hints.ForNodes, discoveryv1.ForNode{Name: n})
			}
		}
		s.Endpoints = append(s.Endpoints, de)
	}
	return s
}

func addr(t testing.TB, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// epStrings renders endpoints as "ip:port" for compact assertions.
func epStrings(eps []Endpoint) []string {
	var out []string
	for _, e := range eps {
		out = append(out, e.String())
	}
	return out
}
