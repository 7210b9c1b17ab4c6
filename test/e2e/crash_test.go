package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

func nodePortService(name string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{
		Type:     corev1.ServiceTypeNodePort,
		Selector: map[string]string{"app": name},
		Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
	}}
}

// uniqueAllocations checks that no two services share a ClusterIP or
// NodePort and returns them.
func uniqueAllocations(t *testing.T, c kubernetes.Interface) (ips, ports map[string]string) {
	t.Helper()
	list, err := c.CoreV1().Services("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ips, ports = map[string]string{}, map[string]string{}
	for _, s := range list.Items {
		owner := s.Namespace + "/" + s.Name
		if ip := s.Spec.ClusterIP; ip != "" && ip != "None" {
			if o, dup := ips[ip]; dup {
				t.Errorf("ClusterIP %s held by %s and %s", ip, o, owner)
			}
			ips[ip] = owner
		}
		for _, p := range s.Spec.Ports {
			if p.NodePort == 0 {
				continue
			}
			k := fmt.Sprint(p.NodePort)
			if o, dup := ports[k]; dup {
				t.Errorf("NodePort %s held by %s and %s", k, o, owner)
			}
			ports[k] = owner
		}
	}
	return ips, ports
}

// allocationRecords lists the allocator's records in etcd.
func allocationRecords(t *testing.T, s *server) (ips, ports map[string]bool) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{fmt.Sprintf("http://127.0.0.1:%d", s.etcdPort)}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ips, ports = map[string]bool{}, map[string]bool{}
	for prefix, set := range map[string]map[string]bool{"/registry/networking.k8s.io/ipaddresses/": ips, "/registry/portal.dev/nodeports/": ports} {
		resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range resp.Kvs {
			set[strings.TrimPrefix(string(kv.Key), prefix)] = true
		}
	}
	return ips, ports
}

func TestConcurrentCreatesAreUnique(t *testing.T) {
	s := startServer(t)
	c := s.client()
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := c.CoreV1().Services("default").Create(context.Background(), nodePortService(fmt.Sprintf("svc-%03d", i)), metav1.CreateOptions{})
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("create: %v", err)
		}
	}
	// Every cluster also has default/kubernetes and kube-system/kube-dns.
	const system = 2
	ips, ports := uniqueAllocations(t, c)
	if len(ips) != n+system || len(ports) != n {
		t.Errorf("%d ClusterIPs and %d NodePorts for %d services (+kubernetes, kube-dns)", len(ips), len(ports), n)
	}
	out := s.mustKubectl("get", "ipaddresses", "--no-headers")
	if got := len(strings.Split(strings.TrimSpace(out), "\n")); got != n+system {
		t.Errorf("kubectl get ipaddresses: %d rows, want %d", got, n+system)
	}
}

func TestKill9MidLoadLosesNothingAndLeaksNothing(t *testing.T) {
	s := startServer(t, "--allocation-repair-interval", "1s", "--allocation-repair-min-age", "2s")
	c := s.client()
	var acked sync.Map
	var count atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 100 && ctx.Err() == nil; i++ {
				name := fmt.Sprintf("load-%02d-%03d", w, i)
				if _, err := c.CoreV1().Services("default").Create(ctx, nodePortService(name), metav1.CreateOptions{}); err == nil {
					acked.Store(name, true)
					count.Add(1)
				}
			}
		}(w)
	}
	deadline := time.Now().Add(30 * time.Second)
	for count.Load() < 100 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	s.kill9()
	cancel()
	wg.Wait()
	if count.Load() < 100 {
		t.Fatalf("only %d creates acknowledged before the kill", count.Load())
	}

	s.restart()
	c = s.client()
	list, err := c.CoreV1().Services("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, svc := range list.Items {
		stored[svc.Name] = true
	}
	missing := 0
	acked.Range(func(k, _ any) bool {
		if !stored[k.(string)] {
			missing++
			t.Errorf("acknowledged service %s lost", k)
		}
		return true
	})
	t.Logf("%d creates acknowledged before kill -9, %d services stored after restart, %d lost", count.Load(), len(list.Items)-1, missing)

	ips, ports := uniqueAllocations(t, c)
	// Within a few repair rounds the allocator's records are exactly the
	// stored services' values: nothing leaked by creates the kill cut off.
	var recIPs, recPorts map[string]bool
	for i := 0; i < 40; i++ {
		recIPs, recPorts = allocationRecords(t, s)
		if sameKeys(recIPs, ips) && sameKeys(recPorts, ports) {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Errorf("allocations do not match stored services: %d IP records for %d IPs, %d port records for %d ports",
		len(recIPs), len(ips), len(recPorts), len(ports))
}

func sameKeys(a map[string]bool, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range b {
		if !a[k] {
			return false
		}
	}
	return true
}

func TestRestartKeepsAllocations(t *testing.T) {
	s := startServer(t)
	s.mustKubectl("create", "-f", seed("001-services.yaml"))
	before := s.mustKubectl("get", "svc", "example-app", "-o", "jsonpath={.spec.clusterIP} {.spec.ports[0].nodePort}")
	s.stop()
	s.restart()
	after := s.mustKubectl("get", "svc", "example-app", "-o", "jsonpath={.spec.clusterIP} {.spec.ports[0].nodePort}")
	if before != after {
		t.Errorf("allocations changed across a restart: %q -> %q", before, after)
	}
}
