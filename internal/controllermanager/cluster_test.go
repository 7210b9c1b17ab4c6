package controllermanager

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/portal-net/portal/internal/apitest"
)

// cluster is an API server, the controller manager and three fake nodes.
type cluster struct {
	*apitest.Server
	nodes *apitest.FakeNodes
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	s := apitest.Start(t)
	startManager(t, s, testConfig())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	nodes, err := apitest.StartFakeNodes(ctx, s.Client, 300*time.Millisecond, "node-a", "node-b", "node-c")
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{Server: s, nodes: nodes}
}

func newNamespace(t *testing.T, c kubernetes.Interface, name string) string {
	t.Helper()
	if _, err := c.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

func template(app, image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image,
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
	}
}

func readyPods(t *testing.T, c kubernetes.Interface, ns, app string) (ready, total int) {
	t.Helper()
	l, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range l.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		total++
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	return ready, total
}

func TestDeploymentRollsWithoutDroppingBelowReplicasAndRollsBack(t *testing.T) {
	cl := startCluster(t)
	c, ctx := cl.Client, context.Background()
	ns := newNamespace(t, c, "rollout")
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "example-app-deployment"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "example"}},
			Template: template("example", "example/example:v1"),
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: ptr.To(intstr.FromInt32(0)), MaxSurge: ptr.To(intstr.FromInt32(1)),
			}},
		},
	}
	if _, err := c.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "3 ready pods and an available deployment", func() (bool, error) {
		got, err := c.AppsV1().Deployments(ns).Get(ctx, d.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ready, _ := readyPods(t, c, ns, "example")
		return ready == 3 && got.Status.AvailableReplicas == 3 && got.Status.UpdatedReplicas == 3, nil
	})
	pods, _ := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	for _, p := range pods.Items {
		// example-app-deployment-<decimal template hash>-<5 chars>, as in the seed.
		parts := strings.Split(p.Name, "-")
		if len(parts) != 5 || len(parts[4]) != 5 || strings.Trim(parts[3], "0123456789") != "" {
			t.Errorf("pod name %q is not <deployment>-<decimal hash>-<suffix>", p.Name)
		}
		if p.Spec.NodeName == "" {
			t.Errorf("pod %s was not scheduled", p.Name)
		}
	}

	// Watch readiness while the image changes: with maxUnavailable 0 the
	// ready count never drops below 3.
	stop := make(chan struct{})
	minReady := make(chan int, 1)
	go func() {
		lowest := 3
		for {
			select {
			case <-stop:
				minReady <- lowest
				return
			case <-time.After(20 * time.Millisecond):
			}
			if r, _ := readyPods(t, c, ns, "example"); r < lowest {
				lowest = r
			}
		}
	}()
	patch := `{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"example/example:v2"}]}}}}`
	if _, err := c.AppsV1().Deployments(ns).Patch(ctx, d.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	rolledTo := func(image, revision string) func() (bool, error) {
		return func() (bool, error) {
			got, err := c.AppsV1().Deployments(ns).Get(ctx, d.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			l, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			n := 0
			for _, p := range l.Items {
				if p.Spec.Containers[0].Image != image {
					return false, nil
				}
				n++
			}
			st := got.Status
			return n == 3 && st.ObservedGeneration == got.Generation && st.UpdatedReplicas == 3 && st.AvailableReplicas == 3 && st.Replicas == 3 &&
				got.Annotations["deployment.kubernetes.io/revision"] == revision, nil
		}
	}
	eventually(t, 30*time.Second, "rolled to v2 as revision 2", rolledTo("example/example:v2", "2"))
	close(stop)
	if low := <-minReady; low < 3 {
		t.Errorf("ready pods dropped to %d during the rollout, want never below 3", low)
	}
	rss, err := c.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(rss.Items) != 2 {
		t.Fatalf("replica sets: %v, %v", rss, err)
	}

	// kubectl rollout undo puts the previous ReplicaSet's template back.
	var old *appsv1.ReplicaSet
	for i := range rss.Items {
		if rss.Items[i].Annotations["deployment.kubernetes.io/revision"] == "1" {
			old = &rss.Items[i]
		}
	}
	if old == nil {
		t.Fatal("no ReplicaSet of revision 1")
	}
	// The controller writes the Deployment's status meanwhile: retry on
	// conflict, as kubectl rollout undo does.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := c.AppsV1().Deployments(ns).Get(ctx, d.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec.Template = *old.Spec.Template.DeepCopy()
		delete(cur.Spec.Template.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
		_, err = c.AppsV1().Deployments(ns).Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "rolled back to v1 as revision 3", rolledTo("example/example:v1", "3"))
	if rss, _ := c.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{}); len(rss.Items) != 2 {
		t.Errorf("undo created a new ReplicaSet: %d sets", len(rss.Items))
	}

	// Deleting the Deployment (kubectl's default: background) removes its
	// ReplicaSets and their pods.
	if err := c.AppsV1().Deployments(ns).Delete(ctx, d.Name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "replica sets and pods collected", func() (bool, error) {
		rs, err := c.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		p, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(rs.Items) == 0 && len(p.Items) == 0, err
	})
}

func TestReplicationControllerAndReplicaSetReplaceDeletedPods(t *testing.T) {
	cl := startCluster(t)
	c, ctx := cl.Client, context.Background()
	ns := newNamespace(t, c, "replace")
	if _, err := c.CoreV1().ReplicationControllers(ns).Create(ctx, &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "my-nginx"},
		Spec: corev1.ReplicationControllerSpec{Replicas: ptr.To[int32](2), Selector: map[string]string{"app": "rc"},
			Template: ptr.To(template("rc", "nginx"))},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "frontend"},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "rs"}},
			Template: template("rs", "nginx")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{"rc", "rs"} {
		eventually(t, 20*time.Second, app+": 2 ready pods", func() (bool, error) { r, n := readyPods(t, c, ns, app); return r == 2 && n == 2, nil })
		l, _ := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		victim := l.Items[0]
		if err := c.CoreV1().Pods(ns).Delete(ctx, victim.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, app+": deleted pod replaced", func() (bool, error) {
			l, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
			if err != nil {
				return false, err
			}
			for _, p := range l.Items {
				if p.UID == victim.UID {
					return false, nil
				}
			}
			r, n := readyPods(t, c, ns, app)
			return r == 2 && n == 2, nil
		})
	}
}

func TestLargeServiceSlicesAndScaleToZero(t *testing.T) {
	if raceEnabled {
		// ~1,500 API writes take minutes under -race; the plain `go test`
		// pass of make test runs this test, the race pass covers the same
		// code paths with the smaller cluster tests.
		t.Skip("250 pods: run without -race")
	}
	cl := startCluster(t)
	c, ctx := cl.Client, context.Background()
	ns := newNamespace(t, c, "big")
	if _, err := c.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "big"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "big"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "big"},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](250), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "big"}},
			Template: template("big", "nginx")},
	}
	if _, err := c.AppsV1().ReplicaSets(ns).Create(ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sliceSizes := func() ([]int, error) {
		l, err := c.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=big"})
		if err != nil {
			return nil, err
		}
		var sizes []int
		for _, s := range l.Items {
			if s.Labels[discoveryv1.LabelManagedBy] != "endpointslice-controller.k8s.io" {
				return nil, fmt.Errorf("slice %s managed by %q", s.Name, s.Labels[discoveryv1.LabelManagedBy])
			}
			sizes = append(sizes, len(s.Endpoints))
		}
		return sizes, nil
	}
	eventually(t, 60*time.Second, "250 ready endpoints in 3 slices of at most 100", func() (bool, error) {
		sizes, err := sliceSizes()
		if err != nil || len(sizes) != 3 {
			return false, err
		}
		total := 0
		for _, n := range sizes {
			if n > 100 {
				return false, fmt.Errorf("slice of %d endpoints", n)
			}
			total += n
		}
		st, _, err := sliceState(t, c, ns, "big")
		return total == 250 && len(st.ready) == 250, err
	})
	if _, err := c.AppsV1().ReplicaSets(ns).UpdateScale(ctx, "big", &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "big", Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: 0}}, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "scaled to 0: one empty slice kept", func() (bool, error) {
		sizes, err := sliceSizes()
		if err == nil && !(len(sizes) == 1 && sizes[0] == 0) {
			_, n := readyPods(t, c, ns, "big")
			all, _ := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			err = fmt.Errorf("slices %v, %d live pods, %d pods", sizes, n, len(all.Items))
		}
		return err == nil && len(sizes) == 1 && sizes[0] == 0, err
	})
	ep, err := c.CoreV1().Endpoints(ns).Get(ctx, "big", metav1.GetOptions{})
	if err != nil || len(ep.Subsets) != 0 {
		t.Errorf("Endpoints after scale to 0: %v, %v", ep, err)
	}
}

func TestNamedTargetPortPerPodAndMultiPort(t *testing.T) {
	s := apitest.Start(t)
	startManager(t, s, testConfig())
	c, ctx := s.Client, context.Background()
	if _, err := c.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
			{Name: "metrics", Port: 9100, TargetPort: intstr.FromInt32(9100)},
		}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Two versions of the app name their port "http" on different numbers.
	for i, port := range []int32{8080, 8081} {
		p, err := c.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-v%d", i+1), Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: port}}}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		setPodReady(t, c, p, fmt.Sprintf("10.42.0.%d", 20+i), true)
	}
	eventually(t, 5*time.Second, "one slice per port set", func() (bool, error) {
		l, err := c.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
		if err != nil || len(l.Items) != 2 {
			return false, err
		}
		got := map[string]string{}
		for _, s := range l.Items {
			var ports []string
			for _, p := range s.Ports {
				ports = append(ports, fmt.Sprintf("%s=%d", *p.Name, *p.Port))
			}
			if len(s.Endpoints) != 1 {
				return false, nil
			}
			got[s.Endpoints[0].Addresses[0]] = strings.Join(slices.Sorted(slices.Values(ports)), ",")
		}
		return got["10.42.0.20"] == "http=8080,metrics=9100" && got["10.42.0.21"] == "http=8081,metrics=9100", nil
	})
	// The Endpoints controller works on its own queue: it may still be one
	// pod behind the slices.
	eventually(t, 5*time.Second, "Endpoints with one subset per port set", func() (bool, error) {
		ep, err := c.CoreV1().Endpoints("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && len(ep.Subsets) == 2, nil
	})
}

func TestNamespaceDeleteRemovesEverythingInside(t *testing.T) {
	cl := startCluster(t)
	c, ctx := cl.Client, context.Background()
	ns := newNamespace(t, c, "doomed")
	deployWithService(t, c, ns, 2)
	if err := c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "namespace and its content gone", func() (bool, error) {
		_, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err == nil {
			return false, nil
		}
		if !apierrors.IsNotFound(err) {
			return false, err
		}
		for _, list := range []func() (int, error){
			func() (int, error) {
				l, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
				return len(l.Items), err
			},
			func() (int, error) {
				l, err := c.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
				return len(l.Items), err
			},
			func() (int, error) {
				l, err := c.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
				return len(l.Items), err
			},
			func() (int, error) {
				l, err := c.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{})
				return len(l.Items), err
			},
		} {
			if n, err := list(); err != nil || n != 0 {
				return false, err
			}
		}
		return true, nil
	})
}

func TestDeadNodeEndpointsGoNotReadyAndNodesGetPodCIDRs(t *testing.T) {
	cl := startCluster(t)
	c, ctx := cl.Client, context.Background()
	eventually(t, 10*time.Second, "every node has a /24 pod CIDR from 10.42.0.0/16", func() (bool, error) {
		l, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		seen := map[string]bool{}
		for _, n := range l.Items {
			if !strings.HasPrefix(n.Spec.PodCIDR, "10.42.") || !strings.HasSuffix(n.Spec.PodCIDR, ".0/24") || seen[n.Spec.PodCIDR] {
				return false, nil
			}
			seen[n.Spec.PodCIDR] = true
		}
		return len(seen) == 3, nil
	})
	ns := newNamespace(t, c, "spread")
	deployWithService(t, c, ns, 3)
	pods, _ := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=node-b"})
	if len(pods.Items) != 1 {
		t.Fatalf("%d pods on node-b, want 1 (spread across 3 nodes)", len(pods.Items))
	}
	deadIP := pods.Items[0].Status.PodIP

	cl.nodes.Stop("node-b")
	stopped := time.Now()
	cfg := testConfig()
	eventually(t, cfg.NodeMonitorGracePeriod+2*time.Second, "node-b's endpoint not ready", func() (bool, error) {
		st, _, err := sliceState(t, c, ns, "web")
		return err == nil && len(st.ready) == 2 && fmt.Sprint(st.notReady) == "["+deadIP+"]", err
	})
	t.Logf("endpoint on the dead node not ready %v after its last lease renewal", time.Since(stopped).Round(10*time.Millisecond))
	// The condition and the taint are two writes of the node lifecycle
	// controller; the endpoint may go not ready between them.
	var ready corev1.ConditionStatus
	tainted := false
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		node, err := c.CoreV1().Nodes().Get(ctx, "node-b", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		tainted = false
		for _, taint := range node.Spec.Taints {
			tainted = tainted || (taint.Key == corev1.TaintNodeUnreachable && taint.Effect == corev1.TaintEffectNoExecute)
		}
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				ready = cond.Status
			}
		}
		return ready == corev1.ConditionUnknown && tainted, nil
	})
	if err != nil {
		t.Errorf("node-b Ready=%s tainted unreachable=%v, want Unknown and tainted", ready, tainted)
	}
}

// deployWithService runs a Deployment "web" of n replicas behind a Service
// "web" in ns and waits until the service has n ready endpoints.
func deployWithService(t *testing.T, c kubernetes.Interface, ns string, n int32) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(n), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: template("web", "nginx")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, fmt.Sprintf("%d ready endpoints behind the service", n), func() (bool, error) {
		st, _, err := sliceState(t, c, ns, "web")
		return len(st.ready) == int(n), err
	})
}
