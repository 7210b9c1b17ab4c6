package printers

import (
	"sort"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// tables maps each resource this package prints to its constructor.
var tables = map[schema.GroupResource]func() *TableConvertor{
	{Resource: "services"}:               ServiceTable,
	{Resource: "endpoints"}:              EndpointsTable,
	{Resource: "pods"}:                   PodTable,
	{Resource: "nodes"}:                  NodeTable,
	{Resource: "namespaces"}:             NamespaceTable,
	{Resource: "events"}:                 EventTable,
	{Resource: "configmaps"}:             ConfigMapTable,
	{Resource: "secrets"}:                SecretTable,
	{Resource: "serviceaccounts"}:        ServiceAccountTable,
	{Resource: "replicationcontrollers"}: ReplicationControllerTable,
	{Resource: "podtemplates"}:           PodTemplateTable,
	{Resource: "persistentvolumeclaims"}: PersistentVolumeClaimTable,
	{Resource: "persistentvolumes"}:      PersistentVolumeTable,
	{Resource: "resourcequotas"}:         ResourceQuotaTable,

	{Group: "apps", Resource: "replicasets"}:         ReplicaSetTable,
	{Group: "apps", Resource: "deployments"}:         DeploymentTable,
	{Group: "apps", Resource: "statefulsets"}:        StatefulSetTable,
	{Group: "apps", Resource: "daemonsets"}:          DaemonSetTable,
	{Group: "apps", Resource: "controllerrevisions"}: ControllerRevisionTable,

	{Group: "discovery.k8s.io", Resource: "endpointslices"}:      EndpointSliceTable,
	{Group: "coordination.k8s.io", Resource: "leases"}:           LeaseTable,
	{Group: "networking.k8s.io", Resource: "servicecidrs"}:       ServiceCIDRTable,
	{Group: "networking.k8s.io", Resource: "ipaddresses"}:        IPAddressTable,
	{Group: "networking.k8s.io", Resource: "ingresses"}:          IngressTable,
	{Group: "networking.k8s.io", Resource: "ingressclasses"}:     IngressClassTable,
	{Group: "networking.k8s.io", Resource: "networkpolicies"}:    NetworkPolicyTable,
	{Group: "policy", Resource: "poddisruptionbudgets"}:          PodDisruptionBudgetTable,
	{Group: "autoscaling", Resource: "horizontalpodautoscalers"}: HorizontalPodAutoscalerTable,

	{Group: "portal.dev", Resource: "addresspools"}: AddressPoolTable,
}

// For returns a fresh convertor for a resource, e.g.
// For(schema.GroupResource{Group: "apps", Resource: "deployments"}); ok is
// false for resources this package has no columns for (callers then fall
// back to rest.NewDefaultTableConvertor).
func For(resource schema.GroupResource) (c *TableConvertor, ok bool) {
	mk, ok := tables[resource]
	if !ok {
		return nil, false
	}
	return mk(), true
}

// Resources lists every resource For knows, sorted by group then resource.
func Resources() []schema.GroupResource {
	out := make([]schema.GroupResource, 0, len(tables))
	for gr := range tables {
		out = append(out, gr)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		return out[i].Resource < out[j].Resource
	})
	return out
}
