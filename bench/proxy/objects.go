package main

import (
	"context"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

const (
	namespace   = "bench-proxy"
	nodeName    = "bench-node"
	nodeIP      = "192.0.2.10"
	clusterCIDR = "10.42.0.0/16"
	managedBy   = "bench"
	servicePort = 80
)

// serviceCIDR is the one portalproc gives the server; 30,000 services fit.
var serviceCIDR = netip.MustParsePrefix("10.0.0.0/16")

// service is a selector-less service with one TCP port.
func service(name string, targetPort int32) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: servicePort,
				TargetPort: intstr.FromInt32(targetPort)}},
		},
	}
}

// slice is the EndpointSlice the benchmark writes for a selector-less
// service: ready endpoints at addrs, all on port.
func slice(service string, addrs []netip.Addr, port int32, node func(k int) string) *discoveryv1.EndpointSlice {
	ready := true
	name, proto := "http", corev1.ProtocolTCP
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: service + "-bench", Namespace: namespace, Labels: map[string]string{
			discoveryv1.LabelServiceName: service,
			discoveryv1.LabelManagedBy:   managedBy,
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Protocol: &proto, Port: &port}},
	}
	for k, a := range addrs {
		n := nodeName
		if node != nil {
			n = node(k)
		}
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{a.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			NodeName:   &n,
		})
	}
	return s
}

// bulkEndpoints are the endpoints of bulk service i: distinct addresses in
// 10.128.0.0/9, which no packet of the benchmark ever goes to.
func bulkEndpoints(i, n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for k := range n {
		v := uint32(i*n+k) + 1
		out[k] = netip.AddrFrom4([4]byte{10, 128 | byte(v>>16&0x7f), byte(v >> 8), byte(v)})
	}
	return out
}

// bulkNode is the node of endpoint k of bulk service i (n endpoints each)
// when the endpoints are spread over nodes nodes: one in nodes is on the
// proxy's own node, the others on nodes that exist only in the slices.
func bulkNode(i, n, k, nodes int) string {
	v := i*n + k
	if nodes <= 1 || v%nodes == 0 {
		return nodeName
	}
	return fmt.Sprintf("%s-%d", nodeName, v%nodes)
}

func bulkName(i int) string { return fmt.Sprintf("bulk-%05d", i) }

// createService writes a service and then its slice and returns the
// ClusterIP the server allocated.
func createService(ctx context.Context, kc kubernetes.Interface, name string, addrs []netip.Addr, port int32, node func(k int) string) (netip.Addr, error) {
	svc, err := kc.CoreV1().Services(namespace).Create(ctx, service(name, port), metav1.CreateOptions{})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("create service %s: %w", name, err)
	}
	ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("service %s ClusterIP %q: %w", name, svc.Spec.ClusterIP, err)
	}
	if _, err := kc.DiscoveryV1().EndpointSlices(namespace).Create(ctx, slice(name, addrs, port, node), metav1.CreateOptions{}); err != nil {
		return netip.Addr{}, fmt.Errorf("create endpointslice of %s: %w", name, err)
	}
	return ip, nil
}

// deleteService removes a service and its slice; absent ones are fine.
func deleteService(ctx context.Context, kc kubernetes.Interface, name string) error {
	if err := kc.CoreV1().Services(namespace).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete service %s: %w", name, err)
	}
	if err := kc.DiscoveryV1().EndpointSlices(namespace).Delete(ctx, name+"-bench", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete endpointslice of %s: %w", name, err)
	}
	return nil
}

// createNode writes the Node both proxies run as, so kube-proxy finds its
// node IP without waiting and topology code sees a real node.
func createNode(ctx context.Context, kc kubernetes.Interface) error {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: nodeName},
		Spec:       corev1.NodeSpec{PodCIDR: "10.42.0.0/24", PodCIDRs: []string{"10.42.0.0/24"}},
	}
	created, err := kc.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create node: %w", err)
	}
	created.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: nodeIP}}
	created.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	if _, err := kc.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("node status: %w", err)
	}
	_, err = kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace: %w", err)
	}
	return nil
}
