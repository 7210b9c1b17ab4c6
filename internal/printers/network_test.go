package printers

import (
	"math"

	"testing"
	"time"

	portalv1 "github.com/portal-net/portal/internal/api/portal/v1"

	coordinationv1 "k8s.io/api/coordination/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestEndpointSliceRows(t *testing.T) {
	assertColumns(t, EndpointSliceTable(), []col{{"Name", 0}, {"AddressType", 0}, {"Ports", 0}, {"Endpoints", 0}, {"Age", 0}})
	slice := func(ports []discoveryv1.EndpointPort, endpoints ...[]string) *discoveryv1.EndpointSlice {
		s := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: "web-abc12", CreationTimestamp: ago(7 * time.Minute)},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       ports,
		}
		for _, addrs := range endpoints {
			s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: addrs})
		}
		return s
	}
	tests := []struct {
		name             string
		obj              *discoveryv1.EndpointSlice
		ports, endpoints string
	}{
		{
			name:  "two ports, two endpoints",
			obj:   slice([]discoveryv1.EndpointPort{{Port: ptrTo[int32](9376)}, {Port: ptrTo[int32](80)}}, []string{"10.1.2.3"}, []string{"10.1.2.4"}),
			ports: "9376,80", endpoints: "10.1.2.3,10.1.2.4",
		},
		{
			name:  "no ports or endpoints are unset",
			obj:   slice(nil),
			ports: "<unset>", endpoints: "<unset>",
		},
		{
			name: "named and all-ports entries, truncation after 3",
			obj: slice([]discoveryv1.EndpointPort{{Name: ptrTo("http")}, {}, {Port: ptrTo[int32](1)}, {Port: ptrTo[int32](2)}},
				[]string{"10.0.0.1", "10.0.0.2"}, []string{"10.0.0.3"}, []string{"10.0.0.4"}, []string{"10.0.0.5"}),
			ports: "http,*,1 + 1 more...", endpoints: "10.0.0.1,10.0.0.2,10.0.0.3 + 2 more...",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertCells(t, cells(t, EndpointSliceTable(), tt.obj), []interface{}{"web-abc12", "IPv4", tt.ports, tt.endpoints, "7m"})
		})
	}
}

func TestLeaseRows(t *testing.T) {
	assertColumns(t, LeaseTable(), []col{{"Name", 0}, {"Holder", 0}, {"Age", 0}})
	held := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-scheduler", CreationTimestamp: ago(7 * time.Minute)},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptrTo("portal-0_1b2c")},
	}
	assertCells(t, cells(t, LeaseTable(), held), []interface{}{"kube-scheduler", "portal-0_1b2c", "7m"})
	free := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "free", CreationTimestamp: ago(7 * time.Minute)}}
	assertCells(t, cells(t, LeaseTable(), free), []interface{}{"free", "", "7m"})
}

func TestServiceCIDRRows(t *testing.T) {
	assertColumns(t, ServiceCIDRTable(), []col{{"Name", 0}, {"CIDRs", 0}, {"Age", 0}})
	c := &networkingv1.ServiceCIDR{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", CreationTimestamp: ago(7 * time.Minute)},
		Spec:       networkingv1.ServiceCIDRSpec{CIDRs: []string{"10.96.0.0/12", "fd00:10:96::/112"}},
	}
	assertCells(t, cells(t, ServiceCIDRTable(), c), []interface{}{"kubernetes", "10.96.0.0/12,fd00:10:96::/112", "7m"})
}

func TestIPAddressRows(t *testing.T) {
	assertColumns(t, IPAddressTable(), []col{{"Name", 0}, {"ParentRef", 0}, {"Age", 0}})
	ip := func(ref *networkingv1.ParentReference) *networkingv1.IPAddress {
		return &networkingv1.IPAddress{
			ObjectMeta: metav1.ObjectMeta{Name: "10.96.0.1", CreationTimestamp: ago(7 * time.Minute)},
			Spec:       networkingv1.IPAddressSpec{ParentRef: ref},
		}
	}
	tests := []struct {
		name string
		obj  *networkingv1.IPAddress
		want string
	}{
		{"service", ip(&networkingv1.ParentReference{Resource: "services", Namespace: "default", Name: "kubernetes"}), "services/default/kubernetes"},
		{"grouped cluster-scoped parent", ip(&networkingv1.ParentReference{Group: "gateway.networking.k8s.io", Resource: "Gateways", Name: "gw"}), "gateways.gateway.networking.k8s.io/gw"},
		{"no parent", ip(nil), "<none>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertCells(t, cells(t, IPAddressTable(), tt.obj), []interface{}{"10.96.0.1", tt.want, "7m"})
		})
	}
}

func TestAddressPoolRows(t *testing.T) {
	assertColumns(t, AddressPoolTable(), []col{{"Name", 0}, {"Addresses", 0}, {"Auto Assign", 0}, {"Assigned", 0}, {"Available", 0},
		{"Namespace Selector", 1}, {"Service Selector", 1}, {"Age", 0}})
	no := false
	p := &portalv1.AddressPool{
		ObjectMeta: metav1.ObjectMeta{Name: "default", CreationTimestamp: ago(5 * time.Minute)},
		Spec:       portalv1.AddressPoolSpec{Addresses: []string{"192.0.2.192/27"}},
		Status:     portalv1.AddressPoolStatus{Assigned: 2, AvailableIPv4: 28},
	}
	assertCells(t, cells(t, AddressPoolTable(), p), []interface{}{"default", "192.0.2.192/27", "true", int64(2), "28", "<all>", "<all>", "5m"})
	p.Spec = portalv1.AddressPoolSpec{Addresses: []string{"192.0.2.10-192.0.2.20", "2001:db8::/64"}, AutoAssign: &no,
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "blue"}}}
	p.Status = portalv1.AddressPoolStatus{AvailableIPv4: 11, AvailableIPv6: math.MaxInt64}
	assertCells(t, cells(t, AddressPoolTable(), p), []interface{}{"default", "192.0.2.10-192.0.2.20,2001:db8::/64", "false", int64(0), "11+many", "team=blue", "<all>", "5m"})
}
