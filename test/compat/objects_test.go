package compat

import (
	"context"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// svcPort is a service (and endpoint) port.
type svcPort struct {
	name  string
	proto corev1.Protocol
	port  int32
}

// ep is one endpoint of a slice.
type ep struct {
	addr     string
	hostname string
	ready    bool
}

// slice is one EndpointSlice of a service.
type slice struct {
	family discoveryv1.AddressType
	ports  []svcPort
	eps    []ep
}

// svcSpec is one service of the cluster state and its slices.
type svcSpec struct {
	ns, name     string
	headless     bool
	externalName string // ExternalName service when set
	pnr          bool   // publishNotReadyAddresses
	ports        []svcPort
	slices       []slice

	clusterIP string // filled in when created
}

type podSpec struct {
	ns, name, ip string
}

var (
	namespaces = []string{"compat-a", "compat-b", "compat-empty"}

	http80   = svcPort{"http", corev1.ProtocolTCP, 80}
	http8080 = svcPort{"http", corev1.ProtocolTCP, 8080}
	dnsUDP   = svcPort{"dns", corev1.ProtocolUDP, 53}
	dnsTCP   = svcPort{"dns-tcp", corev1.ProtocolTCP, 53}

	v4 = discoveryv1.AddressTypeIPv4
	v6 = discoveryv1.AddressTypeIPv6
)

// clusterState is what the test writes. Services have no selector, so no
// controller touches the slices written here.
func clusterState() ([]*svcSpec, []podSpec) {
	svcs := []*svcSpec{
		// ClusterIP, one named port, ready and not-ready endpoints.
		{ns: "compat-a", name: "web", ports: []svcPort{http80},
			slices: []slice{{v4, []svcPort{http8080}, []ep{{"10.200.0.1", "", true}, {"10.200.0.2", "", true}, {"10.200.0.3", "", false}}}}},
		// ClusterIP, several named ports, TCP and UDP.
		{ns: "compat-a", name: "multi", ports: []svcPort{http80, {"https", corev1.ProtocolTCP, 443}, {"syslog", corev1.ProtocolUDP, 514}, {"metrics", corev1.ProtocolTCP, 9090}},
			slices: []slice{{v4, []svcPort{http8080, {"https", corev1.ProtocolTCP, 8443}, {"syslog", corev1.ProtocolUDP, 514}, {"metrics", corev1.ProtocolTCP, 9090}}, []ep{{"10.200.1.1", "", true}}}}},
		// ClusterIP, one unnamed port.
		{ns: "compat-a", name: "unnamed", ports: []svcPort{{"", corev1.ProtocolTCP, 8080}},
			slices: []slice{{v4, []svcPort{{"", corev1.ProtocolTCP, 8080}}, []ep{{"10.200.2.1", "", true}}}}},
		// ClusterIP, the same port number over UDP and TCP (kube-dns's shape).
		{ns: "compat-a", name: "dual", ports: []svcPort{dnsUDP, dnsTCP},
			slices: []slice{{v4, []svcPort{dnsUDP, dnsTCP}, []ep{{"10.200.3.1", "", true}}}}},
		// ClusterIP without endpoints.
		{ns: "compat-a", name: "noeps", ports: []svcPort{http80}},
		// Headless: endpoints with hostnames and one without, over two slices.
		{ns: "compat-a", name: "hl-named", headless: true, ports: []svcPort{http8080},
			slices: []slice{
				{v4, []svcPort{http8080}, []ep{{"10.201.0.1", "host-0", true}, {"10.201.0.2", "host-1", true}}},
				{v4, []svcPort{http8080}, []ep{{"10.201.0.3", "", true}}},
			}},
		// Headless, no hostnames, unnamed port.
		{ns: "compat-a", name: "hl-anon", headless: true, ports: []svcPort{{"", corev1.ProtocolTCP, 9000}},
			slices: []slice{{v4, []svcPort{{"", corev1.ProtocolTCP, 9000}}, []ep{{"10.201.1.1", "", true}, {"10.201.1.2", "", true}}}}},
		// Headless, one ready and one not-ready endpoint.
		{ns: "compat-a", name: "hl-notready", headless: true, ports: []svcPort{http8080},
			slices: []slice{{v4, []svcPort{http8080}, []ep{{"10.201.2.1", "ready-0", true}, {"10.201.2.2", "unready-0", false}}}}},
		// Headless with publishNotReadyAddresses, endpoints not ready (as a
		// slice not written by the EndpointSlice controller may say).
		{ns: "compat-a", name: "hl-pnr", headless: true, pnr: true, ports: []svcPort{http8080},
			slices: []slice{{v4, []svcPort{http8080}, []ep{{"10.201.3.1", "pnr-0", false}, {"10.201.3.2", "", true}}}}},
		// Headless, two ports of one number (UDP and TCP), hostnames: SRV
		// answers two records per endpoint.
		{ns: "compat-a", name: "hl-dual", headless: true, ports: []svcPort{dnsUDP, dnsTCP},
			slices: []slice{{v4, []svcPort{dnsUDP, dnsTCP}, []ep{{"10.201.4.1", "ns-0", true}, {"10.201.4.2", "ns-1", true}}}}},
		// Headless without any slice.
		{ns: "compat-a", name: "hl-empty", headless: true, ports: []svcPort{http8080}},
		// Headless, IPv6 endpoints.
		{ns: "compat-a", name: "hl-v6", headless: true, ports: []svcPort{http8080},
			slices: []slice{{v6, []svcPort{http8080}, []ep{{"fd00:10::1", "six-0", true}, {"fd00:10::2", "", true}}}}},
		// ExternalName outside the zone, answered by the upstream.
		{ns: "compat-a", name: "ext", externalName: "ext-0.example.org"},
		// ExternalName outside the zone, unknown to the upstream.
		{ns: "compat-a", name: "ext-missing", externalName: "missing.example.org"},
		// ExternalName inside the zone.
		{ns: "compat-a", name: "ext-internal", externalName: "web.compat-b.svc.cluster.local"},

		{ns: "compat-b", name: "web", ports: []svcPort{http80},
			slices: []slice{{v4, []svcPort{http8080}, []ep{{"10.202.0.1", "", true}}}}},
		// A StatefulSet's governing service.
		{ns: "compat-b", name: "db", headless: true, ports: []svcPort{{"pg", corev1.ProtocolTCP, 5432}},
			slices: []slice{{v4, []svcPort{{"pg", corev1.ProtocolTCP, 5432}}, []ep{{"10.202.1.1", "db-0", true}, {"10.202.1.2", "db-1", true}}}}},
	}
	pods := []podSpec{
		{"compat-a", "pod-a", "10.244.2.7"},
		{"compat-b", "pod-b", "10.244.1.5"},
	}
	return svcs, pods
}

func toServicePorts(ps []svcPort) []corev1.ServicePort {
	var out []corev1.ServicePort
	for _, p := range ps {
		out = append(out, corev1.ServicePort{Name: p.name, Protocol: p.proto, Port: p.port, TargetPort: intstr.FromInt32(p.port)})
	}
	return out
}

// writeState creates the namespaces, services, slices and pods, filling in
// each service's ClusterIP.
func writeState(ctx context.Context, kc kubernetes.Interface, svcs []*svcSpec, pods []podSpec) error {
	for _, ns := range namespaces {
		if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create namespace %s: %w", ns, err)
		}
	}
	for _, s := range svcs {
		obj := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.ns},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: toServicePorts(s.ports), PublishNotReadyAddresses: s.pnr}}
		switch {
		case s.externalName != "":
			obj.Spec.Type, obj.Spec.ExternalName = corev1.ServiceTypeExternalName, s.externalName
		case s.headless:
			obj.Spec.ClusterIP = corev1.ClusterIPNone
		}
		got, err := kc.CoreV1().Services(s.ns).Create(ctx, obj, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create service %s/%s: %w", s.ns, s.name, err)
		}
		if !s.headless && s.externalName == "" {
			if _, err := netip.ParseAddr(got.Spec.ClusterIP); err != nil {
				return fmt.Errorf("service %s/%s ClusterIP %q: %w", s.ns, s.name, got.Spec.ClusterIP, err)
			}
			s.clusterIP = got.Spec.ClusterIP
		}
		for i, sl := range s.slices {
			obj := &discoveryv1.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", s.name, i), Namespace: s.ns, Labels: map[string]string{
					discoveryv1.LabelServiceName: s.name,
					discoveryv1.LabelManagedBy:   "compat-test",
				}},
				AddressType: sl.family,
			}
			for _, p := range sl.ports {
				name, proto, port := p.name, p.proto, p.port
				obj.Ports = append(obj.Ports, discoveryv1.EndpointPort{Name: &name, Protocol: &proto, Port: &port})
			}
			for _, e := range sl.eps {
				ready := e.ready
				de := discoveryv1.Endpoint{Addresses: []string{e.addr}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}
				if e.hostname != "" {
					h := e.hostname
					de.Hostname = &h
				}
				obj.Endpoints = append(obj.Endpoints, de)
			}
			if _, err := kc.DiscoveryV1().EndpointSlices(s.ns).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create endpointslice %s/%s: %w", s.ns, obj.Name, err)
			}
		}
	}
	for _, p := range pods {
		obj := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: p.ns},
			Spec: corev1.PodSpec{NodeName: "compat", Containers: []corev1.Container{{Name: "c", Image: "example.invalid/none"}}}}
		got, err := kc.CoreV1().Pods(p.ns).Create(ctx, obj, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create pod %s/%s: %w", p.ns, p.name, err)
		}
		got.Status.Phase = corev1.PodRunning
		got.Status.PodIP = p.ip
		got.Status.PodIPs = []corev1.PodIP{{IP: p.ip}}
		if _, err := kc.CoreV1().Pods(p.ns).UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("pod %s/%s status: %w", p.ns, p.name, err)
		}
	}
	return nil
}
