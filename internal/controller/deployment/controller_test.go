package deployment

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/polymorphichelpers"
	"k8s.io/utils/ptr"

	"github.com/portal-net/portal/internal/controller/internal/ctltest"
)

// rollThrough plays the ReplicaSet controller during a rolling update: each
// round old ReplicaSets lose pods down to their new size at once, while the
// new ReplicaSet gains at most one available pod. It checks that available
// pods never drop below minAvailable and pods never exceed maxPods, and
// returns when the new ReplicaSet alone is fully available.
func (e *env) rollThrough(name, newRSName string, want, minAvailable, maxPods int32) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		rss := e.replicaSets(name)
		var avail, pods int32
		conflict := false
		for _, rs := range rss {
			target := replicas(rs)
			a := min(rs.Status.AvailableReplicas, target)
			if rs.Name == newRSName && a < target {
				a++
			}
			if rs.Status.Replicas != target || rs.Status.AvailableReplicas != a {
				if err := e.trySetRSStatus(rs, target, a); apierrors.IsConflict(err) {
					// The controller resized it meanwhile; look again.
					conflict = true
					break
				} else if err != nil {
					e.t.Fatal(err)
				}
			}
			avail += a
			pods += target
		}
		if conflict {
			continue
		}
		if avail < minAvailable {
			e.t.Fatalf("available pods %d below %d: %s", avail, minAvailable, rsSummary(rss))
		}
		if pods > maxPods {
			e.t.Fatalf("%d pods above the surge limit %d: %s", pods, maxPods, rsSummary(rss))
		}
		done := true
		for _, rs := range rss {
			if (rs.Name == newRSName && (replicas(rs) != want || rs.Status.AvailableReplicas != want)) || (rs.Name != newRSName && replicas(rs) != 0) {
				done = false
			}
		}
		if done {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("rollout to %s did not finish: %s", newRSName, rsSummary(e.replicaSets(name)))
}

func TestRollingUpdateUndoAndHistory(t *testing.T) {
	e := startEnv(t)
	d := newDeployment("web", 3, "nginx:1.25")
	d.Spec.Strategy = appsv1.DeploymentStrategy{
		Type:          appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: ptr.To(intstr.FromInt32(1)), MaxUnavailable: ptr.To(intstr.FromInt32(0))},
	}
	d = e.create(d)
	rs1Name := "web-" + TemplateHash(&d.Spec.Template, nil)

	// Revision 1: one ReplicaSet "<name>-<decimal hash>" of 3.
	ctltest.Eventually(t, waitTimeout, "first ReplicaSet", func() (bool, string) {
		rss := e.replicaSets("web")
		return len(rss) == 1 && rss[0].Name == rs1Name && replicas(rss[0]) == 3, rsSummary(rss)
	})
	rs1 := e.rsByName(rs1Name)
	hash := strings.TrimPrefix(rs1Name, "web-")
	ref := metav1.GetControllerOf(rs1)
	if ref.UID != d.UID || !ptr.Deref(ref.BlockOwnerDeletion, false) {
		t.Errorf("owner reference %+v", ref)
	}
	if rs1.Annotations[RevisionAnnotation] != "1" || rs1.Annotations[DesiredReplicasAnnotation] != "3" || rs1.Annotations[MaxReplicasAnnotation] != "4" {
		t.Errorf("annotations %v", rs1.Annotations)
	}
	if rs1.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash || rs1.Spec.Selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] != hash ||
		rs1.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash || rs1.Spec.Template.Labels["app"] != "web" {
		t.Errorf("pod-template-hash not in labels/selector/template: %v %v %v", rs1.Labels, rs1.Spec.Selector, rs1.Spec.Template.Labels)
	}
	ctltest.Eventually(t, waitTimeout, "scale-up event", func() (bool, string) {
		return e.events.has("ScalingReplicaSet Scaled up replica set " + rs1Name + " from 0 to 3"), e.events.String()
	})
	if msg, done := e.kubectlStatus("web"); done {
		t.Errorf("rollout reported done before pods are available: %s", msg)
	}
	e.settle("web")
	e.waitRolledOut("web")
	got := e.get("web")
	if got.Annotations[RevisionAnnotation] != "1" {
		t.Errorf("deployment revision %q", got.Annotations[RevisionAnnotation])
	}
	if c := getCondition(got.Status, appsv1.DeploymentAvailable); c == nil || c.Status != v1.ConditionTrue || c.Reason != ReasonMinimumReplicasAvailable {
		t.Errorf("Available condition %+v", c)
	}
	if c := getCondition(got.Status, appsv1.DeploymentProgressing); c == nil || c.Status != v1.ConditionTrue || c.Reason != ReasonNewReplicaSetAvailable {
		t.Errorf("Progressing condition %+v", c)
	}
	if got.Status.TerminatingReplicas == nil || *got.Status.TerminatingReplicas != 0 || got.Status.UnavailableReplicas != 0 {
		t.Errorf("status %+v", got.Status)
	}

	// Revision 2: a new image rolls with maxUnavailable 0.
	d = e.update("web", func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "nginx:1.26"
		d.Annotations = map[string]string{ChangeCauseAnnotation: "set image nginx:1.26"}
	})
	rs2Name := "web-" + TemplateHash(&d.Spec.Template, nil)
	if rs2Name == rs1Name {
		t.Fatal("new image did not change the hash")
	}
	ctltest.Eventually(t, waitTimeout, "second ReplicaSet", func() (bool, string) {
		rss := e.replicaSets("web")
		return len(rss) == 2 && rss[1].Name == rs2Name, rsSummary(rss)
	})
	e.rollThrough("web", rs2Name, 3, 3, 4)
	e.waitRolledOut("web")
	rs2 := e.rsByName(rs2Name)
	if rs2.Annotations[RevisionAnnotation] != "2" || rs2.Annotations[ChangeCauseAnnotation] != "set image nginx:1.26" {
		t.Errorf("rs2 annotations %v", rs2.Annotations)
	}
	if rev := e.get("web").Annotations[RevisionAnnotation]; rev != "2" {
		t.Errorf("deployment revision %q after rollout", rev)
	}
	for _, want := range []string{
		"Scaled up replica set " + rs2Name + " from 0 to 1",
		"Scaled down replica set " + rs1Name + " from 3 to 2",
	} {
		if !e.events.has(want) {
			t.Errorf("missing event %q in:\n%s", want, e.events)
		}
	}

	// kubectl rollout undo (client side in kubectl 1.37): the template
	// goes back and the old ReplicaSet becomes revision 3.
	rb, err := polymorphichelpers.RollbackerFor(deploymentGK, e.client)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rb.Rollback(e.get("web"), nil, 0, util.DryRunNone); err != nil {
		t.Fatalf("rollout undo: %v", err)
	}
	ctltest.Eventually(t, waitTimeout, "old ReplicaSet revived as revision 3", func() (bool, string) {
		rs := e.rsByName(rs1Name)
		return rs.Annotations[RevisionAnnotation] == "3" && rs.Annotations[RevisionHistoryAnnotation] == "1" && replicas(rs) > 0, rsSummary(e.replicaSets("web"))
	})
	e.rollThrough("web", rs1Name, 3, 3, 4)
	e.waitRolledOut("web")
	if rss := e.replicaSets("web"); len(rss) != 2 {
		t.Errorf("undo created a ReplicaSet: %s", rsSummary(rss))
	}
	if rev := e.get("web").Annotations[RevisionAnnotation]; rev != "3" {
		t.Errorf("deployment revision %q after undo", rev)
	}

	// kubectl rollout history sees revisions 2 and 3 with their causes.
	hv, err := polymorphichelpers.HistoryViewerFor(deploymentGK, e.client)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := hv.ViewHistory("default", "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(hist, "2         set image nginx:1.26") || !strings.Contains(hist, "3 ") {
		t.Errorf("rollout history:\n%s", hist)
	}
}

func TestRecreateScalesOldDownFirst(t *testing.T) {
	e := startEnv(t)
	d := newDeployment("db", 2, "postgres:16")
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	d = e.create(d)
	rs1Name := "db-" + TemplateHash(&d.Spec.Template, nil)
	ctltest.Eventually(t, waitTimeout, "first ReplicaSet", func() (bool, string) {
		rss := e.replicaSets("db")
		return len(rss) == 1 && replicas(rss[0]) == 2, rsSummary(rss)
	})
	e.settle("db")
	e.waitRolledOut("db")

	// Two running pods of the old ReplicaSet, as the RS controller would
	// have made them.
	rs1 := e.rsByName(rs1Name)
	for _, n := range []string{"db-a", "db-b"} {
		p := &v1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: "default", Labels: rs1.Spec.Template.Labels,
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(rs1, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}},
			Spec: rs1.Spec.Template.Spec,
		}
		p, err := e.client.CoreV1().Pods("default").Create(e.ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Status.Phase = v1.PodRunning
		if _, err := e.client.CoreV1().Pods("default").UpdateStatus(e.ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	d = e.update("db", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "postgres:17" })
	rs2Name := "db-" + TemplateHash(&d.Spec.Template, nil)
	ctltest.Eventually(t, waitTimeout, "old ReplicaSet scaled to 0", func() (bool, string) {
		return replicas(e.rsByName(rs1Name)) == 0, rsSummary(e.replicaSets("db"))
	})
	hasNew := func() bool {
		for _, rs := range e.replicaSets("db") {
			if rs.Name == rs2Name && replicas(rs) > 0 {
				return true
			}
		}
		return false
	}
	ctltest.Never(t, time.Second, "new ReplicaSet scaled up while old ReplicaSet still reports pods", hasNew)
	e.setRSStatus(e.rsByName(rs1Name), 0, 0)
	ctltest.Never(t, time.Second, "new ReplicaSet scaled up while old pods still run", hasNew)

	for _, n := range []string{"db-a", "db-b"} {
		if err := e.client.CoreV1().Pods("default").Delete(e.ctx, n, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			t.Fatal(err)
		}
	}
	ctltest.Eventually(t, waitTimeout, "new ReplicaSet at full size at once", func() (bool, string) {
		return e.events.has("Scaled up replica set " + rs2Name + " from 0 to 2"), e.events.String()
	})
	e.settle("db")
	e.waitRolledOut("db")
	if !e.events.has("Scaled down replica set " + rs1Name + " from 2 to 0") {
		t.Errorf("no scale-down event:\n%s", e.events)
	}
}

func TestPauseScaleResumeRestart(t *testing.T) {
	e := startEnv(t)
	d := e.create(newDeployment("api", 2, "api:1"))
	rs1Name := "api-" + TemplateHash(&d.Spec.Template, nil)
	ctltest.Eventually(t, waitTimeout, "first ReplicaSet", func() (bool, string) {
		rss := e.replicaSets("api")
		return len(rss) == 1 && replicas(rss[0]) == 2, rsSummary(rss)
	})
	e.settle("api")
	e.waitRolledOut("api")

	// kubectl rollout pause, then a template change and a scale.
	e.update("api", func(d *appsv1.Deployment) { d.Spec.Paused = true })
	ctltest.Eventually(t, waitTimeout, "paused condition", func() (bool, string) {
		c := getCondition(e.get("api").Status, appsv1.DeploymentProgressing)
		return c != nil && c.Reason == ReasonDeploymentPaused && c.Status == v1.ConditionUnknown, ""
	})
	e.update("api", func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "api:2"
		d.Spec.Replicas = ptr.To[int32](4)
	})
	ctltest.Eventually(t, waitTimeout, "scaling applied while paused", func() (bool, string) {
		return replicas(e.rsByName(rs1Name)) == 4, rsSummary(e.replicaSets("api"))
	})
	ctltest.Never(t, time.Second, "new ReplicaSet created while paused", func() bool { return len(e.replicaSets("api")) > 1 })
	ctltest.Eventually(t, waitTimeout, "generation observed while paused", func() (bool, string) {
		got := e.get("api")
		return got.Status.ObservedGeneration == got.Generation, ""
	})

	// kubectl rollout resume: the rollout proceeds.
	e.update("api", func(d *appsv1.Deployment) { d.Spec.Paused = false })
	ctltest.Eventually(t, waitTimeout, "new ReplicaSet after resume", func() (bool, string) {
		return len(e.replicaSets("api")) == 2, rsSummary(e.replicaSets("api"))
	})
	rs2Name := e.replicaSets("api")[1].Name
	e.rollThrough("api", rs2Name, 4, 3, 5) // 25%/25% of 4: surge 1, unavailable 1
	e.waitRolledOut("api")

	// kubectl rollout restart: a template annotation makes revision 3.
	e.update("api", func(d *appsv1.Deployment) {
		if d.Spec.Template.Annotations == nil {
			d.Spec.Template.Annotations = map[string]string{}
		}
		d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] = time.Now().Format(time.RFC3339)
	})
	ctltest.Eventually(t, waitTimeout, "restart ReplicaSet", func() (bool, string) {
		rss := e.replicaSets("api")
		return len(rss) == 3 && rss[2].Annotations[RevisionAnnotation] == "3", rsSummary(rss)
	})
	e.rollThrough("api", e.replicaSets("api")[2].Name, 4, 3, 5)
	e.waitRolledOut("api")
}

func TestHashCollisionAndHistoryLimit(t *testing.T) {
	e := startEnv(t)
	d := newDeployment("cache", 1, "redis:7")
	d.Spec.RevisionHistoryLimit = ptr.To[int32](1)
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	// Created paused, so that no ReplicaSet exists before a foreign one
	// takes the name of the first.
	d.Spec.Paused = true
	d = e.create(d)
	taken := "cache-" + TemplateHash(&d.Spec.Template, nil)
	foreign := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: taken, Namespace: "default", Labels: map[string]string{"app": "other"}},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "other"}},
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "other"}},
				Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "x", Image: "other"}}},
			},
		},
	}
	if _, err := e.client.AppsV1().ReplicaSets("default").Create(e.ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.update("cache", func(d *appsv1.Deployment) { d.Spec.Paused = false })
	want := "cache-" + TemplateHash(&d.Spec.Template, ptr.To[int32](1))
	ctltest.Eventually(t, waitTimeout, "ReplicaSet under the next name", func() (bool, string) {
		rss := e.replicaSets("cache")
		return len(rss) == 1 && rss[0].Name == want, rsSummary(rss)
	})
	if cc := e.get("cache").Status.CollisionCount; cc == nil || *cc != 1 {
		t.Errorf("collisionCount %v, want 1", cc)
	}
	if ref := metav1.GetControllerOf(e.rsByName(taken)); ref != nil {
		t.Errorf("foreign ReplicaSet was taken over: %+v", ref)
	}
	e.settle("cache")
	e.waitRolledOut("cache")

	// Two more revisions; with revisionHistoryLimit 1 only the newest old
	// ReplicaSet survives next to the current one.
	for _, image := range []string{"redis:7.2", "redis:7.4"} {
		e.update("cache", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = image })
		ctltest.Eventually(t, waitTimeout, "old ReplicaSets scaled to 0 for "+image, func() (bool, string) {
			// Recreate scales every old ReplicaSet down before it
			// creates the new one; judge by image, not by position, or
			// the lone old ReplicaSet counts as "the new one" and
			// settles at its old size before the controller resizes it.
			rss := e.replicaSets("cache")
			for _, rs := range rss {
				if rs.Spec.Template.Spec.Containers[0].Image != image && replicas(rs) != 0 {
					return false, rsSummary(rss)
				}
			}
			return true, ""
		})
		e.settle("cache")
		ctltest.Eventually(t, waitTimeout, "new ReplicaSet for "+image, func() (bool, string) {
			rss := e.replicaSets("cache")
			last := rss[len(rss)-1]
			return last.Spec.Template.Spec.Containers[0].Image == image && replicas(last) == 1, rsSummary(rss)
		})
		e.settle("cache")
		e.waitRolledOut("cache")
	}
	ctltest.Eventually(t, waitTimeout, "history pruned", func() (bool, string) {
		rss := e.replicaSets("cache")
		return len(rss) == 2 && rss[0].Annotations[RevisionAnnotation] == "2" && rss[1].Annotations[RevisionAnnotation] == "3", rsSummary(rss)
	})
}
