package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/portal-net/portal/internal/config"
	"github.com/portal-net/portal/internal/dns"
	"github.com/portal-net/portal/internal/dns/records"
	"github.com/portal-net/portal/internal/feed"
	"github.com/portal-net/portal/internal/netutil"
	"github.com/portal-net/portal/internal/sys/memtrim"
)

// The cluster DNS service every node serves (created by the server's
// bootstrap; see apiserver.kubeDNSService).
const (
	dnsNamespace = "kube-system"
	dnsService   = "kube-dns"
	// dnsManagedBy marks the EndpointSlices the agents keep for kube-dns,
	// one per node.
	dnsManagedBy = "portal-agent"
)

// dnsSources are where the DNS records come from. pods is read only
// with --dns-autopath.
type dnsSources struct {
	services, slices, namespaces, pods feed.Source
}

// informerSources feed the DNS records from the agent's shared informers
// (the caller starts f) and its EndpointSlice feed, which the service proxy
// reads too. The cluster-wide Pod informer is only made when pods is set
// (--dns-autopath): asking the factory for it would start it.
func informerSources(f informers.SharedInformerFactory, slices feed.Source, pods bool) dnsSources {
	src := dnsSources{
		services:   feed.FromInformer(f.Core().V1().Services().Informer()),
		slices:     slices,
		namespaces: feed.FromInformer(f.Core().V1().Namespaces().Informer()),
	}
	if pods {
		src.pods = feed.FromInformer(f.Core().V1().Pods().Informer())
	}
	return src
}

// startDNS feeds the DNS records from src (the caller starts the sources)
// and, once they have seen the cluster, serves DNS on ip:--dns-port (or
// --dns-address) and publishes that address as this node's endpoint of
// kube-dns until ctx ends.
func (a *Agent) startDNS(ctx context.Context, src dnsSources, ip netip.Addr) error {
	if !a.cfg.DNS {
		return nil
	}
	if a.cfg.DNSAddress != "" {
		// Validated: IP:port. The server's own address is the one it
		// serves on (it names the apex NS).
		ip = netip.MustParseAddrPort(a.cfg.DNSAddress).Addr()
	}
	if !ip.IsValid() {
		return errors.New("no address to serve DNS on")
	}
	var ups []netip.AddrPort
	for _, u := range a.cfg.DNSUpstreams {
		ap, err := config.ParseUpstream(u)
		if err != nil {
			return fmt.Errorf("--dns-upstream: %w", err)
		}
		ups = append(ups, ap)
	}
	var cidrs []netip.Prefix
	if p, err := netip.ParsePrefix(a.cfg.ServiceCIDR); err == nil {
		cidrs = append(cidrs, p.Masked())
	}
	cluster := records.New(records.Config{
		Zone:          a.cfg.ClusterDomain,
		TTL:           uint32(a.cfg.DNSTTL / time.Second),
		ServiceCIDRs:  cidrs,
		NameserverIPs: []netip.Addr{ip},
	})
	var synced []cache.InformerSynced
	add := func(from feed.Source, update feed.Update) error {
		hs, err := from.Subscribe(update)
		if err == nil {
			synced = append(synced, hs)
		}
		return err
	}
	errs := []error{
		add(src.services, func(p, c any) { cluster.UpdateService(typed[*corev1.Service](p), typed[*corev1.Service](c)) }),
		add(src.slices, func(p, c any) {
			cluster.UpdateEndpointSlice(typed[*discoveryv1.EndpointSlice](p), typed[*discoveryv1.EndpointSlice](c))
		}),
		add(src.namespaces, func(p, c any) { cluster.UpdateNamespace(typed[*corev1.Namespace](p), typed[*corev1.Namespace](c)) }),
	}
	// Pods only matter to autopath (which pod asks, from which
	// namespace); without it the cluster-wide pod list is not worth its
	// memory ("pods insecure" answers pod names without it).
	if a.cfg.DNSAutopath {
		errs = append(errs, add(src.pods, func(p, c any) { cluster.UpdatePod(typed[*corev1.Pod](p), typed[*corev1.Pod](c)) }))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("dns informers: %w", err)
	}
	reg := prometheus.NewRegistry()
	srv, err := dns.New(dns.Config{Resolver: cluster, Zone: a.cfg.ClusterDomain, Upstreams: ups,
		ResolvConf: a.cfg.ResolvConf, Autopath: a.cfg.DNSAutopath, Registry: reg})
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(ip.String(), strconv.Itoa(a.cfg.DNSPort))
	if a.cfg.DNSAddress != "" {
		addr = a.cfg.DNSAddress
	}
	if err := srv.Start(ctx, []string{addr}); err != nil {
		if a.cfg.DNSOnly {
			return fmt.Errorf("dns: %w", err)
		}
		// DNS is an add-on: pods and services work without this node's
		// (other nodes' agents answer kube-dns), so the agent runs on.
		klog.ErrorS(err, "Cluster DNS is not served on this node", "address", addr)
		return nil
	}
	if a.cfg.DNSMetricsBindAddress != "" {
		go serveMetrics(ctx, a.cfg.DNSMetricsBindAddress, reg)
	}
	klog.InfoS("Cluster DNS listening; answering once the informers have synced", "address", addr, "zone", a.cfg.ClusterDomain)
	go func() {
		if !cache.WaitForCacheSync(ctx.Done(), synced...) {
			return
		}
		cluster.SetSynced()
		klog.InfoS("Cluster DNS answering", "address", addr)
		// Decoding the initial lists left garbage of the size of the
		// cluster's objects; give it back now rather than at the
		// runtime's leisure.
		memtrim.ReleaseStartup()
		if !a.cfg.DNSOnly {
			a.publishDNSEndpoint(ctx, ip)
		}
	}()
	return nil
}

func typed[T any](o any) T {
	t, _ := o.(T)
	return t
}

func serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s := &http.Server{Addr: addr, Handler: netutil.WithProfiles(addr, mux), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = s.Close()
	}()
	if err := s.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		klog.ErrorS(err, "DNS metrics server", "address", addr)
	}
}

// dnsSliceName is this node's EndpointSlice of kube-dns.
func (a *Agent) dnsSliceName() string { return dnsService + "-" + a.cfg.NodeName }

// publishDNSEndpoint makes this node's DNS address a ready endpoint of
// kube-dns (retrying until it can), and removes it when ctx ends. The
// slice is owned by the Node, so deleting the Node removes it too.
func (a *Agent) publishDNSEndpoint(ctx context.Context, ip netip.Addr) {
	want := a.dnsSlice(ip)
	for ctx.Err() == nil {
		err := a.applyDNSSlice(ctx, want)
		if err == nil {
			klog.InfoS("Published this node as a kube-dns endpoint", "slice", want.Name, "address", ip)
			break
		}
		klog.V(2).InfoS("Publishing the kube-dns endpoint; retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
	<-ctx.Done()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	err := a.client.DiscoveryV1().EndpointSlices(dnsNamespace).Delete(dctx, want.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		klog.V(2).InfoS("Removing the kube-dns endpoint", "err", err)
	}
}

func (a *Agent) dnsSlice(ip netip.Addr) *discoveryv1.EndpointSlice {
	family := discoveryv1.AddressTypeIPv4
	if ip.Is6() {
		family = discoveryv1.AddressTypeIPv6
	}
	port := int32(a.cfg.DNSPort)
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: a.dnsSliceName(), Namespace: dnsNamespace, Labels: map[string]string{
			discoveryv1.LabelServiceName: dnsService,
			discoveryv1.LabelManagedBy:   dnsManagedBy,
		}},
		AddressType: family,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{ip.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			NodeName:   ptr.To(a.cfg.NodeName),
		}},
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To("dns"), Protocol: ptr.To(corev1.ProtocolUDP), Port: &port},
			{Name: ptr.To("dns-tcp"), Protocol: ptr.To(corev1.ProtocolTCP), Port: &port},
		},
	}
	if a.cfg.Zone != "" {
		s.Endpoints[0].Zone = ptr.To(a.cfg.Zone)
	}
	if uid := a.getNodeUID(); uid != "" {
		s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: a.cfg.NodeName, UID: types.UID(uid)}}
	}
	return s
}

func (a *Agent) applyDNSSlice(ctx context.Context, want *discoveryv1.EndpointSlice) error {
	c := a.client.DiscoveryV1().EndpointSlices(dnsNamespace)
	cur, err := c.Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = c.Create(ctx, want, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	cur.Labels, cur.OwnerReferences = want.Labels, want.OwnerReferences
	cur.AddressType, cur.Endpoints, cur.Ports = want.AddressType, want.Endpoints, want.Ports
	_, err = c.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}
