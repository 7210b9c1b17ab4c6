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
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/portal-net/portal/internal/controller/internal/ctltest"
	"github.com/portal-net/portal/internal/controller/internal/podutil"
)

// startControllers runs both controllers against a real API server, with
// events recorded into the API as in production.
func startControllers(t *testing.T) kubernetes.Interface {
	t.Helper()
	s := apitest.Start(t)
	rec := ctltest.APIRecorder(t, s.Client, "replicaset-controller")
	f := informers.NewSharedInformerFactory(s.Client, 0)
	rs := New(s.Client, f, rec, Options{})
	rc := NewReplicationController(s.Client, f, rec, Options{})
	ctltest.Run(t, f, func(ctx context.Context) { rs.Run(ctx, 2) }, func(ctx context.Context) { rc.Run(ctx, 2) })
	return s.Client
}

// waitTimeout bounds how long a test waits for the controllers to converge.
const waitTimeout = 30 * time.Second

// markReady plays the node agent: the pod runs and passes its probes.
var markReady = ctltest.RunningReady("10.244.0.10")

// setPodStatus plays the node agent for pod name in "default".
func setPodStatus(t *testing.T, c kubernetes.Interface, name string, mut func(*v1.PodStatus)) {
	t.Helper()
	ctltest.UpdatePodStatus(t, c, "default", name, mut)
}

// waitActive waits until want pods matching sel are active and the
// owner's status (from status: replicas and a rendering) agrees, and
// returns the active pods.
func waitActive(t *testing.T, c kubernetes.Interface, sel map[string]string, want int, status func() (int32, string)) []v1.Pod {
	t.Helper()
	var active []v1.Pod
	ctltest.Eventually(t, waitTimeout, fmt.Sprintf("%d active pods and status.replicas=%d", want, want), func() (bool, string) {
		active, _ = podsOf(t, c, sel)
		replicas, st := status()
		return len(active) == want && replicas == int32(want), fmt.Sprintf("pods %s, status %s", ctltest.PodNames(active), st)
	})
	return active
}

// scaleTo sets the scale subresource of an owner to n, retrying conflicts.
func scaleTo(t *testing.T, n int32,
	get func(context.Context, string, metav1.GetOptions) (*autoscalingv1.Scale, error),
	update func(context.Context, string, *autoscalingv1.Scale, metav1.UpdateOptions) (*autoscalingv1.Scale, error), name string) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		sc, err := get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		sc.Spec.Replicas = n
		_, err = update(context.Background(), name, sc, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("scale %s to %d: %v", name, n, err)
	}
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
		return waitActive(t, c, sel, want, func() (int32, string) {
			st := getRS().Status
			return st.Replicas, fmt.Sprintf("%+v", st)
		})
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
	ctltest.Eventually(t, waitTimeout, "SuccessfulCreate events on the ReplicaSet", func() (bool, string) {
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
	ctltest.Eventually(t, waitTimeout, "replacement of a deleted pod", func() (bool, string) {
		active, _ := podsOf(t, c, sel)
		return len(active) == 3 && !strings.Contains(ctltest.PodNames(active), victim), ctltest.PodNames(active)
	})

	// 3. A pod that failed is replaced; the failed pod stays for inspection.
	pods, _ = podsOf(t, c, sel)
	failed := pods[0].Name
	setPodStatus(t, c, failed, func(s *v1.PodStatus) { s.Phase = v1.PodFailed })
	ctltest.Eventually(t, waitTimeout, "replacement of a failed pod", func() (bool, string) {
		active, all := podsOf(t, c, sel)
		return len(active) == 3 && len(all) == 4 && !strings.Contains(ctltest.PodNames(active), failed), ctltest.PodNames(all)
	})
	waitReplicas(3)

	// 4. Ready and available follow the pods' Ready condition, available
	// only after minReadySeconds.
	pods, _ = podsOf(t, c, sel)
	readyAt := time.Now()
	for _, p := range pods {
		setPodStatus(t, c, p.Name, markReady)
	}
	ctltest.Eventually(t, waitTimeout, "readyReplicas=3", func() (bool, string) {
		st := getRS().Status
		return st.ReadyReplicas == 3, fmt.Sprintf("%+v", st)
	})
	if st := getRS().Status; st.AvailableReplicas == 3 && time.Since(readyAt) < time.Second {
		t.Errorf("pods available %v after turning ready, minReadySeconds is 2", time.Since(readyAt))
	}
	ctltest.Eventually(t, waitTimeout, "availableReplicas=3", func() (bool, string) {
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
		scaleTo(t, n, c.AppsV1().ReplicaSets("default").GetScale, c.AppsV1().ReplicaSets("default").UpdateScale, name)
	}
	scale(5)
	waitReplicas(5)
	scale(1)
	left := waitReplicas(1)
	if !podutil.Ready(&left[0]) {
		t.Errorf("scale-down kept unready pod %s over ready ones", left[0].Name)
	}
	ctltest.Eventually(t, waitTimeout, "status of the scaled ReplicaSet", func() (bool, string) {
		rs := getRS()
		st := rs.Status
		return st.ObservedGeneration == rs.Generation && st.ReadyReplicas == 1 && st.AvailableReplicas == 1, fmt.Sprintf("%+v", st)
	})
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
	ctltest.Eventually(t, waitTimeout, "the orphan adopted, no pod created", func() (bool, string) {
		p, err := c.CoreV1().Pods("default").Get(ctx, "orphan", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		ref := metav1.GetControllerOf(p)
		active, _ := podsOf(t, c, sel)
		return ref != nil && ref.UID == rs.UID && len(active) == 1, fmt.Sprintf("refs %+v, pods %s", p.OwnerReferences, ctltest.PodNames(active))
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
	ctltest.Eventually(t, waitTimeout, "the relabelled pod released and replaced", func() (bool, string) {
		p, err := c.CoreV1().Pods("default").Get(ctx, "orphan", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		active, _ := podsOf(t, c, sel)
		return len(p.OwnerReferences) == 0 && len(active) == 1 && strings.HasPrefix(active[0].Name, "adopter-"),
			fmt.Sprintf("refs %+v, pods %s", p.OwnerReferences, ctltest.PodNames(active))
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
		return waitActive(t, c, sel, want, func() (int32, string) {
			st := getRC().Status
			return st.Replicas, fmt.Sprintf("%+v", st)
		})
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
	ctltest.Eventually(t, waitTimeout, "replacement of a deleted pod", func() (bool, string) {
		active, _ := podsOf(t, c, sel)
		return len(active) == 2 && !strings.Contains(ctltest.PodNames(active), pods[0].Name), ctltest.PodNames(active)
	})

	scaleTo(t, 3, c.CoreV1().ReplicationControllers("default").GetScale, c.CoreV1().ReplicationControllers("default").UpdateScale, name)
	pods = waitReplicas(3)
	for _, p := range pods {
		setPodStatus(t, c, p.Name, markReady)
	}
	ctltest.Eventually(t, waitTimeout, "ready and available replicas", func() (bool, string) {
		rc := getRC()
		st := rc.Status
		return st.ReadyReplicas == 3 && st.AvailableReplicas == 3 && st.FullyLabeledReplicas == 3 && st.ObservedGeneration == rc.Generation, fmt.Sprintf("%+v", st)
	})
}
