package apiserver

import (
	"context"
	"fmt"
	"net"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/portal-net/portal/internal/sys/memtrim"
)

// systemNamespaces exist in every cluster.
var systemNamespaces = []string{"default", "kube-system", "kube-public", "kube-node-lease"}

func (s *Server) addHooks(advertise net.IP) error {
	return s.generic.AddPostStartHook("portal-bootstrap", func(hc genericapiserver.PostStartHookContext) error {
		client, err := kubernetes.NewForConfig(hc.LoopbackClientConfig)
		if err != nil {
			return err
		}
		ctx := hc.Context
		s.services.client = func() (kubernetes.Interface, error) { return client, nil }
		if err := s.services.repair(ctx); err != nil {
			// Not fatal: the periodic repair tries again.
			klog.ErrorS(err, "Allocation repair at start-up failed")
		}
		if err := waitReady(ctx, 100*time.Millisecond, func(ctx context.Context) error {
			return bootstrap(ctx, client, s.bootstrapSpec(advertise))
		}); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		go s.services.runRepairLoop(ctx, s.cfg.RepairInterval)
		// Ready means /readyz answers 200, which needs this hook to have
		// returned first.
		go func() {
			if err := waitReady(ctx, 10*time.Millisecond, func(ctx context.Context) error {
				return client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
			}); err != nil {
				return
			}
			close(s.ready)
			// Building OpenAPI models and the storage caches leaves a lot of
			// start-up garbage; give it back to the OS now rather than at
			// the runtime's leisure, so an idle server stays small.
			memtrim.ReleaseStartup()
		}()
		return nil
	})
}

type bootstrapSpec struct {
	serviceCIDR string
	firstIP     net.IP
	dnsIP       net.IP // the 10th address: kube-dns
	advertise   net.IP
	port        int32
}

func (s *Server) bootstrapSpec(advertise net.IP) bootstrapSpec {
	n, _ := s.cfg.ServiceNet()
	return bootstrapSpec{serviceCIDR: n.String(), firstIP: nthIP(n, 1), dnsIP: nthIP(n, 10), advertise: advertise, port: int32(s.cfg.SecurePort)}
}

// bootstrap creates what every cluster has: the system namespaces, the
// default ServiceCIDR and the kubernetes service with its endpoints. It is
// idempotent; existing objects are left as they are.
func bootstrap(ctx context.Context, c kubernetes.Interface, b bootstrapSpec) error {
	for _, name := range systemNamespaces {
		if err := ignoreExists(c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})); err != nil {
			return fmt.Errorf("namespace %s: %w", name, err)
		}
	}
	cidr := &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes"}, Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{b.serviceCIDR}}}
	created, err := c.NetworkingV1().ServiceCIDRs().Create(ctx, cidr, metav1.CreateOptions{})
	switch {
	case err == nil:
		created.Status.Conditions = []metav1.Condition{{Type: networkingv1.ServiceCIDRConditionReady, Status: metav1.ConditionTrue,
			Reason: "ServiceCIDRReady", LastTransitionTime: metav1.Now(), Message: "the default service CIDR of portal"}}
		if _, err := c.NetworkingV1().ServiceCIDRs().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("servicecidr status: %w", err)
		}
	case !apierrors.IsAlreadyExists(err):
		return fmt.Errorf("servicecidr: %w", err)
	}

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default",
			Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
		Spec: corev1.ServiceSpec{
			Type:      corev1.ServiceTypeClusterIP,
			ClusterIP: b.firstIP.String(),
			Ports: []corev1.ServicePort{{Name: "https", Protocol: corev1.ProtocolTCP, Port: 443,
				TargetPort: intstr.FromInt32(b.port)}},
			SessionAffinity: corev1.ServiceAffinityNone,
		},
	}
	if err := ensureService(ctx, c, svc); err != nil {
		return err
	}
	if err := ensureService(ctx, c, kubeDNSService(b.dnsIP)); err != nil {
		return err
	}
	if b.advertise.IsLoopback() {
		// Endpoints may not point at loopback; a host with no other
		// address has no reachable kubernetes endpoint.
		klog.InfoS("Not publishing kubernetes endpoints: the advertise address is loopback", "address", b.advertise)
		return nil
	}
	return reconcileAPIEndpoints(ctx, c, b)
}

// ensureService creates svc unless a service of that name exists (a user
// may have changed it; it is left alone). Get first: on a restart the
// create would fail on the held ClusterIP (422, as in Kubernetes) before
// it could report AlreadyExists.
func ensureService(ctx context.Context, c kubernetes.Interface, svc *corev1.Service) error {
	_, err := c.CoreV1().Services(svc.Namespace).Get(ctx, svc.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		err = ignoreExists(c.CoreV1().Services(svc.Namespace).Create(ctx, svc, metav1.CreateOptions{}))
	}
	if err != nil {
		return fmt.Errorf("%s service: %w", svc.Name, err)
	}
	return nil
}

// kubeDNSService is the cluster DNS service, named and numbered as in
// Kubernetes (kube-system/kube-dns on the 10th service address, ports dns
// and dns-tcp). It has no selector: every node agent serves DNS and keeps
// its own EndpointSlice (internal/agent/dns.go); PreferSameNode sends a
// pod's queries to its own node's agent while it has a ready endpoint.
func kubeDNSService(ip net.IP) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: "kube-system",
			Labels: map[string]string{"k8s-app": "kube-dns", "kubernetes.io/name": "KubeDNS", "kubernetes.io/cluster-service": "true"}},
		Spec: corev1.ServiceSpec{
			Type:      corev1.ServiceTypeClusterIP,
			ClusterIP: ip.String(),
			Ports: []corev1.ServicePort{
				{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: 53, TargetPort: intstr.FromInt32(53)},
			},
			SessionAffinity:     corev1.ServiceAffinityNone,
			TrafficDistribution: ptr.To(corev1.ServiceTrafficDistributionPreferSameNode),
		},
	}
}

func reconcileAPIEndpoints(ctx context.Context, c kubernetes.Interface, b bootstrapSpec) error {
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default",
			Labels: map[string]string{"endpointslice.kubernetes.io/skip-mirror": "true"}},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: b.advertise.String()}},
			Ports:     []corev1.EndpointPort{{Name: "https", Port: b.port, Protocol: corev1.ProtocolTCP}},
		}},
	}
	if cur, err := c.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{}); err == nil {
		cur.Subsets, cur.Labels = ep.Subsets, ep.Labels
		if _, err := c.CoreV1().Endpoints("default").Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("kubernetes endpoints: %w", err)
		}
	} else if err := ignoreExists(c.CoreV1().Endpoints("default").Create(ctx, ep, metav1.CreateOptions{})); err != nil {
		return fmt.Errorf("kubernetes endpoints: %w", err)
	}
	family := discoveryv1.AddressTypeIPv4
	if b.advertise.To4() == nil {
		family = discoveryv1.AddressTypeIPv6
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default",
			Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
		AddressType: family,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{b.advertise.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To(b.port), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	if cur, err := c.DiscoveryV1().EndpointSlices("default").Get(ctx, "kubernetes", metav1.GetOptions{}); err == nil {
		cur.Endpoints, cur.Ports, cur.Labels = slice.Endpoints, slice.Ports, slice.Labels
		_, err = c.DiscoveryV1().EndpointSlices("default").Update(ctx, cur, metav1.UpdateOptions{})
		return err
	}
	return ignoreExists(c.DiscoveryV1().EndpointSlices("default").Create(ctx, slice, metav1.CreateOptions{}))
}

func ignoreExists[T any](_ T, err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}
