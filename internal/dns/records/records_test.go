package records

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

const serial = 1700000000

// soa is the authority record of every negative answer in the tests.
const soa = "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 5"

func ns(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

type svcOpt func(*corev1.Service)

func svc(namespace, name string, opts ...svcOpt) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func clusterIPs(ips ...string) svcOpt {
	return func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = ips[0], ips }
}

func headless() svcOpt {
	return func(s *corev1.Service) {
		s.Spec.ClusterIP, s.Spec.ClusterIPs = corev1.ClusterIPNone, []string{corev1.ClusterIPNone}
	}
}

func svcPort(name string, proto corev1.Protocol, p int32) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: name, Protocol: proto, Port: p})
	}
}

func externalName(target string) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, target
	}
}

func publishNotReady() svcOpt {
	return func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true }
}

type ep struct {
	addrs    []string
	hostname string
	ready    bool
}

func epSlice(namespace, name, service string, family discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: service},
		},
		AddressType: family,
		Ports:       ports,
	}
	for _, e := range eps {
		de := discoveryv1.Endpoint{Addresses: e.addrs, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(e.ready)}}
		if e.hostname != "" {
			de.Hostname = ptr.To(e.hostname)
		}
		s.Endpoints = append(s.Endpoints, de)
	}
	return s
}

func epPort(name string, proto corev1.Protocol, p int32) discoveryv1.EndpointPort {
	ep := discoveryv1.EndpointPort{Protocol: ptr.To(proto), Port: ptr.To(p)}
	if name != "" {
		ep.Name = ptr.To(name)
	}
	return ep
}

func runningPod(namespace, name string, hostNetwork bool, ips ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       corev1.PodSpec{HostNetwork: hostNetwork},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ips[0]},
	}
	for _, ip := range ips {
		p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: ip})
	}
	return p
}

// newTestCluster builds the cluster every table test queries: the seed
// examples (my-service in my-ns with a named http port, my-service in prod
// as an ExternalName to my.database.example.com, the busybox pod with
// hostname busybox-1 and subdomain default-subdomain, the headless
// my-service in default) and a few more services for the record kinds.
func newTestCluster(t testing.TB) *Cluster {
	t.Helper()
	c := New(Config{
		Zone:          "cluster.local.",
		ServiceCIDRs:  []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("fd00:96::/112")},
		NameserverIPs: []netip.Addr{netip.MustParseAddr("192.168.1.10")},
		Now:           func() time.Time { return time.Unix(serial, 0) },
	})
	for _, n := range []string{"default", "kube-system", "my-ns", "prod", "testns"} {
		c.UpdateNamespace(nil, ns(n))
	}
	v4, v6 := discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6

	// kube-dns, served by the node agent at 192.168.1.10.
	c.UpdateService(nil, svc("kube-system", "kube-dns", clusterIPs("10.96.0.10"),
		svcPort("dns", corev1.ProtocolUDP, 53), svcPort("dns-tcp", corev1.ProtocolTCP, 53)))
	c.UpdateEndpointSlice(nil, epSlice("kube-system", "kube-dns-abcde", "kube-dns", v4,
		[]discoveryv1.EndpointPort{epPort("dns", corev1.ProtocolUDP, 53), epPort("dns-tcp", corev1.ProtocolTCP, 53)},
		ep{addrs: []string{"192.168.1.10"}, ready: true}))

	// Seed 000: my-service in my-ns with a port named http.
	c.UpdateService(nil, svc("my-ns", "my-service", clusterIPs("10.96.171.239"), svcPort("http", corev1.ProtocolTCP, 80)))
	c.UpdateEndpointSlice(nil, epSlice("my-ns", "my-service-x1", "my-service", v4,
		[]discoveryv1.EndpointPort{epPort("http", corev1.ProtocolTCP, 9376)},
		ep{addrs: []string{"10.244.1.5"}, ready: true}, ep{addrs: []string{"10.244.2.7"}, ready: true}))

	// Seed 000: my-service in prod maps to my.database.example.com.
	c.UpdateService(nil, svc("prod", "my-service", externalName("my.database.example.com")))

	// Seed 002: headless my-service (unnamed port 80) and the busybox
	// hostname/subdomain example.
	c.UpdateService(nil, svc("default", "my-service", headless(), svcPort("", corev1.ProtocolTCP, 80)))
	c.UpdateEndpointSlice(nil, epSlice("default", "my-service-q2", "my-service", v4,
		[]discoveryv1.EndpointPort{epPort("", corev1.ProtocolTCP, 9376)},
		ep{addrs: []string{"10.244.3.3"}, ready: true}, ep{addrs: []string{"10.244.3.4"}, ready: false}))
	c.UpdateService(nil, svc("default", "default-subdomain", headless(), svcPort("foo", corev1.ProtocolTCP, 1234)))
	c.UpdateEndpointSlice(nil, epSlice("default", "default-subdomain-7k", "default-subdomain", v4,
		[]discoveryv1.EndpointPort{epPort("foo", corev1.ProtocolTCP, 1234)},
		ep{addrs: []string{"10.244.1.10"}, hostname: "busybox-1", ready: true},
		ep{addrs: []string{"10.244.1.11"}, ready: true}))
	c.UpdatePod(nil, runningPod("default", "busybox1", false, "10.244.1.10"))

	// A StatefulSet's headless service over two IPv4 slices (web-0 in
	// both) and an IPv6 slice.
	c.UpdateService(nil, svc("testns", "web", headless(), svcPort("http", corev1.ProtocolTCP, 80)))
	httpPort := []discoveryv1.EndpointPort{epPort("http", corev1.ProtocolTCP, 8080)}
	c.UpdateEndpointSlice(nil, epSlice("testns", "web-a", "web", v4, httpPort,
		ep{addrs: []string{"10.244.4.10"}, hostname: "web-0", ready: true},
		ep{addrs: []string{"10.244.4.11"}, hostname: "web-1", ready: true},
		ep{addrs: []string{"10.244.4.12"}, hostname: "web-2", ready: false}))
	c.UpdateEndpointSlice(nil, epSlice("testns", "web-b", "web", v4, httpPort,
		ep{addrs: []string{"10.244.4.10"}, hostname: "web-0", ready: true}))
	c.UpdateEndpointSlice(nil, epSlice("testns", "web-c", "web", v6, httpPort,
		ep{addrs: []string{"fd00:244::a"}, hostname: "web-0", ready: true}))

	// Dual-stack ClusterIP service with a UDP and an SCTP port besides TCP.
	c.UpdateService(nil, svc("testns", "dual", clusterIPs("10.96.5.5", "fd00:96::5"),
		svcPort("https", corev1.ProtocolTCP, 443), svcPort("syslog", corev1.ProtocolUDP, 514),
		svcPort("sig", corev1.ProtocolSCTP, 9999)))

	// publishNotReadyAddresses: the EndpointSlice controller marks the
	// unready pod's endpoint ready; DNS follows the endpoint's condition,
	// as CoreDNS does, so a hand-written not-ready one stays out.
	c.UpdateService(nil, svc("testns", "unready-ok", headless(), publishNotReady(), svcPort("http", corev1.ProtocolTCP, 80)))
	c.UpdateEndpointSlice(nil, epSlice("testns", "unready-ok-1", "unready-ok", v4, httpPort,
		ep{addrs: []string{"10.244.5.5"}, ready: true}, ep{addrs: []string{"10.244.5.6"}, ready: false}))
	c.UpdateService(nil, svc("testns", "empty-headless", headless()))
	c.UpdateService(nil, svc("testns", "ext-in", externalName("my-service.my-ns.svc.cluster.local")))
	c.UpdateService(nil, svc("testns", "ext-ip", externalName("192.0.2.1")))
	c.UpdatePod(nil, runningPod("testns", "loner", false, "10.244.9.9", "fd00:244::9"))
	c.UpdatePod(nil, runningPod("testns", "hostnet", true, "192.168.1.11"))
	c.SetSynced()
	return c
}

type tcase struct {
	qname     string
	qtype     uint16
	rcode     int
	answer    []string
	extra     []string
	authority []string
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 4242
	return m
}

// canon parses and re-prints records so that tests can write them with
// spaces; the result is sorted, as the order of records is not asserted.
func canon(t *testing.T, rrs []string) []string {
	t.Helper()
	out := make([]string, 0, len(rrs))
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("bad expected record %q: %v", s, err)
		}
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}

func strs(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}

func check(t *testing.T, c *Cluster, tc tcase) {
	t.Helper()
	req := query(tc.qname, tc.qtype)
	resp, ok := c.Resolve(req)
	if !ok {
		t.Fatalf("%s %s: not ours", tc.qname, dns.TypeToString[tc.qtype])
	}
	if resp.Id != req.Id || !resp.Response || !resp.Authoritative || resp.Question[0] != req.Question[0] {
		t.Errorf("header not a reply to the question: %v", resp.MsgHdr)
	}
	if resp.Rcode != tc.rcode {
		t.Errorf("rcode = %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.rcode])
	}
	for _, sec := range []struct {
		name      string
		got, want []string
	}{
		{"answer", strs(resp.Answer), canon(t, tc.answer)},
		{"extra", strs(resp.Extra), canon(t, tc.extra)},
		{"authority", strs(resp.Ns), canon(t, tc.authority)},
	} {
		if !slices.Equal(sec.got, sec.want) {
			t.Errorf("%s:\n got  %q\n want %q", sec.name, sec.got, sec.want)
		}
	}
}

func TestResolve(t *testing.T) {
	c := newTestCluster(t)
	var (
		A, AAAA, SRV, TXT, PTR, CNAME, SOA, NS, MX = dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeTXT, dns.TypePTR, dns.TypeCNAME, dns.TypeSOA, dns.TypeNS, dns.TypeMX
		ok, nx                                     = dns.RcodeSuccess, dns.RcodeNameError
		neg                                        = []string{soa}
	)
	tests := map[string]tcase{
		// Schema version.
		"dns-version TXT":    {"dns-version.cluster.local.", TXT, ok, []string{`dns-version.cluster.local. 28800 IN TXT "1.1.0"`}, nil, nil},
		"dns-version A data": {"dns-version.cluster.local.", A, ok, nil, nil, neg},

		// ClusterIP service: the seed's my-service.my-ns.
		"clusterip A": {"my-service.my-ns.svc.cluster.local.", A, ok,
			[]string{"my-service.my-ns.svc.cluster.local. 5 IN A 10.96.171.239"}, nil, nil},
		"clusterip AAAA nodata":  {"my-service.my-ns.svc.cluster.local.", AAAA, ok, nil, nil, neg},
		"clusterip TXT nodata":   {"my-service.my-ns.svc.cluster.local.", TXT, ok, nil, nil, neg},
		"clusterip MX nodata":    {"my-service.my-ns.svc.cluster.local.", MX, ok, nil, nil, neg},
		"clusterip CNAME nodata": {"my-service.my-ns.svc.cluster.local.", CNAME, ok, nil, nil, neg},
		"clusterip SRV named port": {"_http._tcp.my-service.my-ns.svc.cluster.local.", SRV, ok,
			[]string{"_http._tcp.my-service.my-ns.svc.cluster.local. 5 IN SRV 0 100 80 my-service.my-ns.svc.cluster.local."},
			[]string{"my-service.my-ns.svc.cluster.local. 5 IN A 10.96.171.239"}, nil},
		"clusterip SRV wrong proto":  {"_http._udp.my-service.my-ns.svc.cluster.local.", SRV, nx, nil, nil, neg},
		"clusterip SRV unknown port": {"_ftp._tcp.my-service.my-ns.svc.cluster.local.", SRV, nx, nil, nil, neg},
		"clusterip SRV name A": {"_http._tcp.my-service.my-ns.svc.cluster.local.", A, ok,
			[]string{"_http._tcp.my-service.my-ns.svc.cluster.local. 5 IN A 10.96.171.239"}, nil, nil},
		"proto label is an empty non-terminal": {"_tcp.my-service.my-ns.svc.cluster.local.", SRV, ok, nil, nil, neg},
		"proto label without port":             {"_udp.my-service.my-ns.svc.cluster.local.", SRV, nx, nil, nil, neg},
		"endpoint name of a clusterip service": {"10-244-1-5.my-service.my-ns.svc.cluster.local.", A, ok,
			[]string{"10-244-1-5.my-service.my-ns.svc.cluster.local. 5 IN A 10.244.1.5"}, nil, nil},
		"dual-stack A": {"dual.testns.svc.cluster.local.", A, ok, []string{"dual.testns.svc.cluster.local. 5 IN A 10.96.5.5"}, nil, nil},
		"dual-stack AAAA": {"dual.testns.svc.cluster.local.", AAAA, ok,
			[]string{"dual.testns.svc.cluster.local. 5 IN AAAA fd00:96::5"}, nil, nil},
		"dual-stack SRV": {"_https._tcp.dual.testns.svc.cluster.local.", SRV, ok,
			[]string{"_https._tcp.dual.testns.svc.cluster.local. 5 IN SRV 0 50 443 dual.testns.svc.cluster.local."},
			[]string{"dual.testns.svc.cluster.local. 5 IN A 10.96.5.5", "dual.testns.svc.cluster.local. 5 IN AAAA fd00:96::5"}, nil},
		"SRV udp": {"_syslog._udp.dual.testns.svc.cluster.local.", SRV, ok,
			[]string{"_syslog._udp.dual.testns.svc.cluster.local. 5 IN SRV 0 50 514 dual.testns.svc.cluster.local."},
			[]string{"dual.testns.svc.cluster.local. 5 IN A 10.96.5.5", "dual.testns.svc.cluster.local. 5 IN AAAA fd00:96::5"}, nil},
		"SRV sctp": {"_sig._sctp.dual.testns.svc.cluster.local.", SRV, ok,
			[]string{"_sig._sctp.dual.testns.svc.cluster.local. 5 IN SRV 0 50 9999 dual.testns.svc.cluster.local."},
			[]string{"dual.testns.svc.cluster.local. 5 IN A 10.96.5.5", "dual.testns.svc.cluster.local. 5 IN AAAA fd00:96::5"}, nil},
		"SRV of the service name: all ports": {"kube-dns.kube-system.svc.cluster.local.", SRV, ok,
			[]string{
				"kube-dns.kube-system.svc.cluster.local. 5 IN SRV 0 50 53 kube-dns.kube-system.svc.cluster.local.",
			},
			[]string{"kube-dns.kube-system.svc.cluster.local. 5 IN A 10.96.0.10"}, nil},

		// Headless services.
		"headless A ready only": {"my-service.default.svc.cluster.local.", A, ok,
			[]string{"my-service.default.svc.cluster.local. 5 IN A 10.244.3.3"}, nil, nil},
		"headless unnamed port has no SRV by name": {"_http._tcp.my-service.default.svc.cluster.local.", SRV, nx, nil, nil, neg},
		"headless SRV of the service name includes unnamed ports": {"my-service.default.svc.cluster.local.", SRV, ok,
			[]string{"my-service.default.svc.cluster.local. 5 IN SRV 0 100 9376 10-244-3-3.my-service.default.svc.cluster.local."},
			[]string{"10-244-3-3.my-service.default.svc.cluster.local. 5 IN A 10.244.3.3"}, nil},
		"not-ready endpoint name": {"10-244-3-4.my-service.default.svc.cluster.local.", A, nx, nil, nil, neg},
		"busybox hostname.subdomain": {"busybox-1.default-subdomain.default.svc.cluster.local.", A, ok,
			[]string{"busybox-1.default-subdomain.default.svc.cluster.local. 5 IN A 10.244.1.10"}, nil, nil},
		"busybox subdomain A": {"default-subdomain.default.svc.cluster.local.", A, ok,
			[]string{"default-subdomain.default.svc.cluster.local. 5 IN A 10.244.1.10", "default-subdomain.default.svc.cluster.local. 5 IN A 10.244.1.11"}, nil, nil},
		"busybox subdomain SRV": {"_foo._tcp.default-subdomain.default.svc.cluster.local.", SRV, ok,
			[]string{
				"_foo._tcp.default-subdomain.default.svc.cluster.local. 5 IN SRV 0 50 1234 busybox-1.default-subdomain.default.svc.cluster.local.",
				"_foo._tcp.default-subdomain.default.svc.cluster.local. 5 IN SRV 0 50 1234 10-244-1-11.default-subdomain.default.svc.cluster.local.",
			},
			[]string{
				"busybox-1.default-subdomain.default.svc.cluster.local. 5 IN A 10.244.1.10",
				"10-244-1-11.default-subdomain.default.svc.cluster.local. 5 IN A 10.244.1.11",
			}, nil},
		"statefulset A merged and deduped": {"web.testns.svc.cluster.local.", A, ok,
			[]string{"web.testns.svc.cluster.local. 5 IN A 10.244.4.10", "web.testns.svc.cluster.local. 5 IN A 10.244.4.11"}, nil, nil},
		"statefulset AAAA": {"web.testns.svc.cluster.local.", AAAA, ok,
			[]string{"web.testns.svc.cluster.local. 5 IN AAAA fd00:244::a"}, nil, nil},
		"statefulset pod A": {"web-0.web.testns.svc.cluster.local.", A, ok,
			[]string{"web-0.web.testns.svc.cluster.local. 5 IN A 10.244.4.10"}, nil, nil},
		"statefulset pod AAAA": {"web-0.web.testns.svc.cluster.local.", AAAA, ok,
			[]string{"web-0.web.testns.svc.cluster.local. 5 IN AAAA fd00:244::a"}, nil, nil},
		"statefulset not-ready pod": {"web-2.web.testns.svc.cluster.local.", A, nx, nil, nil, neg},
		"statefulset SRV one per endpoint": {"_http._tcp.web.testns.svc.cluster.local.", SRV, ok,
			[]string{
				"_http._tcp.web.testns.svc.cluster.local. 5 IN SRV 0 33 8080 web-0.web.testns.svc.cluster.local.",
				"_http._tcp.web.testns.svc.cluster.local. 5 IN SRV 0 33 8080 web-1.web.testns.svc.cluster.local.",
			},
			[]string{
				"web-0.web.testns.svc.cluster.local. 5 IN A 10.244.4.10",
				"web-0.web.testns.svc.cluster.local. 5 IN AAAA fd00:244::a",
				"web-1.web.testns.svc.cluster.local. 5 IN A 10.244.4.11",
			}, nil},
		"SRV of one endpoint": {"web-1.web.testns.svc.cluster.local.", SRV, ok,
			[]string{"web-1.web.testns.svc.cluster.local. 5 IN SRV 0 100 8080 web-1.web.testns.svc.cluster.local."},
			[]string{"web-1.web.testns.svc.cluster.local. 5 IN A 10.244.4.11"}, nil},
		"publishNotReadyAddresses": {"unready-ok.testns.svc.cluster.local.", A, ok,
			[]string{"unready-ok.testns.svc.cluster.local. 5 IN A 10.244.5.5"}, nil, nil},
		"headless without endpoints": {"empty-headless.testns.svc.cluster.local.", A, nx, nil, nil, neg},

		// ExternalName: the seed's my-service in prod.
		"externalname A": {"my-service.prod.svc.cluster.local.", A, ok,
			[]string{"my-service.prod.svc.cluster.local. 5 IN CNAME my.database.example.com."}, nil, nil},
		"externalname AAAA": {"my-service.prod.svc.cluster.local.", AAAA, ok,
			[]string{"my-service.prod.svc.cluster.local. 5 IN CNAME my.database.example.com."}, nil, nil},
		"externalname CNAME": {"my-service.prod.svc.cluster.local.", CNAME, ok,
			[]string{"my-service.prod.svc.cluster.local. 5 IN CNAME my.database.example.com."}, nil, nil},
		"externalname SRV nodata": {"my-service.prod.svc.cluster.local.", SRV, ok, nil, nil, neg},
		"externalname with port":  {"_http._tcp.my-service.prod.svc.cluster.local.", SRV, nx, nil, nil, neg},
		"externalname in zone is chased": {"ext-in.testns.svc.cluster.local.", A, ok,
			[]string{
				"ext-in.testns.svc.cluster.local. 5 IN CNAME my-service.my-ns.svc.cluster.local.",
				"my-service.my-ns.svc.cluster.local. 5 IN A 10.96.171.239",
			}, nil, nil},
		"externalname in zone, no AAAA":   {"ext-in.testns.svc.cluster.local.", AAAA, ok, nil, nil, neg},
		"externalname that is an address": {"ext-ip.testns.svc.cluster.local.", A, nx, nil, nil, neg},

		// Pods ("pods insecure").
		"pod A":               {"10-244-1-10.default.pod.cluster.local.", A, ok, []string{"10-244-1-10.default.pod.cluster.local. 5 IN A 10.244.1.10"}, nil, nil},
		"pod A without a pod": {"10-1-2-3.testns.pod.cluster.local.", A, ok, []string{"10-1-2-3.testns.pod.cluster.local. 5 IN A 10.1.2.3"}, nil, nil},
		"pod AAAA":            {"fd00-244--9.testns.pod.cluster.local.", AAAA, ok, []string{"fd00-244--9.testns.pod.cluster.local. 5 IN AAAA fd00:244::9"}, nil, nil},
		"pod v4 AAAA nodata":  {"10-244-1-10.default.pod.cluster.local.", AAAA, ok, nil, nil, neg},
		"pod bad address":     {"10-244-1-300.default.pod.cluster.local.", A, nx, nil, nil, neg},
		"pod not dashed":      {"busybox1.default.pod.cluster.local.", A, nx, nil, nil, neg},
		"pod unknown ns":      {"10-244-1-10.nope.pod.cluster.local.", A, nx, nil, nil, neg},
		"pod too deep":        {"x.10-244-1-10.default.pod.cluster.local.", A, nx, nil, nil, neg},

		// Reverse.
		"PTR clusterIP": {"239.171.96.10.in-addr.arpa.", PTR, ok,
			[]string{"239.171.96.10.in-addr.arpa. 5 IN PTR my-service.my-ns.svc.cluster.local."}, nil, nil},
		"PTR clusterIP v6": {"5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa.", PTR, ok,
			[]string{"5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa. 5 IN PTR dual.testns.svc.cluster.local."}, nil, nil},
		"PTR endpoint hostname": {"10.1.244.10.in-addr.arpa.", PTR, ok,
			[]string{"10.1.244.10.in-addr.arpa. 5 IN PTR busybox-1.default-subdomain.default.svc.cluster.local."}, nil, nil},
		"PTR endpoint dashed": {"3.3.244.10.in-addr.arpa.", PTR, ok,
			[]string{"3.3.244.10.in-addr.arpa. 5 IN PTR 10-244-3-3.my-service.default.svc.cluster.local."}, nil, nil},
		"PTR endpoint v6": {"a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.4.4.2.0.0.0.d.f.ip6.arpa.", PTR, ok,
			[]string{"a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.4.4.2.0.0.0.d.f.ip6.arpa. 5 IN PTR web-0.web.testns.svc.cluster.local."}, nil, nil},
		"PTR pod": {"9.9.244.10.in-addr.arpa.", PTR, ok,
			[]string{"9.9.244.10.in-addr.arpa. 5 IN PTR 10-244-9-9.testns.pod.cluster.local."}, nil, nil},
		"PTR free service address": {"77.0.96.10.in-addr.arpa.", PTR, nx, nil, nil,
			[]string{"10.in-addr.arpa. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 5"}},

		// Structure: NXDOMAIN against NODATA.
		"apex A":                 {"cluster.local.", A, ok, nil, nil, neg},
		"apex SOA":               {"cluster.local.", SOA, ok, []string{soa}, nil, nil},
		"apex NS":                {"cluster.local.", NS, ok, []string{"cluster.local. 5 IN NS kube-dns.kube-system.svc.cluster.local."}, []string{"kube-dns.kube-system.svc.cluster.local. 5 IN A 10.96.0.10"}, nil},
		"ns.dns A":               {"ns.dns.cluster.local.", A, ok, []string{"ns.dns.cluster.local. 5 IN A 10.96.0.10"}, nil, nil},
		"svc":                    {"svc.cluster.local.", A, ok, nil, nil, neg},
		"pod":                    {"pod.cluster.local.", A, ok, nil, nil, neg},
		"namespace":              {"my-ns.svc.cluster.local.", A, ok, nil, nil, neg},
		"pod namespace":          {"my-ns.pod.cluster.local.", A, ok, nil, nil, neg},
		"unknown namespace":      {"nope.svc.cluster.local.", A, nx, nil, nil, neg},
		"unknown service":        {"nope.my-ns.svc.cluster.local.", A, nx, nil, nil, neg},
		"service in other ns":    {"my-service.testns.svc.cluster.local.", A, nx, nil, nil, neg},
		"neither svc nor pod":    {"foo.cluster.local.", A, nx, nil, nil, neg},
		"too many labels":        {"a.b.c.my-service.my-ns.svc.cluster.local.", A, nx, nil, nil, neg},
		"wildcards are literal":  {"*.my-ns.svc.cluster.local.", A, nx, nil, nil, neg},
		"SOA below apex, exists": {"my-service.my-ns.svc.cluster.local.", SOA, ok, nil, nil, neg},
		"SOA below apex, absent": {"nope.my-ns.svc.cluster.local.", SOA, nx, nil, nil, neg},
		"NS below apex":          {"my-ns.svc.cluster.local.", NS, ok, nil, nil, neg},
		"TXT absent":             {"nope.my-ns.svc.cluster.local.", TXT, nx, nil, nil, neg},

		// Names compare case-insensitively; answers keep the question's case.
		"mixed case A": {"My-Service.MY-NS.svc.Cluster.Local.", A, ok,
			[]string{"My-Service.MY-NS.svc.Cluster.Local. 5 IN A 10.96.171.239"}, nil, nil},
		"mixed case SRV": {"_HTTP._Tcp.my-service.my-ns.SVC.cluster.LOCAL.", SRV, ok,
			[]string{"_HTTP._Tcp.my-service.my-ns.SVC.cluster.LOCAL. 5 IN SRV 0 100 80 my-service.my-ns.svc.cluster.LOCAL."},
			[]string{"my-service.my-ns.svc.cluster.LOCAL. 5 IN A 10.96.171.239"}, nil},
		"mixed case NXDOMAIN": {"Nope.svc.CLUSTER.local.", A, nx, nil, nil,
			[]string{"CLUSTER.local. 5 IN SOA ns.dns.CLUSTER.local. hostmaster.CLUSTER.local. 1700000000 7200 1800 86400 5"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) { check(t, c, tc) })
	}
}

func TestNotOurs(t *testing.T) {
	c := newTestCluster(t)
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"www.example.com.", dns.TypeA},
		{"local.", dns.TypeSOA},
		{"xcluster.local.", dns.TypeA},
		{"4.3.2.1.in-addr.arpa.", dns.TypePTR},     // outside ServiceCIDRs, unknown
		{"239.171.96.10.in-addr.arpa.", dns.TypeA}, // reverse names answer PTR only
		{"96.10.in-addr.arpa.", dns.TypePTR},       // not a full address
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.", dns.TypePTR},
	} {
		if resp, ok := c.Resolve(query(q.name, q.qtype)); ok {
			t.Errorf("%s %s: answered %v, want not ours", q.name, dns.TypeToString[q.qtype], resp)
		}
	}
	if _, ok := c.Resolve(&dns.Msg{}); ok {
		t.Errorf("a message without a question was answered")
	}
}

func TestServfailBeforeSync(t *testing.T) {
	c := New(Config{Zone: "cluster.local", ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")}})
	c.UpdateNamespace(nil, ns("my-ns"))
	c.UpdateService(nil, svc("my-ns", "my-service", clusterIPs("10.96.171.239"), svcPort("http", corev1.ProtocolTCP, 80)))
	for _, q := range []string{"my-service.my-ns.svc.cluster.local.", "nope.my-ns.svc.cluster.local.", "239.171.96.10.in-addr.arpa."} {
		qtype := dns.TypeA
		if strings.HasSuffix(q, ".arpa.") {
			qtype = dns.TypePTR
		}
		resp, ok := c.Resolve(query(q, qtype))
		if !ok || resp.Rcode != dns.RcodeServerFailure || len(resp.Answer) != 0 {
			t.Errorf("%s before sync: ok=%v resp=%v, want SERVFAIL", q, ok, resp)
		}
	}
	if c.Synced() {
		t.Fatal("Synced before SetSynced")
	}
	c.SetSynced()
	resp, _ := c.Resolve(query("my-service.my-ns.svc.cluster.local.", dns.TypeA))
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Errorf("after sync: %v", resp)
	}
}

func TestRefusesZoneTransfer(t *testing.T) {
	c := newTestCluster(t)
	resp, ok := c.Resolve(query("cluster.local.", dns.TypeAXFR))
	if !ok || resp.Rcode != dns.RcodeRefused {
		t.Errorf("AXFR: ok=%v %v", ok, resp)
	}
}

// TestUpdates drives the informer paths: every step changes the cluster
// and then asks the questions whose answers that change moves.
func TestUpdates(t *testing.T) {
	c := newTestCluster(t)
	v4 := discoveryv1.AddressTypeIPv4
	httpPort := []discoveryv1.EndpointPort{epPort("http", corev1.ProtocolTCP, 8080)}
	neg := []string{soa}
	steps := []struct {
		name   string
		change func()
		checks []tcase
	}{
		{
			name: "web-1 goes not ready",
			change: func() {
				c.UpdateEndpointSlice(nil, epSlice("testns", "web-a", "web", v4, httpPort,
					ep{addrs: []string{"10.244.4.10"}, hostname: "web-0", ready: true},
					ep{addrs: []string{"10.244.4.11"}, hostname: "web-1", ready: false}))
			},
			checks: []tcase{
				{"web.testns.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"web.testns.svc.cluster.local. 5 IN A 10.244.4.10"}, nil, nil},
				{"web-1.web.testns.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil, nil, neg},
			},
		},
		{
			name: "web's last slices go",
			change: func() {
				for _, n := range []string{"web-a", "web-b", "web-c"} {
					c.UpdateEndpointSlice(epSlice("testns", n, "web", v4, nil), nil)
				}
			},
			checks: []tcase{
				{"web.testns.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil, nil, neg},
				{"_http._tcp.web.testns.svc.cluster.local.", dns.TypeSRV, dns.RcodeNameError, nil, nil, neg},
			},
		},
		{
			name: "my-service gets a new ClusterIP",
			change: func() {
				c.UpdateService(
					svc("my-ns", "my-service", clusterIPs("10.96.171.239"), svcPort("http", corev1.ProtocolTCP, 80)),
					svc("my-ns", "my-service", clusterIPs("10.96.171.240"), svcPort("http", corev1.ProtocolTCP, 80)))
			},
			checks: []tcase{
				{"my-service.my-ns.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"my-service.my-ns.svc.cluster.local. 5 IN A 10.96.171.240"}, nil, nil},
				{"240.171.96.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, []string{"240.171.96.10.in-addr.arpa. 5 IN PTR my-service.my-ns.svc.cluster.local."}, nil, nil},
				{"239.171.96.10.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, nil, nil,
					[]string{"10.in-addr.arpa. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 5"}},
			},
		},
		{
			name: "my-service is deleted",
			change: func() {
				c.UpdateService(svc("my-ns", "my-service", clusterIPs("10.96.171.240")), nil)
			},
			checks: []tcase{
				{"my-service.my-ns.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil, nil, neg},
				{"_http._tcp.my-service.my-ns.svc.cluster.local.", dns.TypeSRV, dns.RcodeNameError, nil, nil, neg},
				{"10-244-1-5.my-service.my-ns.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil, nil, neg},
				{"my-ns.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, nil, nil, neg},
			},
		},
		{
			name: "my-service comes back headless over its old slice",
			change: func() {
				c.UpdateService(nil, svc("my-ns", "my-service", headless(), svcPort("http", corev1.ProtocolTCP, 80)))
			},
			checks: []tcase{
				{"my-service.my-ns.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{
					"my-service.my-ns.svc.cluster.local. 5 IN A 10.244.1.5", "my-service.my-ns.svc.cluster.local. 5 IN A 10.244.2.7"}, nil, nil},
				{"5.1.244.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, []string{"5.1.244.10.in-addr.arpa. 5 IN PTR 10-244-1-5.my-service.my-ns.svc.cluster.local."}, nil, nil},
			},
		},
		{
			name:   "namespace prod is deleted",
			change: func() { c.UpdateNamespace(ns("prod"), nil) },
			checks: []tcase{
				{"my-service.prod.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil, nil, neg},
				{"prod.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil, nil, neg},
				{"10-1-2-3.prod.pod.cluster.local.", dns.TypeA, dns.RcodeNameError, nil, nil, neg},
			},
		},
		{
			name:   "the lone pod is deleted",
			change: func() { c.UpdatePod(runningPod("testns", "loner", false, "10.244.9.9"), nil) },
			checks: []tcase{
				// Not ours any more: outside the service range, unknown.
			},
		},
	}
	for _, st := range steps {
		st.change()
		for _, tc := range st.checks {
			t.Run(st.name+"/"+tc.qname, func(t *testing.T) { check(t, c, tc) })
		}
	}
	if _, ok := c.Resolve(query("9.9.244.10.in-addr.arpa.", dns.TypePTR)); ok {
		t.Errorf("PTR of a deleted pod's address is still ours")
	}
}

func TestPodsVerified(t *testing.T) {
	c := New(Config{Zone: "cluster.local", Pods: PodsVerified, Now: func() time.Time { return time.Unix(serial, 0) }})
	c.UpdateNamespace(nil, ns("default"))
	c.UpdatePod(nil, runningPod("default", "busybox1", false, "10.244.1.10"))
	c.SetSynced()
	check(t, c, tcase{"10-244-1-10.default.pod.cluster.local.", dns.TypeA, dns.RcodeSuccess,
		[]string{"10-244-1-10.default.pod.cluster.local. 5 IN A 10.244.1.10"}, nil, nil})
	check(t, c, tcase{"10-244-1-11.default.pod.cluster.local.", dns.TypeA, dns.RcodeNameError, nil, nil, []string{soa}})

	d := New(Config{Zone: "cluster.local", Pods: PodsDisabled, Now: func() time.Time { return time.Unix(serial, 0) }})
	d.UpdateNamespace(nil, ns("default"))
	d.SetSynced()
	check(t, d, tcase{"10-244-1-10.default.pod.cluster.local.", dns.TypeA, dns.RcodeNameError, nil, nil, []string{soa}})
}

func TestPodNamespace(t *testing.T) {
	c := newTestCluster(t)
	c.UpdatePod(nil, runningPod("other", "hostnet2", true, "192.168.1.11"))
	done := runningPod("testns", "done", false, "10.244.8.8")
	done.Status.Phase = corev1.PodSucceeded
	c.UpdatePod(nil, done)
	// Pods whose resolv.conf does not search the cluster's list.
	dflt := runningPod("testns", "dflt", false, "10.244.8.9")
	dflt.Spec.DNSPolicy = corev1.DNSDefault
	c.UpdatePod(nil, dflt)
	searches := runningPod("testns", "searches", false, "10.244.8.10")
	searches.Spec.DNSConfig = &corev1.PodDNSConfig{Searches: []string{"corp.example"}}
	c.UpdatePod(nil, searches)
	for _, tc := range []struct {
		ip     string
		ns     string
		wantOK bool
	}{
		{"10.244.1.10", "default", true},
		{"fd00:244::9", "testns", true},
		{"192.168.1.11", "", false}, // host network: the node's address
		{"10.244.8.8", "", false},   // finished
		{"10.244.8.9", "", false},   // dnsPolicy Default
		{"10.244.8.10", "", false},  // its own search domains
		{"10.0.0.1", "", false},
	} {
		got, ok := c.PodNamespace(netip.MustParseAddr(tc.ip))
		if got != tc.ns || ok != tc.wantOK {
			t.Errorf("PodNamespace(%s) = %q, %v; want %q, %v", tc.ip, got, ok, tc.ns, tc.wantOK)
		}
	}
}

func TestTTL(t *testing.T) {
	c := New(Config{
		Zone: "example.org", TTL: 30,
		NameserverIPs: []netip.Addr{netip.MustParseAddr("192.168.1.10")},
		Now:           func() time.Time { return time.Unix(serial, 0) },
	})
	c.UpdateNamespace(nil, ns("a"))
	c.UpdateService(nil, svc("a", "s", clusterIPs("10.96.0.1"), svcPort("", corev1.ProtocolTCP, 80)))
	c.UpdateService(nil, svc("a", "loop1", externalName("loop2.a.svc.example.org")))
	c.UpdateService(nil, svc("a", "loop2", externalName("loop1.a.svc.example.org")))
	c.SetSynced()
	// No service holds our address: the NS is ns.dns.<zone> itself.
	check(t, c, tcase{"example.org.", dns.TypeNS, dns.RcodeSuccess,
		[]string{"example.org. 30 IN NS ns.dns.example.org."}, []string{"ns.dns.example.org. 30 IN A 192.168.1.10"}, nil})
	check(t, c, tcase{"ns.dns.example.org.", dns.TypeA, dns.RcodeSuccess, []string{"ns.dns.example.org. 30 IN A 192.168.1.10"}, nil, nil})
	check(t, c, tcase{"dns.example.org.", dns.TypeA, dns.RcodeSuccess, nil, nil,
		[]string{"example.org. 30 IN SOA ns.dns.example.org. hostmaster.example.org. 1700000000 7200 1800 86400 30"}})
	// A CNAME loop inside the zone ends in NODATA rather than a loop.
	check(t, c, tcase{"loop1.a.svc.example.org.", dns.TypeA, dns.RcodeSuccess, nil, nil,
		[]string{"example.org. 30 IN SOA ns.dns.example.org. hostmaster.example.org. 1700000000 7200 1800 86400 30"}})
	check(t, c, tcase{"s.a.svc.example.org.", dns.TypeA, dns.RcodeSuccess, []string{"s.a.svc.example.org. 30 IN A 10.96.0.1"}, nil, nil})
	check(t, c, tcase{"x.a.svc.example.org.", dns.TypeA, dns.RcodeNameError, nil, nil,
		[]string{"example.org. 30 IN SOA ns.dns.example.org. hostmaster.example.org. 1700000000 7200 1800 86400 30"}})
}

// TestConcurrentUpdates runs informer writes against many resolvers; run
// with -race. Every answer must be one of the two states the service
// flips between.
func TestConcurrentUpdates(t *testing.T) {
	c := newTestCluster(t)
	v4 := discoveryv1.AddressTypeIPv4
	ports := []discoveryv1.EndpointPort{epPort("http", corev1.ProtocolTCP, 80)}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := query("flip.testns.svc.cluster.local.", dns.TypeA)
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, ok := c.Resolve(req)
				if !ok {
					t.Error("not ours")
					return
				}
				if resp.Rcode == dns.RcodeSuccess && len(resp.Answer) != 1 && len(resp.Answer) != 2 {
					t.Errorf("answer %v", resp.Answer)
					return
				}
			}
		}()
	}
	c.UpdateService(nil, svc("testns", "flip", headless(), svcPort("http", corev1.ProtocolTCP, 80)))
	for i := range 500 {
		eps := []ep{{addrs: []string{"10.244.7.1"}, ready: true}}
		if i%2 == 0 {
			eps = append(eps, ep{addrs: []string{fmt.Sprintf("10.244.7.%d", 2+i%200)}, ready: true})
		}
		c.UpdateEndpointSlice(nil, epSlice("testns", "flip-1", "flip", v4, ports, eps...))
		c.UpdatePod(nil, runningPod("testns", "p", false, fmt.Sprintf("10.244.8.%d", i%250)))
	}
	close(stop)
	wg.Wait()
}

// FuzzResolve asks arbitrary names of every common type: Resolve must not
// panic, and what it answers must be a well-formed reply to the question.
func FuzzResolve(f *testing.F) {
	c := newTestCluster(f)
	for _, s := range []string{
		"my-service.my-ns.svc.cluster.local.", "_http._tcp.web.testns.svc.cluster.local.",
		"10-244-1-10.default.pod.cluster.local.", "fd00-244--9.testns.pod.cluster.local.",
		"239.171.96.10.in-addr.arpa.", "a.b.c.d.e.f.svc.cluster.local.", "..cluster.local.", "cluster.local.",
		"5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa.",
	} {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypePTR, dns.TypeTXT} {
			f.Add(s, qt)
		}
	}
	f.Fuzz(func(t *testing.T, name string, qtype uint16) {
		req := query(name, qtype)
		if _, err := req.Pack(); err != nil {
			return // no such question can arrive off the wire
		}
		resp, ok := c.Resolve(req)
		if !ok {
			return
		}
		if resp.Id != req.Id || len(resp.Question) != 1 || !resp.Response {
			t.Fatalf("not a reply: %v", resp)
		}
		if resp.Rcode == dns.RcodeNameError && len(resp.Answer) != 0 {
			t.Fatalf("NXDOMAIN with answers: %v", resp)
		}
		if _, err := resp.Pack(); err != nil {
			t.Fatalf("reply does not pack: %v\n%v", err, resp)
		}
	})
}

// TestGenerationChangesWithEveryUpdate: the server reuses a packed answer
// while Generation is unchanged, so every kind of update must change it.
func TestGenerationChangesWithEveryUpdate(t *testing.T) {
	c := New(Config{Zone: "cluster.local"})
	last := c.Generation()
	step := func(what string, f func()) {
		t.Helper()
		f()
		if g := c.Generation(); g == last {
			t.Errorf("%s left the generation at %d", what, g)
		} else {
			last = g
		}
	}
	s := svc("default", "web", clusterIPs("10.0.0.5"), svcPort("http", corev1.ProtocolTCP, 80))
	es := epSlice("default", "web-a", "web", discoveryv1.AddressTypeIPv4, nil, ep{addrs: []string{"10.244.0.5"}, ready: true})
	p := runningPod("default", "p", false, "10.244.0.5")
	step("SetSynced", c.SetSynced)
	step("namespace add", func() { c.UpdateNamespace(nil, ns("default")) })
	step("service add", func() { c.UpdateService(nil, s) })
	step("service update", func() { c.UpdateService(s, s) })
	step("slice add", func() { c.UpdateEndpointSlice(nil, es) })
	step("slice delete", func() { c.UpdateEndpointSlice(es, nil) })
	step("pod add", func() { c.UpdatePod(nil, p) })
	step("pod delete", func() { c.UpdatePod(p, nil) })
	step("service delete", func() { c.UpdateService(s, nil) })
	step("namespace delete", func() { c.UpdateNamespace(ns("default"), nil) })
}

// Endpoints repeated within a slice or across the slices of a service are
// answered once; the first slice's list is used as it is.
func TestEndpointDedupe(t *testing.T) {
	c := New(Config{})
	httpPort := []discoveryv1.EndpointPort{epPort("http", corev1.ProtocolTCP, 80)}
	c.UpdateService(nil, svc("ns", "h", headless(), svcPort("http", corev1.ProtocolTCP, 80)))
	c.UpdateEndpointSlice(nil, epSlice("ns", "h-a", "h", discoveryv1.AddressTypeIPv4, httpPort,
		ep{addrs: []string{"10.1.0.1", "10.1.0.1"}, ready: true},
		ep{addrs: []string{"10.1.0.2"}, ready: true},
		ep{addrs: []string{"10.1.0.2"}, hostname: "named", ready: true}))
	c.UpdateEndpointSlice(nil, epSlice("ns", "h-b", "h", discoveryv1.AddressTypeIPv4, httpPort,
		ep{addrs: []string{"10.1.0.1"}, ready: true},
		ep{addrs: []string{"10.1.0.3"}, ready: true},
		ep{addrs: []string{"10.1.0.2"}, ready: true}))
	var got []string
	for _, g := range c.endpoints[keyOf("ns", "h")] {
		for _, e := range g.eps {
			got = append(got, e.host+"="+e.addr.String())
		}
	}
	want := []string{"10-1-0-1=10.1.0.1", "10-1-0-2=10.1.0.2", "named=10.1.0.2", "10-1-0-3=10.1.0.3"}
	if !slices.Equal(got, want) {
		t.Errorf("endpoints %v, want %v", got, want)
	}
	if a := c.slices[sliceKey{"ns", "h-a"}].eps; &a[0] != &c.endpoints[keyOf("ns", "h")][0].eps[0] {
		t.Error("the first slice's endpoints were copied")
	}
	if b := c.slices[sliceKey{"ns", "h-b"}].eps; len(b) != 3 {
		t.Errorf("slice h-b keeps %d endpoints, want its 3", len(b))
	}
}

// ptrIndex agrees with a plain sorted list per address through random adds
// and drops, and keeps an address in one of its maps only.
func TestPtrIndex(t *testing.T) {
	x := ptrIndex{one: map[netip.Addr]epRef{}, more: map[netip.Addr][]epRef{}}
	want := map[netip.Addr][]epRef{}
	rng := rand.New(rand.NewPCG(1, 2))
	addrs := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}
	refs := []epRef{{svcKey{"a", "s"}, "h1"}, {svcKey{"a", "s"}, "h2"}, {svcKey{"b", "s"}, "h1"}, {svcKey{"a", "t"}, "h0"}}
	for step := range 2000 {
		a, r := addrs[rng.IntN(len(addrs))], refs[rng.IntN(len(refs))]
		l := want[a]
		i, found := slices.BinarySearchFunc(l, r, refCmp)
		if rng.IntN(2) == 0 {
			x.add(a, r)
			if !found {
				want[a] = slices.Insert(l, i, r)
			}
		} else {
			x.drop(a, r)
			if found {
				want[a] = slices.Delete(l, i, i+1)
			}
		}
		for _, a := range addrs {
			_, inOne := x.one[a]
			_, inMore := x.more[a]
			if got := x.get(a); !slices.Equal(got, want[a]) || (inOne && inMore) || (inMore && len(want[a]) < 2) {
				t.Fatalf("step %d, %s: got %v (one %v, more %v), want %v", step, a, got, inOne, inMore, want[a])
			}
		}
	}
}

func TestDashed(t *testing.T) {
	for in, want := range map[string]string{"10.1.2.3": "10-1-2-3", "fd00::a": "fd00--a", "fd00::": "fd00--0", "::1": "--1"} {
		if got := dashed(netip.MustParseAddr(in)); got != want {
			t.Errorf("dashed(%s) = %q, want %q", in, got, want)
		}
	}
}
