package quota

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func rl(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func pod(name string, requests, limits corev1.ResourceList) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: requests, Limits: limits}}}}}
}

func TestUsage(t *testing.T) {
	now := time.Now()
	p := pod("p", rl("cpu", "100m", "memory", "64Mi"), rl("cpu", "200m"))
	p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "d", Resources: corev1.ResourceRequirements{Requests: rl("cpu", "50m")}})
	p.Spec.InitContainers = []corev1.Container{{Name: "i", Resources: corev1.ResourceRequirements{Requests: rl("cpu", "1")}}}
	got := Usage(p, now)
	want := rl("pods", "1", "count/pods", "1", "cpu", "1", "requests.cpu", "1", "memory", "64Mi", "requests.memory", "64Mi", "limits.cpu", "200m")
	if String(got) != String(want) {
		t.Errorf("pod usage\n got %s\nwant %s", String(got), String(want))
	}
	done := pod("done", nil, nil)
	done.Status.Phase = corev1.PodSucceeded
	if u := Usage(done, now); len(u) != 0 {
		t.Errorf("terminal pod charged: %s", String(u))
	}
	stuck := pod("stuck", nil, nil)
	stuck.DeletionTimestamp = &metav1.Time{Time: now.Add(-time.Minute)}
	stuck.DeletionGracePeriodSeconds = ptr.To[int64](30)
	if u := Usage(stuck, now); len(u) != 0 {
		t.Errorf("pod past its deletion grace charged: %s", String(u))
	}
	lb := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 1}, {Port: 2}}}}
	if got, want := String(Usage(lb, now)), "count/services=1,services.loadbalancers=1,services.nodeports=2,services=1"; got != want {
		t.Errorf("service usage %s, want %s", got, want)
	}
	pvc := &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("gold"),
		Resources: corev1.VolumeResourceRequirements{Requests: rl("storage", "1Gi")}}}
	if got, want := String(Usage(pvc, now)), "count/persistentvolumeclaims=1,gold.storageclass.storage.k8s.io/persistentvolumeclaims=1,gold.storageclass.storage.k8s.io/requests.storage=1Gi,persistentvolumeclaims=1,requests.storage=1Gi"; got != want {
		t.Errorf("pvc usage %s, want %s", got, want)
	}
	if u := Usage(&corev1.Namespace{}, now); u != nil {
		t.Errorf("namespace charged: %s", String(u))
	}
}

func TestMatchesScopes(t *testing.T) {
	best := pod("best", nil, nil)
	burst := pod("burst", rl("cpu", "1"), nil)
	term := pod("term", nil, nil)
	term.Spec.ActiveDeadlineSeconds = ptr.To[int64](10)
	q := func(scopes ...corev1.ResourceQuotaScope) *corev1.ResourceQuota {
		return &corev1.ResourceQuota{Spec: corev1.ResourceQuotaSpec{Scopes: scopes}}
	}
	for _, tc := range []struct {
		q    *corev1.ResourceQuota
		obj  *corev1.Pod
		want bool
	}{
		{q(), burst, true},
		{q(corev1.ResourceQuotaScopeBestEffort), best, true},
		{q(corev1.ResourceQuotaScopeBestEffort), burst, false},
		{q(corev1.ResourceQuotaScopeNotBestEffort), burst, true},
		{q(corev1.ResourceQuotaScopeTerminating), term, true},
		{q(corev1.ResourceQuotaScopeNotTerminating), term, false},
		{q(corev1.ResourceQuotaScopeNotTerminating, corev1.ResourceQuotaScopeBestEffort), best, true},
	} {
		if got := Matches(tc.q, tc.obj); got != tc.want {
			t.Errorf("scopes %v pod %s: %v, want %v", tc.q.Spec.Scopes, tc.obj.Name, got, tc.want)
		}
	}
	if Matches(q(corev1.ResourceQuotaScopeBestEffort), &corev1.ConfigMap{}) {
		t.Error("a scoped quota matched a configmap")
	}
	pc := &corev1.ResourceQuota{Spec: corev1.ResourceQuotaSpec{ScopeSelector: &corev1.ScopeSelector{MatchExpressions: []corev1.ScopedResourceSelectorRequirement{
		{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpIn, Values: []string{"high"}}}}}}
	high := pod("high", nil, nil)
	high.Spec.PriorityClassName = "high"
	if !Matches(pc, high) || Matches(pc, best) {
		t.Error("PriorityClass In selector")
	}
}

// memQuotas is a Quotas in memory.
type memQuotas struct {
	mu     sync.Mutex
	quotas map[string]*corev1.ResourceQuota
}

func (m *memQuotas) List(_ context.Context, ns string) ([]corev1.ResourceQuota, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []corev1.ResourceQuota
	for _, q := range m.quotas {
		if q.Namespace == ns {
			out = append(out, *q.DeepCopy())
		}
	}
	return out, nil
}

func (m *memQuotas) Update(_ context.Context, ns, name string, fn func(*corev1.ResourceQuota) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	q, ok := m.quotas[name]
	if !ok || q.Namespace != ns {
		return apierrors.NewNotFound(corev1.Resource("resourcequotas"), name)
	}
	c := q.DeepCopy()
	if err := fn(c); err != nil {
		return err
	}
	m.quotas[name] = c
	return nil
}

func TestAdmission(t *testing.T) {
	ctx := context.Background()
	store := &memQuotas{quotas: map[string]*corev1.ResourceQuota{
		"pods": {ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pods"},
			Spec:   corev1.ResourceQuotaSpec{Hard: rl("pods", "2")},
			Status: corev1.ResourceQuotaStatus{Hard: rl("pods", "2"), Used: rl("pods", "0")}},
		"cpu": {ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cpu"},
			Spec:   corev1.ResourceQuotaSpec{Hard: rl("requests.cpu", "1")},
			Status: corev1.ResourceQuotaStatus{Hard: rl("requests.cpu", "1"), Used: rl("requests.cpu", "0")}},
		// Not yet seen by the controller: not enforced.
		"new": {ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "new"}, Spec: corev1.ResourceQuotaSpec{Hard: rl("pods", "0")}},
		"elsewhere": {ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "elsewhere"},
			Status: corev1.ResourceQuotaStatus{Hard: rl("pods", "0"), Used: rl("pods", "0")}},
	}}
	a := &Admission{Quotas: store}
	used := func(name string) string { return String(store.quotas[name].Status.Used) }

	if err := a.Admit(ctx, pod("a", rl("cpu", "400m"), nil), false); err != nil {
		t.Fatalf("first pod: %v", err)
	}
	if used("pods") != "pods=1" || used("cpu") != "requests.cpu=400m" {
		t.Errorf("after one pod: %s; %s", used("pods"), used("cpu"))
	}
	if err := a.Admit(ctx, pod("dry", nil, nil), true); err != nil || used("pods") != "pods=1" {
		t.Errorf("dry run: %v, used %s", err, used("pods"))
	}
	err := a.Admit(ctx, pod("b", rl("cpu", "700m"), nil), false)
	if !apierrors.IsForbidden(err) || err.Error() != `pods "b" is forbidden: exceeded quota: cpu, requested: requests.cpu=700m, used: requests.cpu=400m, limited: requests.cpu=1` {
		t.Errorf("over the cpu quota: %v", err)
	}
	if used("pods") != "pods=1" {
		t.Errorf("a rejected pod was charged: %s", used("pods"))
	}
	if err := a.Admit(ctx, pod("c", nil, nil), false); err != nil {
		t.Fatalf("second pod: %v", err)
	}
	err = a.Admit(ctx, pod("d", nil, nil), false)
	if !apierrors.IsForbidden(err) || err.Error() != `pods "d" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=2, limited: pods=2` {
		t.Errorf("third pod: %v", err)
	}
	if err := a.Admit(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cm"}}, false); err != nil {
		t.Errorf("configmaps are not limited here: %v", err)
	}
}

// Concurrent creates cannot both take the last unit.
func TestAdmissionConcurrent(t *testing.T) {
	store := &memQuotas{quotas: map[string]*corev1.ResourceQuota{
		"q": {ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "q"},
			Status: corev1.ResourceQuotaStatus{Hard: rl("count/configmaps", "5"), Used: rl("count/configmaps", "0")}},
	}}
	a := &Admission{Quotas: store}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if a.Admit(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cm"}}, false) == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 5 || String(store.quotas["q"].Status.Used) != "count/configmaps=5" {
		t.Errorf("%d admitted, used %s", ok, String(store.quotas["q"].Status.Used))
	}
}

// staleQuotas lists an older version of the quotas than it stores, as a
// watch cache a moment behind etcd does.
type staleQuotas struct {
	listed []corev1.ResourceQuota
	*memQuotas
}

func (s staleQuotas) List(context.Context, string) ([]corev1.ResourceQuota, error) {
	return s.listed, nil
}

// The controller has just set the quota's status, but the list admission
// reads does not show it yet: the stored quota decides.
func TestAdmissionStaleList(t *testing.T) {
	meta := metav1.ObjectMeta{Namespace: "ns", Name: "pods"}
	spec := corev1.ResourceQuotaSpec{Hard: rl("pods", "1")}
	store := staleQuotas{
		listed: []corev1.ResourceQuota{{ObjectMeta: meta, Spec: spec}},
		memQuotas: &memQuotas{quotas: map[string]*corev1.ResourceQuota{
			"pods": {ObjectMeta: meta, Spec: spec, Status: corev1.ResourceQuotaStatus{Hard: rl("pods", "1"), Used: rl("pods", "0")}},
		}},
	}
	a := &Admission{Quotas: store}
	if err := a.Admit(context.Background(), pod("a", nil, nil), false); err != nil {
		t.Fatalf("first pod: %v", err)
	}
	if got := String(store.quotas["pods"].Status.Used); got != "pods=1" {
		t.Errorf("first pod not charged: used %s", got)
	}
	err := a.Admit(context.Background(), pod("b", nil, nil), false)
	if !apierrors.IsForbidden(err) {
		t.Errorf("second pod over a quota the list showed without status: %v, want 403", err)
	}
}
