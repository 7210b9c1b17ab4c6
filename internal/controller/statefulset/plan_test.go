package statefulset

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

var now = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func template(image string) *v1.PodTemplateSpec {
	return &v1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: image}}},
	}
}

type setOpt func(*appsv1.StatefulSet)

func parallel(s *appsv1.StatefulSet) { s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement }
func onDelete(s *appsv1.StatefulSet) {
	s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
}
func partition(n int32) setOpt {
	return func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.RollingUpdate.Partition = ptr.To(n) }
}
func maxUnavailable(v intstr.IntOrString) setOpt {
	return func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = &v }
}
func minReady(sec int32) setOpt { return func(s *appsv1.StatefulSet) { s.Spec.MinReadySeconds = sec } }
func startAt(n int32) setOpt {
	return func(s *appsv1.StatefulSet) { s.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: n} }
}

func newSet(replicas int32, opts ...setOpt) *appsv1.StatefulSet {
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "uid-web", Generation: 2},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptr.To(replicas),
			Selector:            &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			ServiceName:         "nginx",
			Template:            *template("v2"),
			PodManagementPolicy: appsv1.OrderedReadyPodManagement,
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
				Type:          appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To(int32(0))},
			},
		},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// state of a test pod.
type state int

const (
	pending state = iota
	ready
	terminating
	failed
	justReady // ready for 1s only
)

func mkPod(set *appsv1.StatefulSet, ordinal int, rev string, st state) *v1.Pod {
	p := newPod(set, template(rev), rev, ordinal)
	p.UID = types.UID("uid-" + p.Name)
	switch st {
	case pending:
		p.Status.Phase = v1.PodPending
	case ready, terminating, justReady:
		since := now.Add(-time.Hour)
		if st == justReady {
			since = now.Add(-time.Second)
		}
		p.Status.Phase = v1.PodRunning
		p.Status.Conditions = []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue, LastTransitionTime: metav1.NewTime(since)}}
		if st == terminating {
			p.DeletionTimestamp = ptr.To(metav1.NewTime(now))
		}
	case failed:
		p.Status.Phase = v1.PodFailed
	}
	return p
}

// actions renders a plan as "create web-0(v2) delete web-2".
func actions(p Plan) string {
	var s []string
	for _, a := range p.Actions {
		e := string(a.Kind) + " " + a.Pod.Name
		if a.Kind == Create {
			e += "(" + revisionOf(a.Pod) + ")"
		}
		s = append(s, e)
	}
	return strings.Join(s, " ")
}

func TestDecide(t *testing.T) {
	type p = *v1.Pod
	tests := []struct {
		name string
		set  *appsv1.StatefulSet
		pods func(*appsv1.StatefulSet) []p
		want string
	}{
		{"ordered: empty set creates only ordinal 0", newSet(3),
			func(s *appsv1.StatefulSet) []p { return nil }, "create web-0(v2)"},
		{"ordered: waits while web-0 is pending", newSet(3),
			func(s *appsv1.StatefulSet) []p { return []p{mkPod(s, 0, "v2", pending)} }, ""},
		{"ordered: web-0 ready, creates web-1", newSet(3),
			func(s *appsv1.StatefulSet) []p { return []p{mkPod(s, 0, "v2", ready)} }, "create web-1(v2)"},
		{"ordered: a gap is filled before anything above it", newSet(3),
			func(s *appsv1.StatefulSet) []p { return []p{mkPod(s, 0, "v2", ready), mkPod(s, 2, "v2", ready)} }, "create web-1(v2)"},
		{"ordered: minReadySeconds holds the next ordinal", newSet(3, minReady(10)),
			func(s *appsv1.StatefulSet) []p { return []p{mkPod(s, 0, "v2", justReady)} }, ""},
		{"ordinals.start shifts names", newSet(2, startAt(5)),
			func(s *appsv1.StatefulSet) []p { return []p{mkPod(s, 5, "v2", ready)} }, "create web-6(v2)"},
		{"parallel: empty set creates all", newSet(3, parallel),
			func(s *appsv1.StatefulSet) []p { return nil }, "create web-0(v2) create web-1(v2) create web-2(v2)"},
		{"parallel: does not wait for pending pods", newSet(3, parallel),
			func(s *appsv1.StatefulSet) []p { return []p{mkPod(s, 0, "v2", pending)} }, "create web-1(v2) create web-2(v2)"},
		{"failed pod is deleted for recreation", newSet(2),
			func(s *appsv1.StatefulSet) []p { return []p{mkPod(s, 0, "v2", failed), mkPod(s, 1, "v2", ready)} }, "delete web-0"},
		{"ordered scale down removes the highest ordinal only", newSet(1),
			func(s *appsv1.StatefulSet) []p {
				return []p{mkPod(s, 0, "v2", ready), mkPod(s, 1, "v2", ready), mkPod(s, 2, "v2", ready)}
			}, "delete web-2"},
		{"ordered scale down waits for termination", newSet(1),
			func(s *appsv1.StatefulSet) []p {
				return []p{mkPod(s, 0, "v2", ready), mkPod(s, 1, "v2", ready), mkPod(s, 2, "v2", terminating)}
			}, ""},
		{"ordered scale down blocked by an unhealthy replica", newSet(2),
			func(s *appsv1.StatefulSet) []p {
				return []p{mkPod(s, 0, "v2", ready), mkPod(s, 1, "v2", pending), mkPod(s, 2, "v2", ready)}
			}, ""},
		{"ordered scale down may remove the first unhealthy pod", newSet(1),
			func(s *appsv1.StatefulSet) []p { return []p{mkPod(s, 0, "v2", ready), mkPod(s, 1, "v2", pending)} }, "delete web-1"},
		{"parallel scale down removes all at once", newSet(1, parallel),
			func(s *appsv1.StatefulSet) []p {
				return []p{mkPod(s, 0, "v2", ready), mkPod(s, 1, "v2", pending), mkPod(s, 2, "v2", ready)}
			}, "delete web-2 delete web-1"},
		{"rolling update starts at the highest ordinal", newSet(3),
			func(s *appsv1.StatefulSet) []p {
				return []p{mkPod(s, 0, "v1", ready), mkPod(s, 1, "v1", ready), mkPod(s, 2, "v1", ready)}
			}, "delete web-2"},
		{"rolling update waits for the replacement", newSet(3),
			func(s *appsv1.StatefulSet) []p {
				return []p{mkPod(s, 0, "v1", ready), mkPod(s, 1, "v1", ready), mkPod(s, 2, "v2", pending)}
			}, ""},
		{"rolling update recreates a deleted ordinal at the update revision", newSet(3),
			func(s *appsv1.StatefulSet) []p { return []p{mkPod(s, 0, "v1", ready), mkPod(s, 1, "v1", ready)} }, "create web-2(v2)"},
		{"rolling update moves down once the replacement is ready", newSet(3),
			func(s *appsv1.StatefulSet) []p {
				return []p{mkPod(s, 0, "v1", ready), mkPod(s, 1, "v1", ready), mkPod(s, 2, "v2", ready)}
			}, "delete web-1"},
		{"partition 2 updates only web-2", newSet(3, partition(2)),
			func(s *appsv1.StatefulSet) []p {
				return []p{mkPod(s, 0, "v1", ready), mkPod(s, 1, "v1", ready), mkPod(s, 2, "v1", ready)}
			}, "delete web-2"},
		{"partition 2 stops after web-2", newSet(3, partition(2)),
			func(s *appsv1.StatefulSet) []p {
				return []p{mkPod(s, 0, "v1", ready), mkPod(s, 1, "v1", ready), mkPod(s, 2, "v2", ready)}
			}, ""},
		{"below the partition a lost pod returns at the current revision", newSet(3, partition(2)),
			func(s *appsv1.StatefulSet) []p { return []p{mkPod(s, 0, "v1", ready), mkPod(s, 2, "v2", ready)} }, "create web-1(v1)"},
		{"maxUnavailable 2 replaces two at once", newSet(3, maxUnavailable(intstr.FromInt32(2))),
			func(s *appsv1.StatefulSet) []p {
				return []p{mkPod(s, 0, "v1", ready), mkPod(s, 1, "v1", ready), mkPod(s, 2, "v1", ready)}
			}, "delete web-2 delete web-1"},
		{"maxUnavailable counts pods already down", newSet(3, parallel, maxUnavailable(intstr.FromInt32(2))),
			func(s *appsv1.StatefulSet) []p {
				return []p{mkPod(s, 0, "v1", ready), mkPod(s, 1, "v1", ready), mkPod(s, 2, "v1", terminating)}
			}, "delete web-1"},
		{"OnDelete never deletes for an update", newSet(3, onDelete),
			func(s *appsv1.StatefulSet) []p {
				return []p{mkPod(s, 0, "v1", ready), mkPod(s, 1, "v1", ready), mkPod(s, 2, "v1", ready)}
			}, ""},
		{"OnDelete recreates at the update revision", newSet(3, onDelete),
			func(s *appsv1.StatefulSet) []p { return []p{mkPod(s, 0, "v1", ready), mkPod(s, 1, "v1", ready)} }, "create web-2(v2)"},
		{"lost identity labels are restored", newSet(1),
			func(s *appsv1.StatefulSet) []p {
				pod := mkPod(s, 0, "v2", ready)
				delete(pod.Labels, appsv1.StatefulSetPodNameLabel)
				return []p{pod}
			}, "update web-0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := Decide(Input{
				Set:     tt.set,
				Pods:    tt.pods(tt.set),
				Current: Revision{Name: "v1", Template: template("v1")},
				Update:  Revision{Name: "v2", Template: template("v2")},
				Now:     now,
			})
			if got := actions(plan); got != tt.want {
				t.Errorf("actions = %q, want %q (waiting: %s)", got, tt.want, plan.Waiting)
			}
		})
	}
}

// TestRollingUpdateOrder drives Decide like the controller would, applying
// each plan and making new pods ready, and checks the order pods are replaced.
func TestRollingUpdateOrder(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  *appsv1.StatefulSet
		want string
	}{
		{"no partition", newSet(3), "web-2 web-1 web-0"},
		{"partition 1", newSet(3, partition(1)), "web-2 web-1"},
		{"partition beyond replicas", newSet(3, partition(5)), ""},
		{"parallel", newSet(3, parallel), "web-2 web-1 web-0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			set := tt.set
			pods := map[string]*v1.Pod{}
			for i := 0; i < 3; i++ {
				pods[podName(set, i)] = mkPod(set, i, "v1", ready)
			}
			var replaced []string
			for step := 0; step < 20; step++ {
				var list []*v1.Pod
				for _, p := range pods {
					list = append(list, p)
				}
				plan := Decide(Input{Set: set, Pods: list, Current: Revision{"v1", template("v1")}, Update: Revision{"v2", template("v2")}, Now: now})
				if len(plan.Actions) == 0 {
					break
				}
				for _, a := range plan.Actions {
					switch a.Kind {
					case Delete:
						replaced = append(replaced, a.Pod.Name)
						delete(pods, a.Pod.Name)
					case Create:
						// The pod comes up ready before the next sync.
						o := ordinalOf(a.Pod)
						pods[a.Pod.Name] = mkPod(set, o, revisionOf(a.Pod), ready)
					}
				}
			}
			if got := strings.Join(replaced, " "); got != tt.want {
				t.Errorf("replaced %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	set := newSet(3, minReady(10))
	set.Status.Conditions = []appsv1.StatefulSetCondition{{Type: "Custom", Status: v1.ConditionTrue}}
	pods := []*v1.Pod{mkPod(set, 0, "v1", ready), mkPod(set, 1, "v2", justReady), mkPod(set, 2, "v2", terminating)}
	plan := Decide(Input{Set: set, Pods: pods, Current: Revision{"v1", template("v1")}, Update: Revision{"v2", template("v2")}, CollisionCount: 1, Now: now})
	s := plan.Status
	if s.ObservedGeneration != 2 || s.Replicas != 3 || s.ReadyReplicas != 3 || s.AvailableReplicas != 2 ||
		s.CurrentReplicas != 1 || s.UpdatedReplicas != 1 || s.CurrentRevision != "v1" || s.UpdateRevision != "v2" ||
		*s.CollisionCount != 1 || len(s.Conditions) != 1 {
		t.Errorf("status = %+v", s)
	}
	if plan.RequeueAfter != 9*time.Second {
		t.Errorf("requeue after %v, want 9s (when web-1 becomes available)", plan.RequeueAfter)
	}

	// Every pod updated and ready: the update revision becomes current.
	pods = []*v1.Pod{mkPod(set, 0, "v2", ready), mkPod(set, 1, "v2", ready), mkPod(set, 2, "v2", ready)}
	s = Decide(Input{Set: set, Pods: pods, Current: Revision{"v1", template("v1")}, Update: Revision{"v2", template("v2")}, Now: now}).Status
	if s.CurrentRevision != "v2" || s.CurrentReplicas != 3 || s.UpdatedReplicas != 3 {
		t.Errorf("completed update: status = %+v", s)
	}
}
