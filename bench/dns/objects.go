package main

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/portal-net/portal/bench/internal/load"
)

const (
	namespace     = "bench-dns"
	zone          = "cluster.local"
	managedBy     = "bench"
	portName      = "http"
	servicePort   = 80
	endpointsEach = 3
)

func serviceName(i int) string  { return fmt.Sprintf("svc-%05d", i) }
func headlessName(i int) string { return fmt.Sprintf("hl-%05d", i) }

// fqdn is the cluster name of a service in the benchmark's namespace.
func fqdn(svc string) string { return svc + "." + namespace + ".svc." + zone + "." }

// endpointAddrs are the endpoints of the k-th slice the benchmark writes:
// distinct addresses in 10.128.0.0/9, which no packet ever goes to.
func endpointAddrs(k int) []netip.Addr {
	out := make([]netip.Addr, endpointsEach)
	for e := range endpointsEach {
		v := uint32(k*endpointsEach+e) + 1
		out[e] = netip.AddrFrom4([4]byte{10, 128 | byte(v>>16&0x7f), byte(v >> 8), byte(v)})
	}
	return out
}

func service(name string, headless bool) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{{Name: portName, Protocol: corev1.ProtocolTCP, Port: servicePort,
				TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if headless {
		s.Spec.ClusterIP = corev1.ClusterIPNone
	}
	return s
}

func slice(svc string, addrs []netip.Addr) *discoveryv1.EndpointSlice {
	ready := true
	name, proto, port := portName, corev1.ProtocolTCP, int32(8080)
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: svc + "-bench", Namespace: namespace, Labels: map[string]string{
			discoveryv1.LabelServiceName: svc,
			discoveryv1.LabelManagedBy:   managedBy,
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Protocol: &proto, Port: &port}},
	}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{a.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
		})
	}
	return s
}

// data is what the benchmark wrote, so answers can be checked.
type data struct {
	clusterIPs []netip.Addr // by service index
	headless   int
}

// headlessAddrs are the endpoints of headless service i (slices after the
// ClusterIP services' ones).
func (d *data) headlessAddrs(i int) []netip.Addr { return endpointAddrs(len(d.clusterIPs) + i) }

// writeObjects creates the namespace, the ClusterIP services and the
// headless ones, each with its slice, on o.workers clients.
func writeObjects(ctx context.Context, kc kubernetes.Interface, o options) (*data, error) {
	_, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create namespace: %w", err)
	}
	d := &data{clusterIPs: make([]netip.Addr, o.services), headless: o.headless}
	var mu sync.Mutex
	total := o.services + o.headless
	res, err := load.Throughput(ctx, total, o.workers, o.limit, func(ctx context.Context, i int) error {
		headless := i >= o.services
		name, k := serviceName(i), i
		if headless {
			name = headlessName(i - o.services)
		}
		svc, err := kc.CoreV1().Services(namespace).Create(ctx, service(name, headless), metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create service %s: %w", name, err)
		}
		if !headless {
			ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
			if err != nil {
				return fmt.Errorf("service %s ClusterIP %q: %w", name, svc.Spec.ClusterIP, err)
			}
			mu.Lock()
			d.clusterIPs[i] = ip
			mu.Unlock()
		}
		if _, err := kc.DiscoveryV1().EndpointSlices(namespace).Create(ctx, slice(name, endpointAddrs(k)), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create endpointslice of %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if res.Done != total {
		return nil, fmt.Errorf("wrote %d of %d services within %s", res.Done, total, o.limit)
	}
	return d, nil
}
