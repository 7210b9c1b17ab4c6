package apiserver_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ResourceQuotas are served with their status subresource, and creates
// over a quota's hard limits are refused with upstream's 403 while
// admitted creates are charged to status.used. No controller runs here:
// the test writes status.hard as the resourcequota controller would.
func TestResourceQuotaAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	ts := startServer(t)
	c := ts.client
	ctx := context.Background()

	found := discovered(t, c, "v1")
	if r := found["resourcequotas"]; !r.Namespaced || r.Kind != "ResourceQuota" || len(r.ShortNames) != 1 || r.ShortNames[0] != "quota" {
		t.Errorf("discovery: %+v", r)
	}
	if _, ok := found["resourcequotas/status"]; !ok {
		t.Error("no resourcequotas/status")
	}

	quotas := c.CoreV1().ResourceQuotas("default")
	_, err := quotas.Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "bad"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"widgets": resource.MustParse("1")}}}, metav1.CreateOptions{})
	assertInvalidField(t, err, "spec.hard[widgets]", "must be a standard resource for quota")

	hard := corev1.ResourceList{corev1.ResourcePods: resource.MustParse("2")}
	q, err := quotas.Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "pods"},
		Spec:   corev1.ResourceQuotaSpec{Hard: hard},
		Status: corev1.ResourceQuotaStatus{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("100")}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Status.Hard) != 0 || q.Generation != 0 {
		t.Errorf("created quota: status %+v generation %d", q.Status, q.Generation)
	}
	newPod := func(name string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	}
	// Not enforced until its status is known.
	if _, err := c.CoreV1().Pods("default").Create(ctx, newPod("early"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("pod before the quota's status is set: %v", err)
	}
	if err := c.CoreV1().Pods("default").Delete(ctx, "early", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	q.Spec.Hard = corev1.ResourceList{corev1.ResourcePods: resource.MustParse("7")} // ignored by /status
	q.Status = corev1.ResourceQuotaStatus{Hard: hard, Used: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")}}
	q, err = quotas.UpdateStatus(ctx, q, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := q.Spec.Hard[corev1.ResourcePods]; got.Value() != 2 {
		t.Errorf("status update changed spec: %s", got.String())
	}

	if _, err := c.CoreV1().Pods("default").Create(ctx, newPod("dry"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatalf("dry-run pod: %v", err)
	}
	for _, name := range []string{"one", "two"} {
		if _, err := c.CoreV1().Pods("default").Create(ctx, newPod(name), metav1.CreateOptions{}); err != nil {
			t.Fatalf("pod %s: %v", name, err)
		}
	}
	q, _ = quotas.Get(ctx, "pods", metav1.GetOptions{})
	if got := q.Status.Used[corev1.ResourcePods]; got.Value() != 2 {
		t.Errorf("used after two pods: %s", got.String())
	}
	_, err = c.CoreV1().Pods("default").Create(ctx, newPod("three"), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "exceeded quota: pods, requested: pods=1, used: pods=2, limited: pods=2") {
		t.Fatalf("third pod: %v", err)
	}
	_, err = c.CoreV1().Pods("default").Create(ctx, newPod("dry3"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if !apierrors.IsForbidden(err) {
		t.Errorf("dry-run third pod: %v", err)
	}
	// Other namespaces and resources are not limited.
	if _, err := c.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("configmap: %v", err)
	}
	if _, err := c.CoreV1().Pods("kube-public").Create(ctx, newPod("three"), metav1.CreateOptions{}); err != nil {
		t.Errorf("pod in another namespace: %v", err)
	}
}
