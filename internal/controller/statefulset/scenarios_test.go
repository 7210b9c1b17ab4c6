package statefulset

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/polymorphichelpers"

	"github.com/portal-net/portal/internal/controller/internal/ctltest"
)

func TestStatefulSet(t *testing.T) {
	e := start(t)
	ctx := context.Background()

	t.Run("OrderedReady creates one ordinal at a time", func(t *testing.T) {
		ns := e.namespace(t)
		e.create(t, webSet(ns, 3))
		for i, name := range []string{"web-0", "web-1", "web-2"} {
			ctltest.Eventually(t, waitTimeout, name+" to be created", func() (bool, string) {
				pods := e.pods(t, ns)
				return len(pods) == i+1 && pods[i].Name == name, ctltest.PodNames(pods)
			})
			if i < 2 {
				ctltest.Never(t, 500*time.Millisecond, "created the next pod before "+name+" was ready", func() bool {
					return len(e.pods(t, ns)) > i+1
				})
			}
			e.markReady(t, ns, name)
		}

		set := e.get(t, ns)
		for _, p := range e.pods(t, ns) {
			ordinal := strings.TrimPrefix(p.Name, "web-")
			if p.Spec.Hostname != p.Name || p.Spec.Subdomain != "nginx" {
				t.Errorf("%s: hostname %q subdomain %q, want DNS name %s.nginx.%s.svc.cluster.local", p.Name, p.Spec.Hostname, p.Spec.Subdomain, p.Name, ns)
			}
			if p.Labels[appsv1.StatefulSetPodNameLabel] != p.Name || p.Labels[appsv1.PodIndexLabel] != ordinal ||
				p.Labels["app"] != "nginx" || !strings.HasPrefix(p.Labels[appsv1.ControllerRevisionHashLabelKey], "web-") {
				t.Errorf("%s: labels %v", p.Name, p.Labels)
			}
			ref := metav1.GetControllerOf(&p)
			if ref == nil || ref.UID != set.UID || ref.Kind != "StatefulSet" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
				t.Errorf("%s: controller ref %+v", p.Name, ref)
			}
		}

		e.rolledOut(t, ns)
		set = e.get(t, ns)
		st := set.Status
		if st.ObservedGeneration != set.Generation || st.Replicas != 3 || st.ReadyReplicas != 3 || st.AvailableReplicas != 3 ||
			st.CurrentReplicas != 3 || st.UpdatedReplicas != 3 || st.CurrentRevision == "" || st.CurrentRevision != st.UpdateRevision ||
			st.CollisionCount == nil {
			t.Errorf("status = %+v", st)
		}
		if msg, _ := rolloutStatus(t, set); !strings.Contains(msg, "3 new pods have been updated") {
			t.Errorf("kubectl rollout status: %q", msg)
		}
		for _, p := range e.pods(t, ns) {
			if p.Labels[appsv1.ControllerRevisionHashLabelKey] != st.UpdateRevision {
				t.Errorf("%s runs revision %s, status says %s", p.Name, p.Labels[appsv1.ControllerRevisionHashLabelKey], st.UpdateRevision)
			}
		}
		ctltest.Eventually(t, waitTimeout, "creation events", func() (bool, string) {
			ev := e.events(t, ns)
			return strings.Contains(ev, "SuccessfulCreate: create Pod web-0 in StatefulSet web successful") &&
				strings.Contains(ev, "SuccessfulCreate: create Pod web-2 in StatefulSet web successful"), ev
		})
	})

	t.Run("Parallel creates all pods at once", func(t *testing.T) {
		ns := e.namespace(t)
		e.create(t, webSet(ns, 3, parallel))
		ctltest.Eventually(t, waitTimeout, "three pods without any being ready", func() (bool, string) {
			pods := e.pods(t, ns)
			return ctltest.PodNames(pods) == "web-0,web-1,web-2", ctltest.PodNames(pods)
		})
	})

	t.Run("ordinals start at spec.ordinals.start", func(t *testing.T) {
		ns := e.namespace(t)
		e.create(t, webSet(ns, 2, parallel, startAt(3)))
		ctltest.Eventually(t, waitTimeout, "web-3 and web-4", func() (bool, string) {
			pods := e.pods(t, ns)
			return ctltest.PodNames(pods) == "web-3,web-4", ctltest.PodNames(pods)
		})
	})

	t.Run("scale down removes the highest ordinal first, one at a time", func(t *testing.T) {
		ns := e.namespace(t)
		k := e.runKubelet(t, ns)
		e.create(t, webSet(ns, 4))
		e.rolledOut(t, ns)
		e.updateSet(t, ns, func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr32(1) })
		ctltest.Eventually(t, waitTimeout, "one pod left", func() (bool, string) {
			pods := e.pods(t, ns)
			return ctltest.PodNames(pods) == "web-0", ctltest.PodNames(pods)
		})
		if got := k.order(); got != "web-3,web-2,web-1" {
			t.Errorf("terminated %s, want web-3,web-2,web-1", got)
		}
		e.rolledOut(t, ns)
		ctltest.Eventually(t, waitTimeout, "status to count one replica", func() (bool, string) {
			st := e.get(t, ns).Status
			return st.Replicas == 1 && st.ReadyReplicas == 1 && st.AvailableReplicas == 1, fmt.Sprintf("%+v", st)
		})
		ctltest.Eventually(t, waitTimeout, "deletion events", func() (bool, string) {
			ev := e.events(t, ns)
			return strings.Contains(ev, "SuccessfulDelete: delete Pod web-3 in StatefulSet web successful"), ev
		})
	})

	t.Run("ordered scale down waits for each pod to terminate", func(t *testing.T) {
		ns := e.namespace(t)
		e.create(t, webSet(ns, 3))
		for _, name := range []string{"web-0", "web-1", "web-2"} {
			ctltest.Eventually(t, waitTimeout, name+" to be created", func() (bool, string) {
				_, err := e.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
				return err == nil, ""
			})
			e.markReady(t, ns, name)
		}
		e.updateSet(t, ns, func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr32(1) })
		terminating := func(name string) bool {
			p, err := e.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			return err == nil && p.DeletionTimestamp != nil
		}
		ctltest.Eventually(t, waitTimeout, "web-2 terminating", func() (bool, string) { return terminating("web-2"), podsAt(e.pods(t, ns)) })
		ctltest.Never(t, 500*time.Millisecond, "deleted web-1 while web-2 was still terminating", func() bool { return terminating("web-1") })
		// The node agent finishes web-2's termination.
		if err := e.client.CoreV1().Pods(ns).Delete(ctx, "web-2", metav1.DeleteOptions{GracePeriodSeconds: ptr64(0)}); err != nil {
			t.Fatal(err)
		}
		ctltest.Eventually(t, waitTimeout, "web-1 terminating", func() (bool, string) { return terminating("web-1"), podsAt(e.pods(t, ns)) })
		if terminating("web-0") {
			t.Errorf("web-0 is being deleted")
		}
	})

	t.Run("minReadySeconds delays availableReplicas", func(t *testing.T) {
		ns := e.namespace(t)
		e.create(t, webSet(ns, 1, minReady(3)))
		ctltest.Eventually(t, waitTimeout, "web-0", func() (bool, string) { return len(e.pods(t, ns)) == 1, "" })
		e.markReady(t, ns, "web-0")
		ctltest.Eventually(t, waitTimeout, "readyReplicas 1", func() (bool, string) {
			st := e.get(t, ns).Status
			return st.ReadyReplicas == 1, ""
		})
		if st := e.get(t, ns).Status; st.AvailableReplicas != 0 {
			t.Errorf("available right after becoming ready: %+v", st)
		}
		// No pod event follows; only the controller's own requeue finds it.
		ctltest.Eventually(t, waitTimeout, "availableReplicas 1", func() (bool, string) {
			st := e.get(t, ns).Status
			return st.AvailableReplicas == 1, ""
		})
	})

	t.Run("an image change rolls web-2, web-1, web-0", func(t *testing.T) {
		ns := e.namespace(t)
		k := e.runKubelet(t, ns)
		e.create(t, webSet(ns, 3))
		e.rolledOut(t, ns)
		before := e.get(t, ns).Status.CurrentRevision

		e.updateSet(t, ns, func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "nginx:2.0" })
		ctltest.Eventually(t, waitTimeout, "every pod on nginx:2.0", func() (bool, string) {
			pods := podsAt(e.pods(t, ns))
			return pods == "web-0=nginx:2.0 web-1=nginx:2.0 web-2=nginx:2.0", pods
		})
		e.rolledOut(t, ns)
		if got := k.order(); got != "web-2,web-1,web-0" {
			t.Errorf("update order %s, want web-2,web-1,web-0", got)
		}
		st := e.get(t, ns).Status
		if st.CurrentRevision != st.UpdateRevision || st.UpdateRevision == before || st.UpdatedReplicas != 3 || st.CurrentReplicas != 3 {
			t.Errorf("status after update: %+v (before: %s)", st, before)
		}
	})

	t.Run("partition 2 only updates web-2", func(t *testing.T) {
		ns := e.namespace(t)
		k := e.runKubelet(t, ns)
		e.create(t, webSet(ns, 3))
		e.rolledOut(t, ns)

		e.updateSet(t, ns, func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy.RollingUpdate.Partition = ptr32(2)
			s.Spec.Template.Spec.Containers[0].Image = "nginx:2.0"
		})
		e.rolledOut(t, ns)
		set := e.get(t, ns)
		if msg, _ := rolloutStatus(t, set); !strings.HasPrefix(msg, "partitioned roll out complete: 1 new pods") {
			t.Errorf("kubectl rollout status: %q", msg)
		}
		ctltest.Never(t, 500*time.Millisecond, "updated a pod below the partition", func() bool {
			return podsAt(e.pods(t, ns)) != "web-0=nginx:1.0 web-1=nginx:1.0 web-2=nginx:2.0"
		})
		st := e.get(t, ns).Status
		if st.UpdatedReplicas != 1 || st.CurrentReplicas != 2 || st.CurrentRevision == st.UpdateRevision {
			t.Errorf("partitioned status: %+v", st)
		}

		// Lowering the partition finishes the rollout.
		e.updateSet(t, ns, func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.RollingUpdate.Partition = ptr32(0) })
		ctltest.Eventually(t, waitTimeout, "every pod on nginx:2.0", func() (bool, string) {
			pods := podsAt(e.pods(t, ns))
			return pods == "web-0=nginx:2.0 web-1=nginx:2.0 web-2=nginx:2.0", pods
		})
		if got := k.order(); got != "web-2,web-1,web-0" {
			t.Errorf("update order %s", got)
		}
	})

	t.Run("kubectl rollout history and undo", func(t *testing.T) {
		ns := e.namespace(t)
		e.runKubelet(t, ns)
		e.create(t, webSet(ns, 2))
		e.rolledOut(t, ns)
		e.updateSet(t, ns, func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "nginx:2.0" })
		e.rolledOut(t, ns)
		e.updateSet(t, ns, func(s *appsv1.StatefulSet) {}) // no template change: no new revision

		kind := appsv1.SchemeGroupVersion.WithKind("StatefulSet").GroupKind()
		viewer, err := polymorphichelpers.HistoryViewerFor(kind, e.client)
		if err != nil {
			t.Fatal(err)
		}
		hist, err := viewer.GetHistory(ns, "web")
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 2 || hist[1] == nil || hist[2] == nil {
			t.Fatalf("rollout history has revisions %v, want 1 and 2", keys(hist))
		}
		if img := hist[1].(*appsv1.StatefulSet).Spec.Template.Spec.Containers[0].Image; img != "nginx:1.0" {
			t.Errorf("revision 1 image %s", img)
		}

		rb, err := polymorphichelpers.RollbackerFor(kind, e.client)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := rb.Rollback(e.get(t, ns), nil, 0, cmdutil.DryRunNone)
		if err != nil || msg != "rolled back" {
			t.Fatalf("kubectl rollout undo: %q, %v", msg, err)
		}
		ctltest.Eventually(t, waitTimeout, "pods back on nginx:1.0", func() (bool, string) {
			pods := podsAt(e.pods(t, ns))
			return pods == "web-0=nginx:1.0 web-1=nginx:1.0", pods
		})
		e.rolledOut(t, ns)
		// The old revision is reused under the next number, as upstream does.
		revs, err := e.client.AppsV1().ControllerRevisions(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		numbers := map[int64]string{}
		for _, r := range revs.Items {
			numbers[r.Revision] = r.Name
		}
		st := e.get(t, ns).Status
		if len(revs.Items) != 2 || numbers[3] != st.CurrentRevision || numbers[2] == "" {
			t.Errorf("revisions after undo: %v, current %s", numbers, st.CurrentRevision)
		}
		// Undoing to the revision already running is a no-op for kubectl,
		// which needs our revision data to match its own encoding byte for byte.
		msg, err = rb.Rollback(e.get(t, ns), nil, 3, cmdutil.DryRunNone)
		if err != nil || !strings.Contains(msg, "skipped rollback") {
			t.Errorf("undo to the current revision: %q, %v", msg, err)
		}
	})

	t.Run("revisionHistoryLimit prunes old revisions", func(t *testing.T) {
		ns := e.namespace(t)
		e.runKubelet(t, ns)
		e.create(t, webSet(ns, 1, func(s *appsv1.StatefulSet) { s.Spec.RevisionHistoryLimit = ptr32(1) }))
		for _, img := range []string{"nginx:2.0", "nginx:3.0", "nginx:4.0"} {
			e.updateSet(t, ns, func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = img })
			e.rolledOut(t, ns)
		}
		ctltest.Eventually(t, waitTimeout, "two revisions (live plus one old)", func() (bool, string) {
			revs, err := e.client.AppsV1().ControllerRevisions(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, r := range revs.Items {
				s = append(s, r.Name)
			}
			return len(revs.Items) == 2, strings.Join(s, ",")
		})
	})

	t.Run("a failed pod is replaced", func(t *testing.T) {
		ns := e.namespace(t)
		e.create(t, webSet(ns, 2, parallel))
		ctltest.Eventually(t, waitTimeout, "two pods", func() (bool, string) { p := e.pods(t, ns); return len(p) == 2, ctltest.PodNames(p) })
		old := e.pods(t, ns)[1]
		old.Status.Phase = v1.PodFailed
		if _, err := e.client.CoreV1().Pods(ns).UpdateStatus(ctx, &old, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		ctltest.Eventually(t, waitTimeout, "web-1 recreated", func() (bool, string) {
			p, err := e.client.CoreV1().Pods(ns).Get(ctx, "web-1", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, "missing"
			}
			if err != nil {
				t.Fatal(err)
			}
			return p.UID != old.UID && p.Status.Phase != v1.PodFailed, string(p.Status.Phase)
		})
		ctltest.Eventually(t, waitTimeout, "a warning event", func() (bool, string) {
			ev := e.events(t, ns)
			return strings.Contains(ev, "RecreatingFailedPod"), ev
		})
	})

	t.Run("orphaned pods are adopted, relabelled ones released", func(t *testing.T) {
		ns := e.namespace(t)
		orphan := newPod(webSet(ns, 1), &webSet(ns, 1).Spec.Template, "web-old", 0)
		orphan.OwnerReferences = nil
		if _, err := e.client.CoreV1().Pods(ns).Create(ctx, orphan, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.create(t, webSet(ns, 1))
		set := e.get(t, ns)
		ctltest.Eventually(t, waitTimeout, "web-0 adopted", func() (bool, string) {
			p, err := e.client.CoreV1().Pods(ns).Get(ctx, "web-0", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ref := metav1.GetControllerOf(p)
			return ref != nil && ref.UID == set.UID && p.UID != "" && p.Name == "web-0", p.ResourceVersion
		})
		if p := e.pods(t, ns); len(p) != 1 {
			t.Errorf("pods: %s", ctltest.PodNames(p))
		}
		// Taking the pod out of the selector releases it (its name still
		// blocks a replacement, as upstream).
		p, _ := e.client.CoreV1().Pods(ns).Get(ctx, "web-0", metav1.GetOptions{})
		p.Labels["app"] = "debug"
		if _, err := e.client.CoreV1().Pods(ns).Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		ctltest.Eventually(t, waitTimeout, "web-0 released", func() (bool, string) {
			p, err := e.client.CoreV1().Pods(ns).Get(ctx, "web-0", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return metav1.GetControllerOf(p) == nil, p.Labels["app"]
		})
	})

	t.Run("volumeClaimTemplates become emptyDir volumes", func(t *testing.T) {
		ns := e.namespace(t)
		set := webSet(ns, 1)
		// Mounting "www" from the template is what users do, but portal's
		// StatefulSet validation rejects mounts of claim templates for now.
		set.Spec.VolumeClaimTemplates = []v1.PersistentVolumeClaim{{
			ObjectMeta: metav1.ObjectMeta{Name: "www"},
			Spec:       v1.PersistentVolumeClaimSpec{AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}},
		}}
		e.create(t, set)
		ctltest.Eventually(t, waitTimeout, "web-0 with its volume", func() (bool, string) {
			pods := e.pods(t, ns)
			if len(pods) != 1 {
				return false, ctltest.PodNames(pods)
			}
			vols := pods[0].Spec.Volumes
			return len(vols) == 1 && vols[0].Name == "www" && vols[0].EmptyDir != nil, ""
		})
	})
}

func keys(m map[int64]runtime.Object) []int64 {
	var out []int64
	for k := range m {
		out = append(out, k)
	}
	return out
}

func ptr32(n int32) *int32 { return &n }

func ptr64(n int64) *int64 { return &n }
