package records

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// benchCluster has n services over 100 namespaces; every tenth is headless
// with three ready endpoints, the rest ClusterIP with two named ports and
// two endpoints.
func benchCluster(b *testing.B, n int) *Cluster {
	c := New(Config{Zone: "cluster.local"})
	for i := range 100 {
		c.UpdateNamespace(nil, ns(fmt.Sprintf("ns-%d", i)))
	}
	ports := []discoveryv1.EndpointPort{epPort("http", corev1.ProtocolTCP, 8080), epPort("metrics", corev1.ProtocolTCP, 9090)}
	for i := range n {
		namespace, name := fmt.Sprintf("ns-%d", i%100), fmt.Sprintf("svc-%d", i)
		ip := func(base, k int) string { return fmt.Sprintf("10.%d.%d.%d", base+(i>>16)&0xff, (i>>8)&0xff, i&0xff+k) }
		if i%10 == 0 {
			c.UpdateService(nil, svc(namespace, name, headless(), svcPort("http", corev1.ProtocolTCP, 80)))
			c.UpdateEndpointSlice(nil, epSlice(namespace, name+"-a", name, discoveryv1.AddressTypeIPv4, ports[:1],
				ep{addrs: []string{ip(200, 0)}, hostname: "h-0", ready: true},
				ep{addrs: []string{ip(210, 0)}, hostname: "h-1", ready: true},
				ep{addrs: []string{ip(220, 0)}, ready: true}))
			continue
		}
		c.UpdateService(nil, svc(namespace, name, clusterIPs(ip(96, 0)),
			svcPort("http", corev1.ProtocolTCP, 80), svcPort("metrics", corev1.ProtocolTCP, 9090)))
		c.UpdateEndpointSlice(nil, epSlice(namespace, name+"-a", name, discoveryv1.AddressTypeIPv4, ports,
			ep{addrs: []string{ip(100, 0)}, ready: true}, ep{addrs: []string{ip(110, 0)}, ready: true}))
	}
	c.SetSynced()
	return c
}

func BenchmarkResolve(b *testing.B) {
	const n = 10000
	c := benchCluster(b, n)
	kinds := []struct {
		name  string
		qname func(i int) string
		qtype uint16
	}{
		{"A-clusterip", func(i int) string { return fmt.Sprintf("svc-%d.ns-%d.svc.cluster.local.", i|1, (i|1)%100) }, dns.TypeA},
		{"A-headless", func(i int) string { return fmt.Sprintf("svc-%d.ns-%d.svc.cluster.local.", i/10*10, (i/10*10)%100) }, dns.TypeA},
		{"SRV-clusterip", func(i int) string {
			return fmt.Sprintf("_http._tcp.svc-%d.ns-%d.svc.cluster.local.", i|1, (i|1)%100)
		}, dns.TypeSRV},
		{"SRV-headless", func(i int) string {
			return fmt.Sprintf("_http._tcp.svc-%d.ns-%d.svc.cluster.local.", i/10*10, (i/10*10)%100)
		}, dns.TypeSRV},
		{"NXDOMAIN", func(i int) string { return fmt.Sprintf("nope-%d.ns-%d.svc.cluster.local.", i, i%100) }, dns.TypeA},
		{"PTR", func(i int) string { return fmt.Sprintf("%d.%d.96.10.in-addr.arpa.", (i|1)&0xff, ((i|1)>>8)&0xff) }, dns.TypePTR},
	}
	for _, k := range kinds {
		reqs := make([]*dns.Msg, 1024)
		for i := range reqs {
			reqs[i] = query(k.qname((i*7919)%n), k.qtype)
		}
		if resp, ok := c.Resolve(reqs[1]); !ok || (k.name != "NXDOMAIN" && len(resp.Answer) == 0) {
			b.Fatalf("%s: bad answer %v", k.name, resp)
		}
		b.Run(k.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c.Resolve(reqs[i&1023])
				i++
			}
		})
		b.Run(k.name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					c.Resolve(reqs[i&1023])
					i++
				}
			})
		})
	}
}
