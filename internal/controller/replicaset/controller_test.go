package replicaset

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ktesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

// ownerCase runs a test for both kinds.
type ownerCase struct {
	kind  string
	newFn constructor
	obj   func(name string, replicas int32) runtime.Object
	// status reads replicas from the fake API.
	status func(h *harness, name string) (replicas int32, conditions []string)
}

var ownerCases = []ownerCase{
	{
		kind: "ReplicaSet", newFn: forRS,
		obj: func(n string, r int32) runtime.Object { return newRS(n, r) },
		status: func(h *harness, n string) (int32, []string) {
			rs, err := h.client.AppsV1().ReplicaSets("default").Get(context.Background(), n, metav1.GetOptions{})
			if err != nil {
				h.t.Fatal(err)
			}
			var cs []string
			for _, c := range rs.Status.Conditions {
				cs = append(cs, string(c.Type)+"/"+c.Reason)
			}
			return rs.Status.Replicas, cs
		},
	},
	{
		kind: "ReplicationController", newFn: forRC,
		obj: func(n string, r int32) runtime.Object { return newRC(n, r) },
		status: func(h *harness, n string) (int32, []string) {
			rc, err := h.client.CoreV1().ReplicationControllers("default").Get(context.Background(), n, metav1.GetOptions{})
			if err != nil {
				h.t.Fatal(err)
			}
			var cs []string
			for _, c := range rc.Status.Conditions {
				cs = append(cs, string(c.Type)+"/"+c.Reason)
			}
			return rc.Status.Replicas, cs
		},
	},
}

func TestCreatesPodsFromTemplateOnce(t *testing.T) {
	for _, oc := range ownerCases {
		t.Run(oc.kind, func(t *testing.T) {
			owner := oc.obj("web", 3)
			h := newHarness(t, oc.newFn, owner)
			if err := h.sync("default/web"); err != nil {
				t.Fatal(err)
			}
			pods := h.apiPods()
			if len(pods) != 3 {
				t.Fatalf("created %d pods, want 3", len(pods))
			}
			for name, p := range pods {
				if !strings.HasPrefix(name, "web-") || p.GenerateName != "web-" {
					t.Errorf("pod %q: generateName %q, want web-", name, p.GenerateName)
				}
				if p.Labels["app"] != "web" || p.Labels["tier"] != "web" || len(p.Spec.Containers) != 1 {
					t.Errorf("pod %q not from template: %v %v", name, p.Labels, p.Spec.Containers)
				}
				ref := metav1.GetControllerOf(p)
				if ref == nil || ref.Kind != oc.kind || ref.Name != "web" || ref.UID != "uid-web" || !ptr.Deref(ref.BlockOwnerDeletion, false) {
					t.Errorf("pod %q owner reference %+v", name, p.OwnerReferences)
				}
			}
			if ev := h.events(); len(ev) != 3 || !strings.HasPrefix(ev[0], "Normal SuccessfulCreate Created pod: web-") {
				t.Errorf("events %q", ev)
			}

			// The informer has not delivered the pods yet: a sync now must
			// not create three more.
			if err := h.sync("default/web"); err != nil {
				t.Fatal(err)
			}
			if got := h.verbs("create", "pods"); got != 3 {
				t.Fatalf("stale cache caused over-creation: %d creates", got)
			}

			// Once the informer delivers them, status reports them.
			for _, p := range pods {
				h.cache(p)
				h.c.addPod(p)
			}
			if err := h.sync("default/web"); err != nil {
				t.Fatal(err)
			}
			if r, _ := oc.status(h, "web"); r != 3 {
				t.Errorf("status.replicas = %d, want 3", r)
			}
			if got := h.verbs("create", "pods"); got != 3 {
				t.Errorf("%d creates after convergence, want 3", got)
			}
		})
	}
}

func TestCreateFailureSlowStartAndCondition(t *testing.T) {
	for _, oc := range ownerCases {
		t.Run(oc.kind, func(t *testing.T) {
			h := newHarness(t, oc.newFn, oc.obj("web", 10))
			h.client.PrependReactor("create", "pods", func(a ktesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "web-abcde", errString("exceeded quota: compute"))
			})
			err := h.sync("default/web")
			if !apierrors.IsForbidden(err) {
				t.Fatalf("sync error %v, want the Forbidden create error", err)
			}
			// Slow start: one failed attempt, not ten.
			if got := h.verbs("create", "pods"); got != 1 {
				t.Errorf("%d create attempts, want 1", got)
			}
			if _, conds := oc.status(h, "web"); len(conds) != 1 || conds[0] != "ReplicaFailure/FailedCreate" {
				t.Errorf("conditions %v, want ReplicaFailure/FailedCreate", conds)
			}
			if ev := h.events(); len(ev) != 1 || !strings.HasPrefix(ev[0], "Warning FailedCreate Error creating: ") || !strings.Contains(ev[0], "exceeded quota") {
				t.Errorf("events %q", ev)
			}
			// Skipped creates are not expected, so the next sync retries.
			_ = h.sync("default/web")
			if got := h.verbs("create", "pods"); got != 2 {
				t.Errorf("%d create attempts after retry, want 2", got)
			}

			// The quota is lifted: creates succeed and the condition goes.
			h.client.ReactionChain = h.client.ReactionChain[1:]
			h.refreshOwner(oc.kind)
			if err := h.sync("default/web"); err != nil {
				t.Fatal(err)
			}
			if n := len(h.apiPods()); n != 10 {
				t.Errorf("%d pods, want 10", n)
			}
			if _, conds := oc.status(h, "web"); len(conds) != 0 {
				t.Errorf("conditions %v after success, want none", conds)
			}
		})
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// refreshOwner copies the owner from the fake API into the cache, as the
// informer would after a status write.
func (h *harness) refreshOwner(kind string) {
	h.t.Helper()
	ctx := context.Background()
	if kind == "ReplicaSet" {
		rs, err := h.client.AppsV1().ReplicaSets("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			h.t.Fatal(err)
		}
		h.cache(rs)
		return
	}
	rc, err := h.client.CoreV1().ReplicationControllers("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	h.cache(rc)
}

func TestAdoptAndRelease(t *testing.T) {
	rs := newRS("web", 3)
	other := newRS("other", 1)
	orphan := newPod("orphan", "web", nil)
	strayed := newPod("strayed", "db", rs) // ours, but its labels changed
	kept := newPod("kept", "web", rs)
	foreign := newPod("foreign", "web", other) // matches, but another owner controls it
	failedOrphan := newPod("failed-orphan", "web", nil, phase(v1.PodFailed))
	h := newHarness(t, forRS, rs, other, orphan, strayed, kept, foreign, failedOrphan)
	if err := h.sync("default/web"); err != nil {
		t.Fatal(err)
	}
	pods := h.apiPods()
	controller := func(name string) string {
		if ref := metav1.GetControllerOf(pods[name]); ref != nil {
			return ref.Name
		}
		return ""
	}
	want := map[string]string{"orphan": "web", "strayed": "", "kept": "web", "foreign": "other", "failed-orphan": ""}
	for name, w := range want {
		if got := controller(name); got != w {
			t.Errorf("pod %s controlled by %q, want %q", name, got, w)
		}
	}
	if ref := metav1.GetControllerOf(pods["orphan"]); ref == nil || ref.UID != rs.UID || !ptr.Deref(ref.BlockOwnerDeletion, false) {
		t.Errorf("adopted pod owner reference %+v", pods["orphan"].OwnerReferences)
	}
	// orphan + kept are ours: one more pod is created, none deleted.
	if c, d := h.verbs("create", "pods"), h.verbs("delete", "pods"); c != 1 || d != 0 {
		t.Errorf("%d creates and %d deletes, want 1 and 0", c, d)
	}
}

func TestScaleDownDeletesLeastValuable(t *testing.T) {
	rs := newRS("web", 1)
	h := newHarness(t, forRS, rs,
		newPod("ready-old", "web", rs, readyFor(time.Hour)),
		newPod("ready-new", "web", rs, readyFor(time.Minute)),
		newPod("unready", "web", rs),
		newPod("unscheduled", "web", rs, unscheduled, phase(v1.PodPending)),
	)
	if err := h.sync("default/web"); err != nil {
		t.Fatal(err)
	}
	pods := h.apiPods()
	if len(pods) != 1 || pods["ready-old"] == nil {
		t.Fatalf("left %v, want [ready-old]", keys(pods))
	}
	if ev := h.events(); len(ev) != 3 || !strings.HasPrefix(ev[0], "Normal SuccessfulDelete Deleted pod: ") {
		t.Errorf("events %q", ev)
	}
	// The cache still shows all four: no further deletes until it catches up.
	if err := h.sync("default/web"); err != nil {
		t.Fatal(err)
	}
	if got := h.verbs("delete", "pods"); got != 3 {
		t.Errorf("%d deletes, want 3", got)
	}
}

func TestInactivePodsDoNotCount(t *testing.T) {
	rs := newRS("web", 2)
	h := newHarness(t, forRS, rs,
		newPod("running", "web", rs),
		newPod("failed", "web", rs, phase(v1.PodFailed)),
		newPod("succeeded", "web", rs, phase(v1.PodSucceeded)),
		newPod("terminating", "web", rs, deleting),
	)
	if err := h.sync("default/web"); err != nil {
		t.Fatal(err)
	}
	if got := h.verbs("create", "pods"); got != 1 {
		t.Errorf("%d creates, want 1 (failed, succeeded and terminating pods do not count)", got)
	}
	if got := h.verbs("delete", "pods"); got != 0 {
		t.Errorf("%d deletes, want 0 (terminal pods are left to pod GC)", got)
	}
	got, err := h.client.AppsV1().ReplicaSets("default").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Replicas != 1 || ptr.Deref(got.Status.TerminatingReplicas, -1) != 1 {
		t.Errorf("status replicas=%d terminating=%v, want 1 and 1", got.Status.Replicas, got.Status.TerminatingReplicas)
	}
}

func TestDeletingOwnerLeavesPodsAlone(t *testing.T) {
	rs := newRS("web", 3, func(rs *appsv1.ReplicaSet) { rs.DeletionTimestamp = ptr.To(metav1.NewTime(t0)) })
	h := newHarness(t, forRS, rs, newPod("orphan", "web", nil), newPod("strayed", "db", rs))
	if err := h.sync("default/web"); err != nil {
		t.Fatal(err)
	}
	for _, a := range h.client.Actions() {
		if a.GetResource().Resource == "pods" && a.GetVerb() != "list" && a.GetVerb() != "watch" {
			t.Errorf("touched pods while being deleted: %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
}

func TestStatusWrittenOnlyOnChange(t *testing.T) {
	rs := newRS("web", 1)
	rs.Status = appsv1.ReplicaSetStatus{Replicas: 1, FullyLabeledReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, TerminatingReplicas: ptr.To[int32](0), ObservedGeneration: 1}
	h := newHarness(t, forRS, rs, newPod("a", "web", rs, readyFor(time.Hour)))
	if err := h.sync("default/web"); err != nil {
		t.Fatal(err)
	}
	for _, a := range h.client.Actions() {
		if a.GetVerb() == "update" {
			t.Errorf("unexpected write %s %s/%s", a.GetVerb(), a.GetResource().Resource, a.GetSubresource())
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestPodEventsSettleExpectations(t *testing.T) {
	rs := newRS("web", 1)
	a, b := newPod("a", "web", rs), newPod("b", "web", rs, readyFor(time.Hour))
	h := newHarness(t, forRS, rs, a, b)
	if err := h.sync("default/web"); err != nil {
		t.Fatal(err)
	}
	if h.c.exp.Satisfied("default/web") {
		t.Fatal("expectations satisfied before the deletion was observed")
	}
	// A pod of another kind's owner with the same name must not count.
	rcPod := newPod("a", "web", newRC("web", 1))
	h.c.deletePod(rcPod)
	if h.c.exp.Satisfied("default/web") {
		t.Fatal("a ReplicationController's pod settled the ReplicaSet's expectations")
	}
	// Graceful deletion starting is enough: the pod no longer counts.
	terminating := a.DeepCopy()
	terminating.ResourceVersion = "2"
	deleting(terminating)
	h.c.updatePod(a, terminating)
	if !h.c.exp.Satisfied("default/web") {
		t.Error("expectations not settled by the pod's deletion timestamp")
	}
	if got := h.c.loop.Queue.Len(); got != 1 {
		t.Errorf("queue length %d, want the owner queued once", got)
	}
}
