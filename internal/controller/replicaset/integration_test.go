package replicaset

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/portal-net/portal/internal/apitest"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// startControllers runs both controllers against a real API server, with
// events recorded into the API as in production.
func startControllers(t *testing.T) kubernetes.Interface {
	t.Helper()
	s := apitest.Start(t)
	client := s.Client
	ctx, cancel := context.WithCancel(context.Background())
	f := informers.NewSharedInformerFactory(client, 0)
	b := record.NewBroadcaster(record.WithContext(ctx))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	rec := b.NewRecorder(scheme.Scheme, v1.EventSource{Component: "replicaset-controller"})
	rs := New(client, f, rec, Options{})
	rc := NewReplicationController(client, f, rec, Options{})
	f.Start(ctx.Done())
	done := make(chan struct{}, 2)
	go func() { rs.Run(ctx, 2); done <- struct{}{} }()
	go func() { rc.Run(ctx, 2); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
		f.Shutdown()
		b.Shutdown()
	})
	return client
}

func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last: %s", what, last)
}

// podsOf lists pods matching sel, split into active and all.
func podsOf(t *testing.T, c kubernetes.Interface, sel map[string]string) (active, all []v1.Pod) {
	t.Helper()
	l, err := c.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: labels.SelectorFromSet(sel).String()})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range l.Items {
		if isActive(&p) {
			active = append(active, p)
		}
	}
	sort.Slice(active, func(i, j int) bool { return active[i].Name < active[j].Name })
	return active, l.Items
}

func podNames(pods []v1.Pod) string {
	var n []string
	for _, p := range pods {
		n = append(n, p.Name)
	}
	return strings.Join(n, ",")
}

// setPodStatus simulates the node agent.
func setPodStatus(t *testing.T, c kubernetes.Interface, name string, mut func(*v1.PodStatus)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := c.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mut(&p.Status)
		_, err = c.CoreV1().Pods("default").UpdateStatus(context.Background(), p, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("set status of pod %s: %v", name, err)
	}
}

func markReady(s *v1.PodStatus) {
	s.Phase = v1.PodRunning
	s.PodIP = "10.244.0.10"
	s.PodIPs = []v1.PodIP{{IP: "10.244.0.10"}}
	s.Conditions = []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue, LastTransitionTime: metav1.Now()}}
}

func TestReplicaSetAgainstAPI(t *testing.T) {
	c := startControllers(t)
	ctx := context.Background()
	const name = "example-app-deployment-2393591303"
	sel := map[string]string{"app": "example-app", "pod-template-hash": "2393591303"}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        ptr.To[int32](3),
			MinReadySeconds: 2,
			Selector:        &metav1.LabelSelector{MatchLabels: sel},
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: sel, Annotations: map[string]string{"team": "web"}},
				Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "app", Image: "nginx:1.27"}}},
			},
		},
	}
	rs, err := c.AppsV1().ReplicaSets("default").Create(ctx, rs, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	getRS := func() *appsv1.ReplicaSet {
		got, err := c.AppsV1().ReplicaSets("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	waitReplicas := func(want int) []v1.Pod {
		t.Helper()
		var active []v1.Pod
		eventually(t, fmt.Sprintf("%d active pods and status.replicas=%d", want, want), func() (bool, string) {
			active, _ = podsOf(t, c, sel)
			st := getRS().Status
			return len(active) == want && st.Replicas == int32(want), fmt.Sprintf("pods %s, status %+v", podNames(active), st)
		})
		return active
	}

	// 1. Three pods named after the ReplicaSet, owned by it.
	pods := waitReplicas(3)
	nameRE := regexp.MustCompile("^" + name + "-[a-z0-9]{5}$")
	for _, p := range pods {
		if !nameRE.MatchString(p.Name) {
			t.Errorf("pod name %q does not look like %s-xxxxx", p.Name, name)
		}
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.APIVersion != "apps/v1" || ref.Kind != "ReplicaSet" || ref.Name != name || ref.UID != rs.UID || !ptr.Deref(ref.BlockOwnerDeletion, false) {
			t.Errorf("pod %s owner references %+v", p.Name, p.OwnerReferences)
		}
		if p.Annotations["team"] != "web" {
			t.Errorf("pod %s annotations %v, want the template's", p.Name, p.Annotations)
		}
	}
	if st := getRS().Status; st.ObservedGeneration != rs.Generation || st.FullyLabeledReplicas != 3 || ptr.Deref(st.TerminatingReplicas, -1) != 0 {
		t.Errorf("status %+v", st)
	}
	eventually(t, "SuccessfulCreate events on the ReplicaSet", func() (bool, string) {
		l, err := c.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, e := range l.Items {
			if e.Reason == "SuccessfulCreate" && e.InvolvedObject.Kind == "ReplicaSet" && strings.HasPrefix(e.Message, "Created pod: "+name+"-") {
				n += int(e.Count)
			}
		}
		return n == 3, fmt.Sprintf("%d events", n)
	})

	// 2. A deleted pod is replaced.
	victim := pods[0].Name
	if err := c.CoreV1().Pods("default").Delete(ctx, victim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "replacement of a deleted pod", func() (bool, string) {
		active, _ := podsOf(t, c, sel)
		return len(active) == 3 && !strings.Contains(podNames(active), victim), podNames(active)
	})

	// 3. A pod that failed is replaced; the failed pod stays for inspection.
	pods, _ = podsOf(t, c, sel)
	failed := pods[0].Name
	setPodStatus(t, c, failed, func(s *v1.PodStatus) { s.Phase = v1.PodFailed })
	eventually(t, "replacement of a failed pod", func() (bool, string) {
		active, all := podsOf(t, c, sel)
		return len(active) == 3 && len(all) == 4 && !strings.Contains(podNames(active), failed), podNames(all)
	})
	waitReplicas(3)

	// 4. Ready and available follow the pods' Ready condition, available
	// only after minReadySeconds.
	pods, _ = podsOf(t, c, sel)
	readyAt := time.Now()
	for _, p := range pods {
		setPodStatus(t, c, p.Name, markReady)
	}
	eventually(t, "readyReplicas=3", func() (bool, string) {
		st := getRS().Status
		return st.ReadyReplicas == 3, fmt.Sprintf("%+v", st)
	})
	if st := getRS().Status; st.AvailableReplicas == 3 && time.Since(readyAt) < time.Second {
		t.Errorf("pods available %v after turning ready, minReadySeconds is 2", time.Since(readyAt))
	}
	eventually(t, "availableReplicas=3", func() (bool, string) {
		st := getRS().Status
		return st.AvailableReplicas == 3, fmt.Sprintf("%+v", st)
	})
	// Ready times are stored to the second, so availability may come up to
	// a second early, never earlier.
	if d := time.Since(readyAt); d < time.Second {
		t.Errorf("available after %v, want at least minReadySeconds (2s, to the second)", d)
	}

	// 5. Scaling through the scale subresource converges both ways; the
	// scale-down keeps the ready pods.
	scale := func(n int32) {
		t.Helper()
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			sc, err := c.AppsV1().ReplicaSets("default").GetScale(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			sc.Spec.Replicas = n
			_, err = c.AppsV1().ReplicaSets("default").UpdateScale(ctx, name, sc, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatalf("scale to %d: %v", n, err)
		}
	}
	scale(5)
	waitReplicas(5)
	scale(1)
	left := waitReplicas(1)
	if !readyPod(&left[0]) {
		t.Errorf("scale-down kept unready pod %s over ready ones", left[0].Name)
	}
	eventually(t, "status of the scaled ReplicaSet", func() (bool, string) {
		rs := getRS()
		st := rs.Status
		return st.ObservedGeneration == rs.Generation && st.ReadyReplicas == 1 && st.AvailableReplicas == 1, fmt.Sprintf("%+v", st)
	})
}

func readyPod(p *v1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

func TestAdoptionAndReleaseAgainstAPI(t *testing.T) {
	c := startControllers(t)
	ctx := context.Background()
	sel := map[string]string{"app": "adopt"}
	orphan := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan", Namespace: "default", Labels: map[string]string{"app": "adopt"}},
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "app", Image: "nginx"}}},
	}
	if _, err := c.CoreV1().Pods("default").Create(ctx, orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rs, err := c.AppsV1().ReplicaSets("default").Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "adopter", Namespace: "default"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "app", Image: "nginx"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the orphan adopted, no pod created", func() (bool, string) {
		p, err := c.CoreV1().Pods("default").Get(ctx, "orphan", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		ref := metav1.GetControllerOf(p)
		active, _ := podsOf(t, c, sel)
		return ref != nil && ref.UID == rs.UID && len(active) == 1, fmt.Sprintf("refs %+v, pods %s", p.OwnerReferences, podNames(active))
	})

	// Relabelled out of the selector, the pod is released and replaced.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := c.CoreV1().Pods("default").Get(ctx, "orphan", metav1.GetOptions{})
		if err != nil {
			return err
		}
		p.Labels["app"] = "debugging"
		_, err = c.CoreV1().Pods("default").Update(ctx, p, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the relabelled pod released and replaced", func() (bool, string) {
		p, err := c.CoreV1().Pods("default").Get(ctx, "orphan", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		active, _ := podsOf(t, c, sel)
		return len(p.OwnerReferences) == 0 && len(active) == 1 && strings.HasPrefix(active[0].Name, "adopter-"),
			fmt.Sprintf("refs %+v, pods %s", p.OwnerReferences, podNames(active))
	})
}

func TestReplicationControllerAgainstAPI(t *testing.T) {
	c := startControllers(t)
	ctx := context.Background()
	const name = "my-nginx"
	sel := map[string]string{"app": "MyApp"}
	rc, err := c.CoreV1().ReplicationControllers("default").Create(ctx, &v1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: v1.ReplicationControllerSpec{
			Replicas: ptr.To[int32](2),
			Selector: sel,
			Template: &v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "nginx", Image: "nginx", Ports: []v1.ContainerPort{{ContainerPort: 80}}}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	getRC := func() *v1.ReplicationController {
		got, err := c.CoreV1().ReplicationControllers("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	waitReplicas := func(want int) []v1.Pod {
		t.Helper()
		var active []v1.Pod
		eventually(t, fmt.Sprintf("%d active pods and status.replicas=%d", want, want), func() (bool, string) {
			active, _ = podsOf(t, c, sel)
			st := getRC().Status
			return len(active) == want && st.Replicas == int32(want), fmt.Sprintf("pods %s, status %+v", podNames(active), st)
		})
		return active
	}

	pods := waitReplicas(2)
	for _, p := range pods {
		ref := metav1.GetControllerOf(&p)
		if !strings.HasPrefix(p.Name, name+"-") || ref == nil || ref.APIVersion != "v1" || ref.Kind != "ReplicationController" || ref.UID != rc.UID {
			t.Errorf("pod %s owner references %+v", p.Name, p.OwnerReferences)
		}
	}

	if err := c.CoreV1().Pods("default").Delete(ctx, pods[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "replacement of a deleted pod", func() (bool, string) {
		active, _ := podsOf(t, c, sel)
		return len(active) == 2 && !strings.Contains(podNames(active), pods[0].Name), podNames(active)
	})

	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		sc, err := c.CoreV1().ReplicationControllers("default").GetScale(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		sc.Spec.Replicas = 3
		_, err = c.CoreV1().ReplicationControllers("default").UpdateScale(ctx, name, sc, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	pods = waitReplicas(3)
	for _, p := range pods {
		setPodStatus(t, c, p.Name, markReady)
	}
	eventually(t, "ready and available replicas", func() (bool, string) {
		rc := getRC()
		st := rc.Status
		return st.ReadyReplicas == 3 && st.AvailableReplicas == 3 && st.FullyLabeledReplicas == 3 && st.ObservedGeneration == rc.Generation, fmt.Sprintf("%+v", st)
	})
}
