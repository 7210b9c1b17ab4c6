package namespace

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/portal-net/portal/internal/apitest"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/record"

	"github.com/portal-net/portal/internal/controller/internal/ctltest"
)

func condition(ns *v1.Namespace, t v1.NamespaceConditionType) *v1.NamespaceCondition {
	for i := range ns.Status.Conditions {
		if ns.Status.Conditions[i].Type == t {
			return &ns.Status.Conditions[i]
		}
	}
	return nil
}

func populate(t *testing.T, client kubernetes.Interface, ns string) {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{"app": "web"}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}))
	must(client.CoreV1().Services(ns).Create(ctx, &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       v1.ServiceSpec{Selector: labels, Ports: []v1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{}))
	for i := range 2 {
		must(client.CoreV1().ConfigMaps(ns).Create(ctx, &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)}}, metav1.CreateOptions{}))
	}
	replicas := int32(2)
	podSpec := v1.PodSpec{Containers: []v1.Container{{Name: "web", Image: "nginx"}}}
	must(client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec},
		},
	}, metav1.CreateOptions{}))
	for i := range 2 {
		must(client.CoreV1().Pods(ns).Create(ctx, &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%d", i), Labels: labels}, Spec: podSpec}, metav1.CreateOptions{}))
	}
}

// countContent lists what a user would look for in the namespace.
func countContent(t *testing.T, client kubernetes.Interface, ns string) map[string]int {
	t.Helper()
	ctx := context.Background()
	out := map[string]int{}
	if l, err := client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{}); err == nil {
		out["services"] = len(l.Items)
	}
	if l, err := client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{}); err == nil {
		out["configmaps"] = len(l.Items)
	}
	if l, err := client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{}); err == nil {
		out["deployments"] = len(l.Items)
	}
	if l, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err == nil {
		out["pods"] = len(l.Items)
	}
	return out
}

// serverKeepsTerminatingNamespaces reports whether a status write to a
// Terminating namespace leaves it in place, as kube-apiserver does while
// spec.finalizers is non-empty. Without that, the controller's condition
// updates remove the namespace early.
func serverKeepsTerminatingNamespaces(t *testing.T, client kubernetes.Interface) bool {
	t.Helper()
	ctx := context.Background()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "probe"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Namespaces().Delete(ctx, "probe", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ns, err := client.CoreV1().Namespaces().Get(ctx, "probe", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Namespaces().UpdateStatus(ctx, ns, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	_, err = client.CoreV1().Namespaces().Get(ctx, "probe", metav1.GetOptions{})
	return err == nil
}

func TestNamespaceDeletion(t *testing.T) {
	s := apitest.Start(t)
	client := s.Client
	keeps := serverKeepsTerminatingNamespaces(t, client)
	f := informers.NewSharedInformerFactory(client, 0)
	c := New(client, metadata.NewForConfigOrDie(s.Config), client.Discovery(), f, record.NewFakeRecorder(10), Options{MaxRetry: time.Second})
	ctltest.Run(t, f, func(ctx context.Context) { c.Run(ctx, 2) })

	t.Run("empties and removes the namespace", func(t *testing.T) {
		populate(t, client, "doomed")
		if got := countContent(t, client, "doomed"); got["pods"] != 2 || got["configmaps"] < 2 || got["services"] != 1 || got["deployments"] != 1 {
			t.Fatalf("setup: content = %v", got)
		}
		if err := client.CoreV1().Namespaces().Delete(context.Background(), "doomed", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		ctltest.Eventually(t, 10*time.Second, "namespace doomed to be gone", func() (bool, string) {
			ns, err := client.CoreV1().Namespaces().Get(context.Background(), "doomed", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return true, ""
			}
			return false, fmt.Sprintf("ns=%v err=%v content=%v", ns.Status, err, countContent(t, client, "doomed"))
		})
		for kind, n := range countContent(t, client, "doomed") {
			if n != 0 {
				t.Errorf("%d %s left after the namespace went", n, kind)
			}
		}
	})

	t.Run("waits for finalizers and reports them", func(t *testing.T) {
		if !keeps {
			t.Fatal("a status update deleted a Terminating namespace that still had spec.finalizers")
		}
		populate(t, client, "held")
		_, err := client.CoreV1().ConfigMaps("held").Create(context.Background(), &v1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"example.com/hold"}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := client.CoreV1().Namespaces().Delete(context.Background(), "held", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		ctltest.Eventually(t, 10*time.Second, "conditions naming the held configmap", func() (bool, string) {
			ns, err := client.CoreV1().Namespaces().Get(context.Background(), "held", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			rem, fin := condition(ns, v1.NamespaceContentRemaining), condition(ns, v1.NamespaceFinalizersRemaining)
			if rem == nil || fin == nil {
				return false, fmt.Sprintf("conditions %v", ns.Status.Conditions)
			}
			ok := ns.Status.Phase == v1.NamespaceTerminating &&
				rem.Status == v1.ConditionTrue && rem.Reason == "SomeResourcesRemain" &&
				rem.Message == "Some resources are remaining: configmaps. has 1 resource instances" &&
				fin.Status == v1.ConditionTrue && fin.Reason == "SomeFinalizersRemain" &&
				fin.Message == "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
			return ok, fmt.Sprintf("phase %s conditions %+v", ns.Status.Phase, ns.Status.Conditions)
		})
		// Everything but the held object is already gone.
		got := countContent(t, client, "held")
		if got["services"] != 0 || got["deployments"] != 0 || got["pods"] != 0 || got["configmaps"] != 1 {
			t.Fatalf("content while held = %v, want only the held configmap", got)
		}
		ns, err := client.CoreV1().Namespaces().Get(context.Background(), "held", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(fmt.Sprint(ns.Spec.Finalizers), "kubernetes") {
			t.Fatalf("finalizer removed while content remains: %v", ns.Spec.Finalizers)
		}

		cm, err := client.CoreV1().ConfigMaps("held").Get(context.Background(), "held", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm.Finalizers = nil
		if _, err := client.CoreV1().ConfigMaps("held").Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		ctltest.Eventually(t, 10*time.Second, "namespace held to be gone once released", func() (bool, string) {
			_, err := client.CoreV1().Namespaces().Get(context.Background(), "held", metav1.GetOptions{})
			return apierrors.IsNotFound(err), fmt.Sprint(err)
		})
	})

	t.Run("active namespaces are left alone", func(t *testing.T) {
		populate(t, client, "alive")
		time.Sleep(500 * time.Millisecond)
		if got := countContent(t, client, "alive"); got["pods"] != 2 || got["services"] != 1 {
			t.Fatalf("content of an active namespace changed: %v", got)
		}
	})
}
