// Package dataplanetest helps the datapaths' tests.
package dataplanetest

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/portal-net/portal/internal/proxy/dataplane"
)

// RandomWalk changes a small cluster at random, for tests that compare a
// datapath's delta syncs with full syncs of the same State. Its service
// ports share 12 endpoints, four per /24 with neighbouring last octets,
// so per-endpoint elements (hairpin sets, iptables hairpin buckets) are
// shared and counted; they come with affinity, NodePorts, Local policy,
// load-balancer source ranges, endpoints on other nodes, and external
// endpoint lists that are the cluster list, an equal copy or a part.
type RandomWalk struct {
	rnd   *rand.Rand
	pool  []netip.AddrPort
	ports map[int]dataplane.ServicePort
	base  dataplane.State
}

// NewRandomWalk starts a walk from base (its service ports are replaced)
// with a fixed seed, so failures repeat.
func NewRandomWalk(base dataplane.State) *RandomWalk {
	w := &RandomWalk{rnd: rand.New(rand.NewPCG(1, 2)), ports: map[int]dataplane.ServicePort{}, base: base}
	for i := range 12 {
		w.pool = append(w.pool, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 244, byte(i / 4), byte(2 + i%4)}), 8080))
	}
	return w
}

// Step adds, replaces or removes one of 16 service ports and returns the
// State after it; every other step it also says which ports changed since
// prev (State.Changed), as the runner does.
func (w *RandomWalk) Step(step int, prev dataplane.State) dataplane.State {
	i := w.rnd.IntN(16)
	if _, ok := w.ports[i]; ok && w.rnd.IntN(3) == 0 {
		delete(w.ports, i)
	} else {
		w.ports[i] = w.port(i)
	}
	s := w.base
	s.Services = nil
	for _, sp := range w.ports {
		s.Services = append(s.Services, sp)
	}
	dataplane.SortByName(s.Services)
	if step%2 == 1 {
		s.Changed = dataplane.ChangedNames(prev.Services, s.Services)
	}
	return s
}

func (w *RandomWalk) port(i int) dataplane.ServicePort {
	sp := dataplane.ServicePort{
		Name:     fmt.Sprintf("ns/svc%d:p/tcp", i),
		VIPs:     []netip.Addr{netip.AddrFrom4([4]byte{10, 96, 0, byte(10 + i)})},
		Protocol: []string{"tcp", "udp", "sctp"}[w.rnd.IntN(3)],
		Port:     uint16(80 + w.rnd.IntN(2)),
	}
	for _, ep := range w.pool {
		if w.rnd.IntN(3) == 0 {
			sp.Endpoints = append(sp.Endpoints, ep)
		}
	}
	switch w.rnd.IntN(4) {
	case 0:
		sp.ExternalLocal = true
		sp.ExternalEndpoints = sp.Endpoints[:len(sp.Endpoints)/2]
	case 1:
		sp.ExternalEndpoints = slices.Clone(sp.Endpoints) // equal, its own array
	default:
		sp.ExternalEndpoints = sp.Endpoints
	}
	if w.rnd.IntN(3) == 0 {
		sp.NodePort = uint16(30000 + i)
	}
	if w.rnd.IntN(4) == 0 {
		sp.Affinity, sp.AffinityTimeout = true, time.Duration(10+w.rnd.IntN(3))*time.Second
	}
	if w.rnd.IntN(5) == 0 {
		sp.LoadBalancerIPs = []netip.Addr{netip.AddrFrom4([4]byte{203, 0, 113, byte(i)})}
		sp.SourceRanges = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
	}
	for _, ep := range sp.Endpoints {
		if w.rnd.IntN(3) == 0 {
			sp.RemoteEndpoints = append(sp.RemoteEndpoints, ep.Addr())
		}
	}
	slices.SortFunc(sp.RemoteEndpoints, netip.Addr.Compare)
	sp.RemoteEndpoints = slices.Compact(sp.RemoteEndpoints)
	return sp
}
