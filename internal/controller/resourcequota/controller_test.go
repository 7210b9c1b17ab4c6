package resourcequota

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/portal-net/portal/internal/quota"
)

func rl(kv ...string) v1.ResourceList {
	out := v1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		out[v1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func pod(name string, phase v1.PodPhase, cpu string) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Status: v1.PodStatus{Phase: phase},
		Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c"}}}}
	if cpu != "" {
		p.Spec.Containers[0].Resources = v1.ResourceRequirements{Requests: rl("cpu", cpu), Limits: rl("memory", "1Gi")}
	}
	return p
}

func TestComputeUsage(t *testing.T) {
	q := &v1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "q"}, Spec: v1.ResourceQuotaSpec{Hard: rl(
		"pods", "10", "requests.cpu", "4", "limits.memory", "8Gi", "services", "5", "services.nodeports", "2",
		"configmaps", "3", "count/secrets", "3", "count/deployments.apps", "1")}}
	objs := []runtime.Object{
		pod("a", v1.PodRunning, "500m"), pod("b", v1.PodPending, ""), pod("done", v1.PodSucceeded, "1"), pod("failed", v1.PodFailed, ""),
		&v1.Service{Spec: v1.ServiceSpec{Type: v1.ServiceTypeNodePort, Ports: []v1.ServicePort{{Port: 1}}}},
		&v1.Service{Spec: v1.ServiceSpec{Type: v1.ServiceTypeClusterIP}},
		&v1.ConfigMap{}, &v1.Secret{}, &v1.Secret{},
	}
	got := quota.String(ComputeUsage(q, objs, time.Now()))
	want := "configmaps=1,count/secrets=2,limits.memory=1Gi,pods=2,requests.cpu=500m,services.nodeports=1,services=2"
	if got != want {
		t.Errorf("usage\n got %s\nwant %s", got, want)
	}
	// A scoped quota counts only the pods it selects.
	q.Spec.Scopes = []v1.ResourceQuotaScope{v1.ResourceQuotaScopeBestEffort}
	q.Spec.Hard = rl("pods", "10")
	if got := quota.String(ComputeUsage(q, objs, time.Now())); got != "pods=1" {
		t.Errorf("BestEffort usage %s", got)
	}
	if got := Counted(rl("pods", "1", "count/configmaps", "1", "requests.storage", "1Gi")); len(got) != 3 || got[0] != "pods" || got[1] != "configmaps" || got[2] != "persistentvolumeclaims" {
		t.Errorf("counted %v", got)
	}
}

func TestControllerKeepsStatus(t *testing.T) {
	q := &v1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "q"}, Spec: v1.ResourceQuotaSpec{Hard: rl("pods", "2", "configmaps", "5")}}
	client := fake.NewClientset(q, pod("a", v1.PodRunning, ""), pod("b", v1.PodRunning, ""), pod("c", v1.PodSucceeded, ""),
		&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cm"}},
		&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "cm"}})
	f := informers.NewSharedInformerFactory(client, 0)
	c := New(client, f, Options{BatchPeriod: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.Start(ctx.Done())
	go c.Run(ctx, 2)

	status := func() string {
		got, err := client.CoreV1().ResourceQuotas("ns").Get(ctx, "q", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return quota.String(got.Status.Hard) + " / " + quota.String(got.Status.Used)
	}
	wait := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for status() != want {
			if time.Now().After(deadline) {
				t.Fatalf("status %q, want %q", status(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wait("configmaps=5,pods=2 / configmaps=1,pods=2")
	if err := client.CoreV1().Pods("ns").Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("configmaps=5,pods=2 / configmaps=1,pods=1")
	b, _ := client.CoreV1().Pods("ns").Get(ctx, "b", metav1.GetOptions{})
	b.Status.Phase = v1.PodFailed
	if _, err := client.CoreV1().Pods("ns").UpdateStatus(ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("configmaps=5,pods=2 / configmaps=1,pods=0")
	cur, _ := client.CoreV1().ResourceQuotas("ns").Get(ctx, "q", metav1.GetOptions{})
	cur.Spec.Hard = rl("pods", "3")
	if _, err := client.CoreV1().ResourceQuotas("ns").Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("pods=3 / pods=0")
}
