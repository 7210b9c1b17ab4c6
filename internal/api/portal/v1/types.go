package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +genclient:nonNamespaced
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// AddressPool is a set of addresses that Services of type LoadBalancer get
// their status.loadBalancer.ingress addresses from. Addresses are handed
// out lowest first, one per IP family the Service asks for.
type AddressPool struct {
	metav1.TypeMeta `json:",inline"`
	// Standard object's metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`

	// spec says which addresses the pool holds and which Services may
	// have them.
	Spec AddressPoolSpec `json:"spec" protobuf:"bytes,2,opt,name=spec"`

	// status is kept by the load-balancer controller.
	// +optional
	Status AddressPoolStatus `json:"status,omitempty" protobuf:"bytes,3,opt,name=status"`
}

// AddressPoolSpec describes an AddressPool.
type AddressPoolSpec struct {
	// addresses are CIDRs ("192.0.2.0/28", "2001:db8::/120") or inclusive
	// first-last ranges ("192.0.2.10-192.0.2.20") of IPv4 or IPv6
	// addresses. A pool may mix both families.
	// +listType=atomic
	Addresses []string `json:"addresses" protobuf:"bytes,1,rep,name=addresses"`

	// autoAssign (default true) lets any admitted Service get an address
	// from the pool. When false, only Services that ask for the pool (the
	// portal.dev/address-pool annotation) or for one of its addresses
	// (spec.loadBalancerIP, the portal.dev/lb-ips annotation) do.
	// +optional
	AutoAssign *bool `json:"autoAssign,omitempty" protobuf:"varint,2,opt,name=autoAssign"`

	// includeNetworkBroadcast hands out the first and last address of
	// IPv4 CIDRs shorter than /31 too; by default they are held back
	// because some clients treat them as network and broadcast addresses.
	// +optional
	IncludeNetworkBroadcast bool `json:"includeNetworkBroadcast,omitempty" protobuf:"varint,3,opt,name=includeNetworkBroadcast"`

	// namespaceSelector restricts the pool to Services in namespaces whose
	// labels match (kubernetes.io/metadata.name names a namespace).
	// Absent: every namespace.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty" protobuf:"bytes,4,opt,name=namespaceSelector"`

	// serviceSelector restricts the pool to Services whose labels match.
	// Absent: every Service.
	// +optional
	ServiceSelector *metav1.LabelSelector `json:"serviceSelector,omitempty" protobuf:"bytes,5,opt,name=serviceSelector"`
}

// AddressPoolStatus is what the load-balancer controller observed.
type AddressPoolStatus struct {
	// assigned is how many of the pool's addresses Services hold.
	// +optional
	Assigned int64 `json:"assigned" protobuf:"varint,1,opt,name=assigned"`

	// availableIPv4 is how many IPv4 addresses are still free.
	// +optional
	AvailableIPv4 int64 `json:"availableIPv4" protobuf:"varint,2,opt,name=availableIPv4"`

	// availableIPv6 is how many IPv6 addresses are still free (at most
	// 2^63-1: larger pools show that figure).
	// +optional
	AvailableIPv6 int64 `json:"availableIPv6" protobuf:"varint,3,opt,name=availableIPv6"`

	// conditions: "Ready" says whether the controller uses the pool
	// (False with the reason when the spec cannot be used).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" protobuf:"bytes,4,rep,name=conditions"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// AddressPoolList is a list of AddressPools.
type AddressPoolList struct {
	metav1.TypeMeta `json:",inline"`
	// Standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`

	// items are the pools.
	Items []AddressPool `json:"items" protobuf:"bytes,2,rep,name=items"`
}
