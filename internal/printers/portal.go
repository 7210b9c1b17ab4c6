package printers

import (
	"math"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	portalv1 "github.com/portal-net/portal/internal/api/portal/v1"
)

// AddressPoolTable prints portal.dev/v1 AddressPools:
//
//	NAME      ADDRESSES                   AUTO ASSIGN   ASSIGNED   AVAILABLE   AGE
//	default   192.0.2.192/27              true          2          28          5m
//	lab       192.0.2.10-192.0.2.20,...   false         0          11+many     1m
func AddressPoolTable() *TableConvertor {
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Addresses", Type: "string", Description: "CIDRs and first-last ranges of the pool."},
		{Name: "Auto Assign", Type: "string", Description: "Whether any admitted Service may get an address without asking for the pool."},
		{Name: "Assigned", Type: "integer", Description: "Addresses held by Services."},
		{Name: "Available", Type: "string", Description: "Free IPv4 addresses, then +free IPv6 addresses when there are any."},
		{Name: "Namespace Selector", Type: "string", Priority: 1, Description: "Namespaces whose Services the pool admits."},
		{Name: "Service Selector", Type: "string", Priority: 1, Description: "Services the pool admits."},
		ageColumn,
	}, RowOf(func(p *portalv1.AddressPool, now time.Time) ([]interface{}, error) {
		auto := strconv.FormatBool(p.Spec.AutoAssign == nil || *p.Spec.AutoAssign)
		avail := strconv.FormatInt(p.Status.AvailableIPv4, 10)
		switch v6 := p.Status.AvailableIPv6; {
		case v6 == math.MaxInt64:
			avail += "+many"
		case v6 > 0:
			avail += "+" + strconv.FormatInt(v6, 10)
		}
		return []interface{}{p.Name, strings.Join(p.Spec.Addresses, ","), auto, p.Status.Assigned, avail,
			selectorString(p.Spec.NamespaceSelector), selectorString(p.Spec.ServiceSelector), since(p.CreationTimestamp, now)}, nil
	}))
}

// selectorString prints an optional selector; absent selects everything.
func selectorString(ls *metav1.LabelSelector) string {
	if ls == nil {
		return "<all>"
	}
	return metav1.FormatLabelSelector(ls)
}
