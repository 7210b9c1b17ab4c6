package printers

import (
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// EndpointSliceTable prints discovery/v1 EndpointSlices.
func EndpointSliceTable() *TableConvertor {
	doc := discoveryv1.EndpointSlice{}.SwaggerDoc()
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "AddressType", Type: "string", Description: doc["addressType"]},
		{Name: "Ports", Type: "string", Description: doc["ports"]},
		{Name: "Endpoints", Type: "string", Description: doc["endpoints"]},
		ageColumn,
	}, RowOf(func(s *discoveryv1.EndpointSlice, now time.Time) ([]interface{}, error) {
		return []interface{}{
			s.Name, string(s.AddressType), slicePorts(s.Ports), sliceEndpoints(s.Endpoints), since(s.CreationTimestamp, now),
		}, nil
	}))
}

// slicePorts shows each port's number, else its name, else "*" (a nil port
// means "all ports").
func slicePorts(ports []discoveryv1.EndpointPort) string {
	var shown []string
	for _, p := range ports {
		if len(shown) == listCellMax {
			break
		}
		s := "*"
		switch {
		case p.Port != nil:
			s = strconv.Itoa(int(*p.Port))
		case p.Name != nil:
			s = *p.Name
		}
		shown = append(shown, s)
	}
	return truncatedList(shown, len(ports))
}

func sliceEndpoints(endpoints []discoveryv1.Endpoint) string {
	var shown []string
	total := 0
	for _, ep := range endpoints {
		for _, a := range ep.Addresses {
			total++
			if len(shown) < listCellMax {
				shown = append(shown, a)
			}
		}
	}
	return truncatedList(shown, total)
}

// LeaseTable prints coordination/v1 Leases.
func LeaseTable() *TableConvertor {
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Holder", Type: "string", Description: coordinationv1.LeaseSpec{}.SwaggerDoc()["holderIdentity"]},
		ageColumn,
	}, RowOf(func(l *coordinationv1.Lease, now time.Time) ([]interface{}, error) {
		holder := ""
		if l.Spec.HolderIdentity != nil {
			holder = *l.Spec.HolderIdentity
		}
		return []interface{}{l.Name, holder, since(l.CreationTimestamp, now)}, nil
	}))
}

// ServiceCIDRTable prints networking/v1 ServiceCIDRs.
func ServiceCIDRTable() *TableConvertor {
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "CIDRs", Type: "string", Description: networkingv1.ServiceCIDRSpec{}.SwaggerDoc()["cidrs"]},
		ageColumn,
	}, RowOf(func(c *networkingv1.ServiceCIDR, now time.Time) ([]interface{}, error) {
		return []interface{}{c.Name, strings.Join(c.Spec.CIDRs, ","), since(c.CreationTimestamp, now)}, nil
	}))
}

// IPAddressTable prints networking/v1 IPAddresses; PARENTREF reads
// "resource[.group]/[namespace/]name", e.g. "services/default/kubernetes".
func IPAddressTable() *TableConvertor {
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "ParentRef", Type: "string", Description: networkingv1.IPAddressSpec{}.SwaggerDoc()["parentRef"]},
		ageColumn,
	}, RowOf(func(ip *networkingv1.IPAddress, now time.Time) ([]interface{}, error) {
		parent := none
		if ref := ip.Spec.ParentRef; ref != nil {
			parent = strings.ToLower(schema.GroupResource{Group: ref.Group, Resource: ref.Resource}.String())
			if ref.Namespace != "" {
				parent += "/" + ref.Namespace
			}
			parent += "/" + ref.Name
		}
		return []interface{}{ip.Name, parent, since(ip.CreationTimestamp, now)}, nil
	}))
}
