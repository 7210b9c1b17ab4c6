package printers

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/portal-net/portal/internal/api/core"
)

var (
	serviceSpecDoc = corev1.ServiceSpec{}.SwaggerDoc()
	nodeInfoDoc    = corev1.NodeSystemInfo{}.SwaggerDoc()
	nodeStatusDoc  = corev1.NodeStatus{}.SwaggerDoc()
	eventDoc       = corev1.Event{}.SwaggerDoc()
)

// ServiceTable prints Services, both k8s.io/api's and portal's own
// core.Service (the type the API server stores).
func ServiceTable() *TableConvertor {
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Type", Type: "string", Description: serviceSpecDoc["type"]},
		{Name: "Cluster-IP", Type: "string", Description: serviceSpecDoc["clusterIP"]},
		{Name: "External-IP", Type: "string", Description: serviceSpecDoc["externalIPs"]},
		{Name: "Port(s)", Type: "string", Description: serviceSpecDoc["ports"]},
		ageColumn,
		{Name: "Selector", Type: "string", Priority: 1, Description: serviceSpecDoc["selector"]},
	},
		RowOf(serviceRow),
		RowOf(func(svc *core.Service, now time.Time) ([]interface{}, error) { return serviceRow(svc.V1(), now) }),
	)
}

func serviceRow(svc *corev1.Service, now time.Time) ([]interface{}, error) {
	clusterIP := none
	switch {
	case len(svc.Spec.ClusterIPs) > 0:
		clusterIP = svc.Spec.ClusterIPs[0]
	case svc.Spec.ClusterIP != "":
		// Objects that never went through defaulting only carry the
		// singular field.
		clusterIP = svc.Spec.ClusterIP
	}
	ports := servicePorts(svc.Spec.Ports)
	if ports == "" {
		ports = none
	}
	return []interface{}{
		svc.Name, string(svc.Spec.Type), clusterIP, serviceExternalIP(svc), ports,
		since(svc.CreationTimestamp, now), labels.FormatLabels(svc.Spec.Selector),
	}, nil
}

func serviceExternalIP(svc *corev1.Service) string {
	switch svc.Spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
		if len(svc.Spec.ExternalIPs) > 0 {
			return strings.Join(svc.Spec.ExternalIPs, ",")
		}
		return none
	case corev1.ServiceTypeLoadBalancer:
		addrs := loadBalancerAddresses(svc.Status.LoadBalancer)
		addrs = append(addrs, svc.Spec.ExternalIPs...)
		if len(addrs) == 0 {
			return "<pending>"
		}
		return strings.Join(addrs, ",")
	case corev1.ServiceTypeExternalName:
		return svc.Spec.ExternalName
	}
	return unknown
}

// loadBalancerAddresses returns the distinct ingress points, sorted, each an
// IP or else a hostname. The server always renders the wide form, so unlike
// kubectl's local printer nothing is clipped.
func loadBalancerAddresses(s corev1.LoadBalancerStatus) []string {
	seen := map[string]bool{}
	var out []string
	for _, ing := range s.Ingress {
		addr := ing.IP
		if addr == "" {
			addr = ing.Hostname
		}
		if addr != "" && !seen[addr] {
			seen[addr] = true
			out = append(out, addr)
		}
	}
	sort.Strings(out)
	return out
}

func servicePorts(ports []corev1.ServicePort) string {
	parts := make([]string, len(ports))
	for i, p := range ports {
		if p.NodePort > 0 {
			parts[i] = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
		} else {
			parts[i] = fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		}
	}
	return strings.Join(parts, ",")
}

// EndpointsTable prints core/v1 Endpoints.
func EndpointsTable() *TableConvertor {
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Endpoints", Type: "string", Description: corev1.Endpoints{}.SwaggerDoc()["subsets"]},
		ageColumn,
	}, RowOf(func(ep *corev1.Endpoints, now time.Time) ([]interface{}, error) {
		return []interface{}{ep.Name, formatEndpoints(ep), since(ep.CreationTimestamp, now)}, nil
	}))
}

// formatEndpoints lists ready addresses as ip:port (bare ip for port-less
// headless subsets), at most listCellMax of them. Like upstream, "<none>"
// means no subsets at all, while subsets holding only not-ready addresses
// print as an empty cell.
func formatEndpoints(ep *corev1.Endpoints) string {
	if len(ep.Subsets) == 0 {
		return none
	}
	var shown []string
	total := 0
	add := func(s string) {
		total++
		if len(shown) < listCellMax {
			shown = append(shown, s)
		}
	}
	for _, ss := range ep.Subsets {
		if len(ss.Ports) == 0 {
			for _, a := range ss.Addresses {
				add(a.IP)
			}
			continue
		}
		for _, p := range ss.Ports {
			for _, a := range ss.Addresses {
				add(net.JoinHostPort(a.IP, strconv.Itoa(int(p.Port))))
			}
		}
	}
	s := strings.Join(shown, ",")
	if total > len(shown) {
		return fmt.Sprintf("%s + %d more...", s, total-len(shown))
	}
	return s
}

// NodeTable prints Nodes.
func NodeTable() *TableConvertor {
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Status", Type: "string", Description: "The status of the node"},
		{Name: "Roles", Type: "string", Description: "The roles of the node"},
		ageColumn,
		{Name: "Version", Type: "string", Description: nodeInfoDoc["kubeletVersion"]},
		{Name: "Internal-IP", Type: "string", Priority: 1, Description: nodeStatusDoc["addresses"]},
		{Name: "External-IP", Type: "string", Priority: 1, Description: nodeStatusDoc["addresses"]},
		{Name: "OS-Image", Type: "string", Priority: 1, Description: nodeInfoDoc["osImage"]},
		{Name: "Kernel-Version", Type: "string", Priority: 1, Description: nodeInfoDoc["kernelVersion"]},
		{Name: "Container-Runtime", Type: "string", Priority: 1, Description: nodeInfoDoc["containerRuntimeVersion"]},
	}, RowOf(nodeRow))
}

const (
	nodeRoleLabelPrefix = "node-role.kubernetes.io/"
	// legacyNodeRoleLabel carries the role in its value rather than its key.
	legacyNodeRoleLabel = "kubernetes.io/role"
)

func nodeRow(n *corev1.Node, now time.Time) ([]interface{}, error) {
	status := "Unknown"
	for _, c := range n.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		// The last Ready condition wins, as with a map keyed by type.
		if c.Status == corev1.ConditionTrue {
			status = "Ready"
		} else {
			status = "NotReady"
		}
	}
	if n.Spec.Unschedulable {
		status += ",SchedulingDisabled"
	}
	roles := strings.Join(nodeRoles(n), ",")
	if roles == "" {
		roles = none
	}
	info := n.Status.NodeInfo
	return []interface{}{
		n.Name, status, roles, since(n.CreationTimestamp, now), info.KubeletVersion,
		nodeAddress(n, corev1.NodeInternalIP), nodeAddress(n, corev1.NodeExternalIP),
		orUnknown(info.OSImage), orUnknown(info.KernelVersion), orUnknown(info.ContainerRuntimeVersion),
	}, nil
}

func nodeRoles(n *corev1.Node) []string {
	set := map[string]bool{}
	for k, v := range n.Labels {
		switch {
		case strings.HasPrefix(k, nodeRoleLabelPrefix):
			if role := strings.TrimPrefix(k, nodeRoleLabelPrefix); role != "" {
				set[role] = true
			}
		case k == legacyNodeRoleLabel && v != "":
			set[v] = true
		}
	}
	roles := make([]string, 0, len(set))
	for r := range set {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	return roles
}

func nodeAddress(n *corev1.Node, t corev1.NodeAddressType) string {
	for _, a := range n.Status.Addresses {
		if a.Type == t {
			return a.Address
		}
	}
	return none
}

func orUnknown(s string) string {
	if s == "" {
		return unknown
	}
	return s
}

// NamespaceTable prints Namespaces.
func NamespaceTable() *TableConvertor {
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Status", Type: "string", Description: "The status of the namespace"},
		ageColumn,
	}, RowOf(func(ns *corev1.Namespace, now time.Time) ([]interface{}, error) {
		return []interface{}{ns.Name, string(ns.Status.Phase), since(ns.CreationTimestamp, now)}, nil
	}))
}

// EventTable prints core/v1 Events. As upstream, NAME is not first: it is
// a wide column at the end, after the event's own story.
func EventTable() *TableConvertor {
	return NewTableConvertor([]metav1.TableColumnDefinition{
		{Name: "Last Seen", Type: "string", Description: eventDoc["lastTimestamp"]},
		{Name: "Type", Type: "string", Description: eventDoc["type"]},
		{Name: "Reason", Type: "string", Description: eventDoc["reason"]},
		{Name: "Object", Type: "string", Description: eventDoc["involvedObject"]},
		{Name: "Subobject", Type: "string", Priority: 1, Description: corev1.ObjectReference{}.SwaggerDoc()["fieldPath"]},
		{Name: "Source", Type: "string", Priority: 1, Description: eventDoc["source"]},
		{Name: "Message", Type: "string", Description: eventDoc["message"]},
		{Name: "First Seen", Type: "string", Priority: 1, Description: eventDoc["firstTimestamp"]},
		{Name: "Count", Type: "string", Priority: 1, Description: eventDoc["count"]},
		{Name: "Name", Type: "string", Priority: 1, Format: "name", Description: objectMetaDoc["name"]},
	}, RowOf(eventRow))
}

func eventRow(e *corev1.Event, now time.Time) ([]interface{}, error) {
	// Events written through events.k8s.io carry eventTime/series instead
	// of the legacy first/last timestamps and count.
	first := since(e.FirstTimestamp, now)
	if e.FirstTimestamp.IsZero() {
		first = sinceMicro(e.EventTime, now)
	}
	last := since(e.LastTimestamp, now)
	if e.LastTimestamp.IsZero() {
		last = first
	}
	count := e.Count
	if e.Series != nil {
		last = sinceMicro(e.Series.LastObservedTime, now)
		count = e.Series.Count
	} else if count == 0 {
		count = 1
	}
	object := strings.ToLower(e.InvolvedObject.Kind)
	if e.InvolvedObject.Name != "" {
		object += "/" + e.InvolvedObject.Name
	}
	return []interface{}{
		last, e.Type, e.Reason, object, e.InvolvedObject.FieldPath,
		eventSource(e), strings.TrimSpace(e.Message), first, int64(count), e.Name,
	}, nil
}

// eventSource prefers the legacy source and falls back to the
// reporting controller/instance of newer events.
func eventSource(e *corev1.Event) string {
	component := e.Source.Component
	if component == "" {
		component = e.ReportingController
	}
	host := e.Source.Host
	if host == "" {
		host = e.ReportingInstance
	}
	if host == "" {
		return component
	}
	return component + ", " + host
}

// ConfigMapTable prints ConfigMaps; DATA counts text and binary keys.
func ConfigMapTable() *TableConvertor {
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Data", Type: "string", Description: corev1.ConfigMap{}.SwaggerDoc()["data"]},
		ageColumn,
	}, RowOf(func(cm *corev1.ConfigMap, now time.Time) ([]interface{}, error) {
		return []interface{}{cm.Name, int64(len(cm.Data) + len(cm.BinaryData)), since(cm.CreationTimestamp, now)}, nil
	}))
}

// SecretTable prints Secrets.
func SecretTable() *TableConvertor {
	doc := corev1.Secret{}.SwaggerDoc()
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Type", Type: "string", Description: doc["type"]},
		{Name: "Data", Type: "string", Description: doc["data"]},
		ageColumn,
	}, RowOf(func(s *corev1.Secret, now time.Time) ([]interface{}, error) {
		return []interface{}{s.Name, string(s.Type), int64(len(s.Data)), since(s.CreationTimestamp, now)}, nil
	}))
}

// ServiceAccountTable prints ServiceAccounts. Current upstream dropped the
// SECRETS count (kubernetes/kubernetes#117160): nothing has populated
// .secrets since 1.24, so the column only misled.
func ServiceAccountTable() *TableConvertor {
	return NewTableConvertor([]metav1.TableColumnDefinition{nameColumn, ageColumn},
		RowOf(func(sa *corev1.ServiceAccount, now time.Time) ([]interface{}, error) {
			return []interface{}{sa.Name, since(sa.CreationTimestamp, now)}, nil
		}))
}
