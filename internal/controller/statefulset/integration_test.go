package statefulset

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portal-net/portal/internal/apitest"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/kubectl/pkg/polymorphichelpers"
	"k8s.io/utils/ptr"

	"github.com/portal-net/portal/internal/controller/internal/ctltest"
)

// env is one API server with the controller running, shared by the
// subtests of a test; each subtest works in its own namespace.
type env struct {
	client kubernetes.Interface
}

func start(t *testing.T) *env {
	t.Helper()
	s := apitest.Start(t)
	rec := ctltest.APIRecorder(t, s.Client, "statefulset-controller")
	f := informers.NewSharedInformerFactory(s.Client, 0)
	c := New(s.Client, f, rec, Options{})
	ctltest.Run(t, f, func(ctx context.Context) { c.Run(ctx, 2) })
	return &env{client: s.Client}
}

// namespace creates a namespace named after the subtest.
func (e *env) namespace(t *testing.T) string {
	t.Helper()
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(strings.TrimPrefix(t.Name(), "TestStatefulSet/")))
	if len(name) > 60 {
		name = name[:60]
	}
	name = strings.Trim(name, "-")
	ctltest.CreateNamespace(t, e.client, name)
	return name
}

// webSet is the upstream tutorial's "web" set; its pods are bound to a node
// so that deleting them is graceful, as on a real cluster.
func webSet(ns string, replicas int32, opts ...setOpt) *appsv1.StatefulSet {
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To(replicas),
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": "nginx"}},
			ServiceName: "nginx",
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "nginx"}},
				Spec: v1.PodSpec{
					NodeName:   "node-1",
					Containers: []v1.Container{{Name: "nginx", Image: "nginx:1.0"}},
				},
			},
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType},
		},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func (e *env) create(t *testing.T, s *appsv1.StatefulSet) {
	t.Helper()
	if _, err := e.client.AppsV1().StatefulSets(s.Namespace).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (e *env) updateSet(t *testing.T, ns string, mutate func(*appsv1.StatefulSet)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := e.client.AppsV1().StatefulSets(ns).Get(context.Background(), "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		mutate(s)
		_, err = e.client.AppsV1().StatefulSets(ns).Update(context.Background(), s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) get(t *testing.T, ns string) *appsv1.StatefulSet {
	t.Helper()
	s, err := e.client.AppsV1().StatefulSets(ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pods returns "name@image" of the pods in ns, by name.
func (e *env) pods(t *testing.T, ns string) []v1.Pod {
	t.Helper()
	l, err := e.client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].Name < l.Items[j].Name })
	return l.Items
}

// podIP is the address every simulated pod reports.
const podIP = "10.244.0.10"

// waitTimeout bounds how long a test waits for the controller to converge.
const waitTimeout = 30 * time.Second

// markReady plays the node agent: the pod runs and passes its probes.
func (e *env) markReady(t *testing.T, ns, name string) {
	t.Helper()
	ctltest.UpdatePodStatus(t, e.client, ns, name, ctltest.RunningReady(podIP))
}

// kubelet simulates a node agent for ns until the test ends: new pods
// become running and ready, terminating pods finish terminating. It
// records the order in which pods were asked to terminate.
type kubelet struct {
	mu         sync.Mutex
	terminated []string
}

func (e *env) runKubelet(t *testing.T, ns string) *kubelet {
	k := &kubelet{}
	ctltest.Go(t, func(ctx context.Context) {
		seen := map[string]bool{}
		for ctx.Err() == nil {
			l, err := e.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err == nil {
				for i := range l.Items {
					p := &l.Items[i]
					switch {
					case p.DeletionTimestamp != nil:
						if !seen[string(p.UID)] {
							seen[string(p.UID)] = true
							k.mu.Lock()
							k.terminated = append(k.terminated, p.Name)
							k.mu.Unlock()
						}
						_ = e.client.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{
							GracePeriodSeconds: ptr.To(int64(0)), Preconditions: &metav1.Preconditions{UID: &p.UID}})
					case !isRunningAndReady(p) && !isFinished(p):
						ctltest.RunningReady(podIP)(&p.Status)
						_, _ = e.client.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	return k
}

func (k *kubelet) order() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return strings.Join(k.terminated, ",")
}

// rolloutStatus is what kubectl rollout status statefulset prints.
func rolloutStatus(t *testing.T, s *appsv1.StatefulSet) (string, bool) {
	t.Helper()
	viewer := &polymorphichelpers.StatefulSetStatusViewer{}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(s)
	if err != nil {
		t.Fatal(err)
	}
	msg, done, err := viewer.Status(&unstructured.Unstructured{Object: m}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(msg), done
}

func (e *env) rolledOut(t *testing.T, ns string) {
	t.Helper()
	ctltest.Eventually(t, waitTimeout, "kubectl rollout status to report completion", func() (bool, string) {
		msg, done := rolloutStatus(t, e.get(t, ns))
		return done, msg
	})
}

// podsAt reports "name=image" for every pod, to compare whole sets.
func podsAt(pods []v1.Pod) string {
	var s []string
	for _, p := range pods {
		state := ""
		if p.DeletionTimestamp != nil {
			state = "(terminating)"
		}
		s = append(s, fmt.Sprintf("%s=%s%s", p.Name, p.Spec.Containers[0].Image, state))
	}
	return strings.Join(s, " ")
}

func (e *env) events(t *testing.T, ns string) string {
	t.Helper()
	l, err := e.client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, ev := range l.Items {
		s = append(s, ev.Reason+": "+ev.Message)
	}
	return strings.Join(s, "\n")
}
