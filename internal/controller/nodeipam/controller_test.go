package nodeipam

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portal-net/portal/internal/apitest"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
)

// start runs a controller until the test ends or stop is called.
func start(t *testing.T, client kubernetes.Interface, rec record.EventRecorder, opts Options) (stop func()) {
	t.Helper()
	f := informers.NewSharedInformerFactory(client, 0)
	c := New(client, f, rec, opts)
	ctx, cancel := context.WithCancel(context.Background())
	f.Start(ctx.Done())
	done := make(chan struct{})
	go func() { c.Run(ctx, 2); close(done) }()
	var once bool
	stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		<-done
		f.Shutdown()
	}
	t.Cleanup(stop)
	return stop
}

func createNode(t *testing.T, client kubernetes.Interface, name string, podCIDRs ...string) {
	t.Helper()
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if len(podCIDRs) > 0 {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = podCIDRs[0], podCIDRs
	}
	if _, err := client.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitCIDRs waits until node carries a pod CIDR and returns spec.podCIDRs.
func waitCIDRs(t *testing.T, client kubernetes.Interface, name string) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n, err := client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && len(n.Spec.PodCIDRs) > 0 {
			if n.Spec.PodCIDR != n.Spec.PodCIDRs[0] {
				t.Fatalf("node %s: podCIDR %q does not match podCIDRs %v", name, n.Spec.PodCIDR, n.Spec.PodCIDRs)
			}
			return n.Spec.PodCIDRs
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("node %s got no pod CIDR", name)
	return nil
}

func waitEvent(t *testing.T, rec *record.FakeRecorder, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-rec.Events:
			if strings.Contains(e, want) {
				return
			}
		case <-timeout:
			t.Fatalf("no event containing %q", want)
		}
	}
}

func TestAllocationAgainstAPIServer(t *testing.T) {
	s := apitest.Start(t)
	ctx := context.Background()
	client := s.Client
	// Four /24 blocks; node-0 already holds the first before the
	// controller starts.
	opts := Options{ClusterCIDR: "10.42.0.0/22", NodeMaskSize: 24}
	createNode(t, client, "node-0", "10.42.0.0/24")
	rec := record.NewFakeRecorder(100)
	stop := start(t, client, rec, opts)

	got := map[string]string{"node-0": "10.42.0.0/24"}
	for _, name := range []string{"node-1", "node-2"} {
		createNode(t, client, name)
		got[name] = waitCIDRs(t, client, name)[0]
	}
	if got["node-1"] != "10.42.1.0/24" || got["node-2"] != "10.42.2.0/24" {
		t.Fatalf("assignments = %v; want node-1 10.42.1.0/24, node-2 10.42.2.0/24 (node-0's block skipped)", got)
	}

	// A restarted controller re-learns the used blocks from the nodes.
	stop()
	rec = record.NewFakeRecorder(100)
	start(t, client, rec, opts)
	createNode(t, client, "node-3")
	if c := waitCIDRs(t, client, "node-3"); c[0] != "10.42.3.0/24" {
		t.Fatalf("node-3 after restart got %v, want the only free block 10.42.3.0/24", c)
	}
	for name, want := range got {
		if c := waitCIDRs(t, client, name); c[0] != want {
			t.Fatalf("node %s changed from %s to %v after restart", name, want, c)
		}
	}

	// The range is full: an event, and no CIDR.
	createNode(t, client, "node-4")
	waitEvent(t, rec, "Normal CIDRNotAvailable Node node-4 status is now: CIDRNotAvailable")
	if n, _ := client.CoreV1().Nodes().Get(ctx, "node-4", metav1.GetOptions{}); len(n.Spec.PodCIDRs) > 0 {
		t.Fatalf("node-4 got %v from a full range", n.Spec.PodCIDRs)
	}

	// Deleting a node frees its block for the waiting node.
	if err := client.CoreV1().Nodes().Delete(ctx, "node-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if c := waitCIDRs(t, client, "node-4"); c[0] != "10.42.1.0/24" {
		t.Fatalf("node-4 got %v, want node-1's freed block 10.42.1.0/24", c)
	}
}

func TestDualStack(t *testing.T) {
	client := fake.NewClientset()
	start(t, client, record.NewFakeRecorder(10), Options{ClusterCIDR: "10.42.0.0/16,fd00:42::/56"})
	createNode(t, client, "a")
	createNode(t, client, "b")
	a, b := waitCIDRs(t, client, "a"), waitCIDRs(t, client, "b")
	all := append(slices.Clone(a), b...)
	slices.Sort(all)
	want := []string{"10.42.0.0/24", "10.42.1.0/24", "fd00:42:0:1::/64", "fd00:42::/64"}
	if !slices.Equal(all, want) {
		t.Fatalf("a=%v b=%v; want one IPv4 /24 and one IPv6 /64 each, all distinct: %v", a, b, want)
	}
	if !strings.Contains(a[0], ".") || !strings.Contains(a[1], ":") {
		t.Fatalf("a=%v: want IPv4 first, as in the cluster CIDR", a)
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		opts Options
		ok   bool
	}{
		{Options{}, true},
		{Options{ClusterCIDR: "10.42.0.0/16,fd00::/48", NodeMaskSizeIPv6: 64}, true},
		{Options{ClusterCIDR: "10.42.0.0/16,10.43.0.0/16"}, false},
		{Options{ClusterCIDR: "10.42.0.0/16", NodeMaskSize: 8}, false},
		{Options{ClusterCIDR: "not-a-cidr"}, false},
		{Options{ClusterCIDR: "10.0.0.0/8,fd00::/48,10.1.0.0/16"}, false},
	}
	for _, tt := range tests {
		if err := tt.opts.Validate(); (err == nil) != tt.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tt.opts, err, tt.ok)
		}
	}
}
