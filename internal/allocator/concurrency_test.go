package allocator

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/portal-net/portal/internal/allocator/etcdtest"
)

// Two allocator pairs on one etcd stand for two API servers. One follows
// etcd with a watch, the other relies on lists and lost races, so both
// freshness paths are exercised under contention.
func TestConcurrentAllocationAcrossServers(t *testing.T) {
	cli, _ := etcdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store := NewEtcdStore(cli)
	ipRange := mustIPRange(t, "10.0.0.0/24")
	portRange, _ := ParsePortRange("30000-32767")
	type server struct {
		ips   *ClusterIPAllocator
		ports *PortAllocator
	}
	var servers []server
	for i := 0; i < 2; i++ {
		servers = append(servers, server{
			ips:   NewClusterIPAllocator(store, DefaultPrefix, ipRange, Options{}),
			ports: NewPortAllocator(store, DefaultPrefix, portRange, Options{}),
		})
	}
	runCtx, stopRun := context.WithCancel(ctx)
	var runners sync.WaitGroup
	runners.Go(func() { servers[0].ips.Run(runCtx) })
	runners.Go(func() { servers[0].ports.Run(runCtx) })
	defer func() { stopRun(); runners.Wait() }()

	const n = 200
	ips := make([]string, n)
	ports := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Go(func() {
			srv := servers[i%2]
			owner := Owner{Namespace: "default", Name: fmt.Sprintf("svc-%d", i)}
			ip, err := srv.ips.AllocateNext(ctx, owner)
			if err != nil {
				errs[i] = err
				return
			}
			ips[i] = ip.String()
			ports[i], errs[i] = srv.ports.AllocateNext(ctx, owner)
		})
	}
	wg.Wait()

	seenIP, seenPort := map[string]int{}, map[int]int{}
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatalf("create %d: %v", i, errs[i])
		}
		if j, dup := seenIP[ips[i]]; dup {
			t.Fatalf("IP %s handed to %d and %d", ips[i], j, i)
		}
		if j, dup := seenPort[ports[i]]; dup {
			t.Fatalf("port %d handed to %d and %d", ports[i], j, i)
		}
		seenIP[ips[i]], seenPort[ports[i]] = i, i
	}
	// etcd agrees: one key per allocation, owned by the service that got it.
	stored, _, err := store.List(ctx, "/registry/networking.k8s.io/ipaddresses/")
	if err != nil || len(stored) != n {
		t.Fatalf("etcd holds %d IPAddress keys (%v), want %d", len(stored), err, n)
	}
	for ip, i := range seenIP {
		rec := decodeIPAddress(stored["/registry/networking.k8s.io/ipaddresses/"+ip].Value)
		if rec.owner.Name != fmt.Sprintf("svc-%d", i) {
			t.Fatalf("IP %s stored for %v, handed to svc-%d", ip, rec.owner, i)
		}
	}
	storedPorts, _, err := store.List(ctx, "/registry/portal.dev/nodeports/")
	if err != nil || len(storedPorts) != n {
		t.Fatalf("etcd holds %d node port keys (%v), want %d", len(storedPorts), err, n)
	}
	// The watching allocator converges on the full picture.
	waitFor(t, func() bool { return servers[0].ips.Used() == n && servers[0].ports.Used() == n })
}
