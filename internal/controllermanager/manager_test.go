package controllermanager

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/portal-net/portal/internal/apitest"
	"github.com/portal-net/portal/internal/config"
)

// testConfig is the default configuration with short leader-election
// timings so hand-over tests finish quickly.
func testConfig() config.Controllers {
	c := config.DefaultControllers()
	c.LeaseDuration, c.RenewDeadline, c.RetryPeriod = 3*time.Second, 2*time.Second, 500*time.Millisecond
	c.NodeMonitorGracePeriod, c.NodeMonitorPeriod = 2*time.Second, 200*time.Millisecond
	return c
}

// startManager runs a manager against s until the test ends (or the
// returned cancel is called) and returns it.
func startManager(t *testing.T, s *apitest.Server, cfg config.Controllers) (*Manager, context.CancelFunc) {
	t.Helper()
	m, err := New(s.Config, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := m.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	stop := func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return m, stop
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		ok, err := cond()
		last = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: not within %s (last error: %v)", what, timeout, last)
	}
}

func createPod(t *testing.T, c kubernetes.Interface, ns, name, ip string, ready bool, node string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	p, err := c.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{
			Name: "c", Image: "nginx", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return setPodReady(t, c, p, ip, ready)
}

func setPodReady(t *testing.T, c kubernetes.Interface, p *corev1.Pod, ip string, ready bool) *corev1.Pod {
	t.Helper()
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p = p.DeepCopy()
	p.Status.Phase = corev1.PodRunning
	p.Status.PodIP = ip
	p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
	got, err := c.CoreV1().Pods(p.Namespace).UpdateStatus(context.Background(), p, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

type endpointState struct {
	ready, notReady, terminating []string
}

func sliceState(t *testing.T, c kubernetes.Interface, ns, svc string) (endpointState, int, error) {
	list, err := c.DiscoveryV1().EndpointSlices(ns).List(context.Background(), metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		return endpointState{}, 0, err
	}
	var st endpointState
	for _, s := range list.Items {
		for _, e := range s.Endpoints {
			switch {
			case ptr.Deref(e.Conditions.Terminating, false):
				st.terminating = append(st.terminating, e.Addresses[0])
			case ptr.Deref(e.Conditions.Ready, false):
				st.ready = append(st.ready, e.Addresses[0])
			default:
				st.notReady = append(st.notReady, e.Addresses[0])
			}
		}
	}
	sort.Strings(st.ready)
	sort.Strings(st.notReady)
	return st, len(list.Items), nil
}

func endpointsState(c kubernetes.Interface, ns, name string) (ready, notReady []string, err error) {
	ep, err := c.CoreV1().Endpoints(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil, nil, err
	}
	for _, ss := range ep.Subsets {
		for _, a := range ss.Addresses {
			ready = append(ready, a.IP)
		}
		for _, a := range ss.NotReadyAddresses {
			notReady = append(notReady, a.IP)
		}
	}
	sort.Strings(ready)
	sort.Strings(notReady)
	return ready, notReady, nil
}

func TestServiceEndpointsFollowPods(t *testing.T) {
	s := apitest.Start(t)
	startManager(t, s, testConfig())
	c := s.Client
	ctx := context.Background()
	_, err := c.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods := make([]*corev1.Pod, 3)
	for i := range pods {
		pods[i] = createPod(t, c, "default", fmt.Sprintf("web-%d", i), fmt.Sprintf("10.42.0.%d", 10+i), true, "node-a")
	}
	all := []string{"10.42.0.10", "10.42.0.11", "10.42.0.12"}
	eventually(t, 5*time.Second, "1 slice with 3 ready endpoints and Endpoints with 3 addresses", func() (bool, error) {
		st, n, err := sliceState(t, c, "default", "web")
		if err != nil {
			return false, err
		}
		ready, _, err := endpointsState(c, "default", "web")
		if err != nil {
			return false, err
		}
		return n == 1 && fmt.Sprint(st.ready) == fmt.Sprint(all) && fmt.Sprint(ready) == fmt.Sprint(all), nil
	})
	list, _ := c.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
	if p := list.Items[0].Ports; len(p) != 1 || *p[0].Port != 8080 || *p[0].Name != "http" {
		t.Errorf("slice ports %+v, want http 8080 (named targetPort resolved)", p)
	}

	setPodReady(t, c, pods[1], "10.42.0.11", false)
	eventually(t, 2*time.Second, "unready pod in notReadyAddresses", func() (bool, error) {
		st, _, err := sliceState(t, c, "default", "web")
		if err != nil {
			return false, err
		}
		ready, notReady, err := endpointsState(c, "default", "web")
		return err == nil && len(st.ready) == 2 && fmt.Sprint(st.notReady) == "[10.42.0.11]" &&
			len(ready) == 2 && fmt.Sprint(notReady) == "[10.42.0.11]", err
	})

	// A bound pod is deleted gracefully: it stays, terminating, until its
	// node agent confirms; the test plays that agent.
	if err := c.CoreV1().Pods("default").Delete(ctx, "web-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "deleted pod terminating in the slice and gone from Endpoints", func() (bool, error) {
		st, _, err := sliceState(t, c, "default", "web")
		if err != nil {
			return false, err
		}
		ready, _, err := endpointsState(c, "default", "web")
		return err == nil && fmt.Sprint(st.terminating) == "[10.42.0.10]" && fmt.Sprint(ready) == "[10.42.0.12]", err
	})
	if err := c.CoreV1().Pods("default").Delete(ctx, "web-0", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "terminated pod removed", func() (bool, error) {
		st, _, err := sliceState(t, c, "default", "web")
		return err == nil && len(st.terminating) == 0 && len(st.ready)+len(st.notReady) == 2, err
	})
}

func TestOnlyTheLeaderActsAndHandsOver(t *testing.T) {
	s := apitest.Start(t)
	cfg := testConfig()
	m1, stop1 := startManager(t, s, cfg)
	eventually(t, 10*time.Second, "first manager leads", func() (bool, error) { return m1.Leading(), nil })
	m2, _ := startManager(t, s, cfg)
	time.Sleep(2 * cfg.RetryPeriod)
	if m2.Leading() {
		t.Fatal("two managers lead at once")
	}
	lease, err := s.Client.CoordinationV1().Leases(LeaseNamespace).Get(context.Background(), cfg.LeaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ptr.Deref(lease.Spec.HolderIdentity, ""); got != m1.Identity() {
		t.Errorf("lease holder %q, want %q", got, m1.Identity())
	}
	stop1()
	start := time.Now()
	eventually(t, cfg.LeaseDuration+2*time.Second, "second manager takes over", func() (bool, error) { return m2.Leading(), nil })
	t.Logf("hand-over after a released lease: %v", time.Since(start))
}
