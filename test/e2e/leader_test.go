package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// TestControllerLeaderHandOver runs two `portal server`s with controllers on
// one etcd (served by a third, API-only server) and checks that only one
// leads, and that SIGKILLing the leader hands the controllers to the other
// within 15 s.
func TestControllerLeaderHandOver(t *testing.T) {
	etcdHost := startServer(t, "--disable-controllers")
	etcd := fmt.Sprintf("http://127.0.0.1:%d", etcdHost.etcdPort)
	a := startServer(t, "--etcd-servers", etcd)
	b := startServer(t, "--etcd-servers", etcd)
	ctx := context.Background()
	cl := etcdHost.client()

	leader := func() string {
		l, err := cl.CoordinationV1().Leases("kube-system").Get(ctx, "portal-controller-manager", metav1.GetOptions{})
		if err != nil {
			return ""
		}
		return ptr.Deref(l.Spec.HolderIdentity, "")
	}
	var first string
	waitFor(t, 20*time.Second, "a controller manager leads", func() bool { first = leader(); return first != "" })

	// Exactly one of the two logs that it started controllers.
	starts := 0
	for _, s := range []*server{a, b} {
		if strings.Contains(s.log.String(), "Starting controllers") {
			starts++
		}
	}
	if starts != 1 {
		t.Fatalf("%d servers started controllers, want 1\nA:\n%s\nB:\n%s", starts, a.log.String(), b.log.String())
	}
	leaderSrv, other := a, b
	if !strings.Contains(a.log.String(), "Starting controllers") {
		leaderSrv, other = b, a
	}
	co := other.client()
	createServiceWithPod(t, co, "before")
	waitSlice(t, co, "before", 10*time.Second)

	leaderSrv.kill9()
	killed := time.Now()
	createServiceWithPod(t, co, "after")
	waitSlice(t, co, "after", 15*time.Second)
	t.Logf("controllers handed over %v after SIGKILL of the leader", time.Since(killed).Round(100*time.Millisecond))
	waitFor(t, 5*time.Second, "lease moved", func() bool { l := leader(); return l != "" && l != first })
}

func createServiceWithPod(t *testing.T, c kubernetes.Interface, name string) {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{"app": name}
	if _, err := c.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := c.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The scheduler may write the pod's status (no node fits) meanwhile.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := c.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.PodIP, p.Status.PodIPs = "10.42.0.5", []corev1.PodIP{{IP: "10.42.0.5"}}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		_, err = c.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func waitSlice(t *testing.T, c kubernetes.Interface, svc string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "EndpointSlice of "+svc, func() bool {
		l, err := c.DiscoveryV1().EndpointSlices("default").List(context.Background(), metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
		return err == nil && len(l.Items) == 1 && len(l.Items[0].Endpoints) == 1
	})
}
