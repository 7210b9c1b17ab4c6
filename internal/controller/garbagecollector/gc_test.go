package garbagecollector

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
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/record"

	"github.com/portal-net/portal/internal/controller/internal/ctltest"
)

// env is one API server with one collector, shared by subtests that each
// work in their own namespace.
type env struct {
	client     kubernetes.Interface
	recorder   *record.FakeRecorder
	namespaces int
}

func startEnv(t *testing.T) *env {
	t.Helper()
	s := apitest.Start(t)
	md, err := metadata.NewForConfig(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	rec := record.NewFakeRecorder(1000)
	c := New(s.Client, md, s.Client.Discovery(), rec, Options{})
	ctltest.Go(t, func(ctx context.Context) { c.Run(ctx, 2) })
	return &env{client: s.Client, recorder: rec}
}

func (e *env) namespace(t *testing.T) string {
	t.Helper()
	e.namespaces++
	name := fmt.Sprintf("gc-%d", e.namespaces)
	ctltest.CreateNamespace(t, e.client, name)
	return name
}

func ownerRef(apiVersion, kind string, o metav1.Object, block bool) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: o.GetName(), UID: o.GetUID(), BlockOwnerDeletion: &block}
}

func cmRef(o metav1.Object, block bool) metav1.OwnerReference {
	return ownerRef("v1", "ConfigMap", o, block)
}

func (e *env) configMap(t *testing.T, ns, name string, finalizers []string, owners ...metav1.OwnerReference) *v1.ConfigMap {
	t.Helper()
	cm, err := e.client.CoreV1().ConfigMaps(ns).Create(context.Background(), &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: name, Namespace: ns, OwnerReferences: owners, Finalizers: finalizers,
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

func (e *env) pod(t *testing.T, ns, name string, finalizers []string, owners ...metav1.OwnerReference) *v1.Pod {
	t.Helper()
	p, err := e.client.CoreV1().Pods(ns).Create(context.Background(), &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "web"}, OwnerReferences: owners, Finalizers: finalizers},
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "busybox"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func podTemplate() v1.PodTemplateSpec {
	return v1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "busybox"}}},
	}
}

func (e *env) replicaSet(t *testing.T, ns, name string, owners ...metav1.OwnerReference) *appsv1.ReplicaSet {
	t.Helper()
	zero := int32(0)
	rs, err := e.client.AppsV1().ReplicaSets(ns).Create(context.Background(), &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, OwnerReferences: owners},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &zero,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: podTemplate(),
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func (e *env) deployment(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	zero := int32(0)
	d, err := e.client.AppsV1().Deployments(ns).Create(context.Background(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &zero,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: podTemplate(),
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func deleteWith(t *testing.T, del func(context.Context, string, metav1.DeleteOptions) error, name string, policy metav1.DeletionPropagation) {
	t.Helper()
	if err := del(context.Background(), name, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond for up to 30s.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true,
		func(context.Context) (bool, error) { return cond() })
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// gone returns a condition true once get reports NotFound.
func gone[T any](get func(context.Context, string, metav1.GetOptions) (T, error), name string) func() (bool, error) {
	return func() (bool, error) {
		_, err := get(context.Background(), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}
}

func (e *env) getCM(t *testing.T, ns, name string) *v1.ConfigMap {
	t.Helper()
	cm, err := e.client.CoreV1().ConfigMaps(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("configmap %s/%s: %v", ns, name, err)
	}
	return cm
}

func ownerUIDs(o metav1.Object) []types.UID {
	var out []types.UID
	for _, r := range o.GetOwnerReferences() {
		out = append(out, r.UID)
	}
	return out
}

func TestGarbageCollector(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()

	t.Run("background deletion of a ReplicaSet removes its pods", func(t *testing.T) {
		ns := e.namespace(t)
		rs := e.replicaSet(t, ns, "web")
		ref := ownerRef("apps/v1", "ReplicaSet", rs, true)
		e.pod(t, ns, "web-1", nil, ref)
		e.pod(t, ns, "web-2", nil, ref)
		unrelated := e.pod(t, ns, "other", nil)
		deleteWith(t, e.client.AppsV1().ReplicaSets(ns).Delete, "web", metav1.DeletePropagationBackground)
		pods := e.client.CoreV1().Pods(ns)
		eventually(t, "pod web-1 collected", gone(pods.Get, "web-1"))
		eventually(t, "pod web-2 collected", gone(pods.Get, "web-2"))
		if _, err := pods.Get(ctx, unrelated.Name, metav1.GetOptions{}); err != nil {
			t.Errorf("pod without owner: %v", err)
		}
	})

	t.Run("background deletion of a ConfigMap removes the ConfigMaps it owns", func(t *testing.T) {
		ns := e.namespace(t)
		owner := e.configMap(t, ns, "owner", nil)
		e.configMap(t, ns, "dep-1", nil, cmRef(owner, false))
		e.configMap(t, ns, "dep-2", nil, cmRef(owner, true))
		cms := e.client.CoreV1().ConfigMaps(ns)
		deleteWith(t, cms.Delete, "owner", metav1.DeletePropagationBackground)
		eventually(t, "dep-1 collected", gone(cms.Get, "dep-1"))
		eventually(t, "dep-2 collected", gone(cms.Get, "dep-2"))
	})

	t.Run("foreground deletion waits for blocking dependents", func(t *testing.T) {
		ns := e.namespace(t)
		const hold = "portal.test/hold"
		owner := e.configMap(t, ns, "owner", nil)
		e.configMap(t, ns, "blocking", []string{hold}, cmRef(owner, true))
		e.configMap(t, ns, "nonblocking", nil, cmRef(owner, false))
		cms := e.client.CoreV1().ConfigMaps(ns)
		deleteWith(t, cms.Delete, "owner", metav1.DeletePropagationForeground)

		eventually(t, "nonblocking collected", gone(cms.Get, "nonblocking"))
		eventually(t, "blocking dependent being deleted", func() (bool, error) {
			cm, err := cms.Get(ctx, "blocking", metav1.GetOptions{})
			return err == nil && cm.DeletionTimestamp != nil, err
		})
		// The dependent is held by its finalizer; the owner must wait.
		time.Sleep(time.Second)
		got := e.getCM(t, ns, "owner")
		if got.DeletionTimestamp == nil {
			t.Errorf("owner has no deletionTimestamp")
		}
		if !hasFinalizer(got.Finalizers, metav1.FinalizerDeleteDependents) {
			t.Errorf("owner finalizers %v, want %s while a blocking dependent exists", got.Finalizers, metav1.FinalizerDeleteDependents)
		}

		blocking := e.getCM(t, ns, "blocking")
		blocking.Finalizers = nil
		if _, err := cms.Update(ctx, blocking, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "blocking dependent gone", gone(cms.Get, "blocking"))
		eventually(t, "owner gone once unblocked", gone(cms.Get, "owner"))
	})

	t.Run("orphan deletion keeps dependents and drops their reference", func(t *testing.T) {
		ns := e.namespace(t)
		owner := e.configMap(t, ns, "owner", nil)
		other := e.configMap(t, ns, "other", nil)
		e.configMap(t, ns, "dep-1", nil, cmRef(owner, true))
		e.configMap(t, ns, "dep-2", nil, cmRef(owner, false), cmRef(other, false))
		cms := e.client.CoreV1().ConfigMaps(ns)
		deleteWith(t, cms.Delete, "owner", metav1.DeletePropagationOrphan)
		eventually(t, "owner gone", gone(cms.Get, "owner"))
		if got := ownerUIDs(e.getCM(t, ns, "dep-1")); len(got) != 0 {
			t.Errorf("dep-1 owners %v, want none", got)
		}
		if got := ownerUIDs(e.getCM(t, ns, "dep-2")); len(got) != 1 || got[0] != other.UID {
			t.Errorf("dep-2 owners %v, want only %s", got, other.UID)
		}
	})

	t.Run("background deletion of a Deployment removes its ReplicaSet and pods", func(t *testing.T) {
		ns := e.namespace(t)
		d := e.deployment(t, ns, "web")
		rs := e.replicaSet(t, ns, "web-abc", ownerRef("apps/v1", "Deployment", d, true))
		e.pod(t, ns, "web-abc-1", nil, ownerRef("apps/v1", "ReplicaSet", rs, true))
		e.pod(t, ns, "web-abc-2", nil, ownerRef("apps/v1", "ReplicaSet", rs, true))
		deleteWith(t, e.client.AppsV1().Deployments(ns).Delete, "web", metav1.DeletePropagationBackground)
		eventually(t, "pod web-abc-1 collected", gone(e.client.CoreV1().Pods(ns).Get, "web-abc-1"))
		eventually(t, "pod web-abc-2 collected", gone(e.client.CoreV1().Pods(ns).Get, "web-abc-2"))
		eventually(t, "replicaset collected", gone(e.client.AppsV1().ReplicaSets(ns).Get, "web-abc"))
	})

	t.Run("foreground deletion of a Deployment waits for the whole chain", func(t *testing.T) {
		ns := e.namespace(t)
		const hold = "portal.test/hold"
		d := e.deployment(t, ns, "web")
		rs := e.replicaSet(t, ns, "web-abc", ownerRef("apps/v1", "Deployment", d, true))
		e.pod(t, ns, "web-abc-1", []string{hold}, ownerRef("apps/v1", "ReplicaSet", rs, true))
		e.pod(t, ns, "web-abc-2", nil, ownerRef("apps/v1", "ReplicaSet", rs, true))
		deleteWith(t, e.client.AppsV1().Deployments(ns).Delete, "web", metav1.DeletePropagationForeground)
		pods := e.client.CoreV1().Pods(ns)
		eventually(t, "pod web-abc-2 collected", gone(pods.Get, "web-abc-2"))
		eventually(t, "held pod being deleted", func() (bool, error) {
			p, err := pods.Get(ctx, "web-abc-1", metav1.GetOptions{})
			return err == nil && p.DeletionTimestamp != nil, err
		})
		// While a pod blocks, the ReplicaSet and the Deployment wait with
		// the foregroundDeletion finalizer.
		time.Sleep(500 * time.Millisecond)
		gotRS, err := e.client.AppsV1().ReplicaSets(ns).Get(ctx, "web-abc", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("replicaset gone while its pod blocks: %v", err)
		}
		gotD, err := e.client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("deployment gone while its chain blocks: %v", err)
		}
		for _, o := range []metav1.Object{gotRS, gotD} {
			if o.GetDeletionTimestamp() == nil || !hasFinalizer(o.GetFinalizers(), metav1.FinalizerDeleteDependents) {
				t.Errorf("%s: deletionTimestamp %v finalizers %v, want deleting with %s",
					o.GetName(), o.GetDeletionTimestamp(), o.GetFinalizers(), metav1.FinalizerDeleteDependents)
			}
		}

		p, err := pods.Get(ctx, "web-abc-1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Finalizers = nil
		if _, err := pods.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "held pod gone", gone(pods.Get, "web-abc-1"))
		eventually(t, "replicaset gone", gone(e.client.AppsV1().ReplicaSets(ns).Get, "web-abc"))
		eventually(t, "deployment gone", gone(e.client.AppsV1().Deployments(ns).Get, "web"))
	})

	t.Run("an object with two owners loses only the deleted one", func(t *testing.T) {
		ns := e.namespace(t)
		a := e.configMap(t, ns, "a", nil)
		b := e.configMap(t, ns, "b", nil)
		e.configMap(t, ns, "dep", nil, cmRef(a, true), cmRef(b, true))
		cms := e.client.CoreV1().ConfigMaps(ns)
		deleteWith(t, cms.Delete, "a", metav1.DeletePropagationBackground)
		eventually(t, "reference to a removed", func() (bool, error) {
			cm, err := cms.Get(ctx, "dep", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			got := ownerUIDs(cm)
			return len(got) == 1 && got[0] == b.UID, nil
		})
	})

	t.Run("a reference to a UID that never existed is collected", func(t *testing.T) {
		ns := e.namespace(t)
		real := e.configMap(t, ns, "real", nil)
		kept := e.configMap(t, ns, "kept", nil, cmRef(real, false))
		e.configMap(t, ns, "dangling", nil, metav1.OwnerReference{
			APIVersion: "v1", Kind: "ConfigMap", Name: "real", UID: "00000000-0000-0000-0000-000000000001",
		})
		cms := e.client.CoreV1().ConfigMaps(ns)
		eventually(t, "dangling collected", gone(cms.Get, "dangling"))
		if got := ownerUIDs(e.getCM(t, ns, kept.Name)); len(got) != 1 || got[0] != real.UID {
			t.Errorf("kept owners %v, want %s", got, real.UID)
		}
	})

	t.Run("an owner of a kind no resource serves is never assumed absent", func(t *testing.T) {
		ns := e.namespace(t)
		e.configMap(t, ns, "dep", nil, metav1.OwnerReference{
			APIVersion: "example.com/v1", Kind: "Widget", Name: "w", UID: "00000000-0000-0000-0000-000000000003",
		})
		// Control: a dangling reference created at the same time is
		// collected, so the collector did look at both.
		e.configMap(t, ns, "control", nil, metav1.OwnerReference{
			APIVersion: "v1", Kind: "ConfigMap", Name: "w", UID: "00000000-0000-0000-0000-000000000004",
		})
		eventually(t, "control collected", gone(e.client.CoreV1().ConfigMaps(ns).Get, "control"))
		time.Sleep(300 * time.Millisecond)
		e.getCM(t, ns, "dep")
	})

	t.Run("a namespaced owner is looked up in the dependent's namespace", func(t *testing.T) {
		ns := e.namespace(t)
		owner := e.configMap(t, "default", "gc-cross-namespace-owner", nil)
		t.Cleanup(func() {
			_ = e.client.CoreV1().ConfigMaps("default").Delete(ctx, owner.Name, metav1.DeleteOptions{})
		})
		e.configMap(t, ns, "dep", nil, cmRef(owner, false))
		eventually(t, "dependent of an owner in another namespace collected", gone(e.client.CoreV1().ConfigMaps(ns).Get, "dep"))
		e.getCM(t, "default", owner.Name)
	})

	t.Run("a cluster-scoped owner collects namespaced dependents", func(t *testing.T) {
		ns := e.namespace(t)
		node, err := e.client.CoreV1().Nodes().Create(ctx, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "gc-node"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		e.configMap(t, ns, "dep", nil, ownerRef("v1", "Node", node, false))
		time.Sleep(500 * time.Millisecond)
		e.getCM(t, ns, "dep")
		deleteWith(t, e.client.CoreV1().Nodes().Delete, node.Name, metav1.DeletePropagationBackground)
		eventually(t, "dependent of a deleted node collected", gone(e.client.CoreV1().ConfigMaps(ns).Get, "dep"))
	})

	t.Run("a cluster-scoped object cannot be owned by a namespaced one", func(t *testing.T) {
		node, err := e.client.CoreV1().Nodes().Create(ctx, &v1.Node{ObjectMeta: metav1.ObjectMeta{
			Name:            "gc-invalid-owner",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "x", UID: "00000000-0000-0000-0000-000000000002"}},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "OwnerRefInvalidNamespace event", func() (bool, error) {
			for {
				select {
				case ev := <-e.recorder.Events:
					if strings.Contains(ev, "OwnerRefInvalidNamespace") && strings.Contains(ev, "cluster-scoped") {
						return true, nil
					}
				default:
					return false, nil
				}
			}
		})
		if _, err := e.client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{}); err != nil {
			t.Errorf("node with an invalid owner must stay: %v", err)
		}
	})
}

func hasFinalizer(fs []string, f string) bool {
	for _, x := range fs {
		if x == f {
			return true
		}
	}
	return false
}
