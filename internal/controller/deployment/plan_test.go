package deployment

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func ios(s string) *intstr.IntOrString {
	if n, err := strconv.Atoi(s); err == nil {
		return ptr.To(intstr.FromInt32(int32(n)))
	}
	return ptr.To(intstr.FromString(s))
}

func deploy(replicas int32, surge, unavailable string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: ios(surge), MaxUnavailable: ios(unavailable)},
			},
		},
	}
}

// rs builds a ReplicaSet created at minute age (older = smaller).
func rs(name string, age int, size, available int32, annotations ...string) *appsv1.ReplicaSet {
	r := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "default", UID: types.UID(name),
			CreationTimestamp: metav1.NewTime(time.Unix(0, 0).Add(time.Duration(age) * time.Minute)),
			Annotations:       map[string]string{},
		},
		Spec:   appsv1.ReplicaSetSpec{Replicas: ptr.To(size)},
		Status: appsv1.ReplicaSetStatus{Replicas: size, ReadyReplicas: available, AvailableReplicas: available},
	}
	for i := 0; i+1 < len(annotations); i += 2 {
		r.Annotations[annotations[i]] = annotations[i+1]
	}
	return r
}

func planString(p []resize) string {
	s := ""
	for _, r := range p {
		s += fmt.Sprintf("%s:%d->%d ", r.RS.Name, replicas(r.RS), r.To)
	}
	return s
}

func TestFenceposts(t *testing.T) {
	tests := []struct {
		surge, unavailable string
		desired            int32
		wantS, wantU       int32
	}{
		{"25%", "25%", 10, 3, 2}, // surge rounds up, unavailable down
		{"25%", "25%", 3, 1, 0},  // 0.75 -> 1 and 0
		{"0%", "0%", 3, 0, 1},    // both zero: one may be unavailable
		{"1%", "1%", 10, 1, 0},   // tiny percentages
		{"0", "10%", 5, 0, 1},    // 0.5 rounds down to 0, then to 1
		{"1", "0", 3, 1, 0},      // ints taken as they are
		{"50%", "100%", 3, 2, 3}, // all may go
		{"2", "5", 3, 2, 5},      // maxUnavailable is capped later
	}
	for _, tt := range tests {
		s, u, err := fenceposts(ios(tt.surge), ios(tt.unavailable), tt.desired)
		if err != nil || s != tt.wantS || u != tt.wantU {
			t.Errorf("fenceposts(%s, %s, %d) = %d, %d, %v; want %d, %d", tt.surge, tt.unavailable, tt.desired, s, u, err, tt.wantS, tt.wantU)
		}
	}
	if got := maxUnavailable(deploy(3, "2", "5")); got != 3 {
		t.Errorf("maxUnavailable above replicas = %d, want 3", got)
	}
}

func TestRollingStep(t *testing.T) {
	tests := []struct {
		name       string
		d          *appsv1.Deployment
		old        []*appsv1.ReplicaSet
		newRS      *appsv1.ReplicaSet
		wantNew    int32
		wantOldCut string
	}{
		{
			name: "surge 1: new RS starts with one pod, old untouched",
			d:    deploy(3, "1", "0"), old: []*appsv1.ReplicaSet{rs("a", 0, 3, 3)}, newRS: rs("b", 1, 0, 0),
			wantNew: 1, wantOldCut: "",
		},
		{
			name: "maxUnavailable 0: old waits while the new pod is not available",
			d:    deploy(3, "1", "0"), old: []*appsv1.ReplicaSet{rs("a", 0, 3, 3)}, newRS: rs("b", 1, 1, 0),
			wantNew: 1, wantOldCut: "",
		},
		{
			name: "maxUnavailable 0: one old pod goes once one new is available",
			d:    deploy(3, "1", "0"), old: []*appsv1.ReplicaSet{rs("a", 0, 3, 3)}, newRS: rs("b", 1, 1, 1),
			wantNew: 1, wantOldCut: "a:3->2 ",
		},
		{
			name: "surge 0, unavailable 1: old shrinks first, new cannot grow yet",
			d:    deploy(3, "0", "1"), old: []*appsv1.ReplicaSet{rs("a", 0, 3, 3)}, newRS: rs("b", 1, 0, 0),
			wantNew: 0, wantOldCut: "a:3->2 ",
		},
		{
			name: "25%/25% of 10: new grows by 3, old shrinks by 2",
			d:    deploy(10, "25%", "25%"), old: []*appsv1.ReplicaSet{rs("a", 0, 10, 10)}, newRS: rs("b", 1, 3, 0),
			wantNew: 3, wantOldCut: "a:10->8 ",
		},
		{
			name: "unhealthy old replicas are removed first, oldest RS first",
			d:    deploy(3, "1", "0"),
			old:  []*appsv1.ReplicaSet{rs("older", 0, 2, 0), rs("old", 1, 2, 2)}, newRS: rs("new", 2, 1, 1),
			// room = 5 - 3 - 0 = 2: both unavailable pods of "older" go;
			// availability (3) is exactly the minimum, nothing more.
			wantNew: 1, wantOldCut: "older:2->0 ",
		},
		{
			name: "available budget is taken from the oldest RS first",
			d:    deploy(4, "0", "2"),
			old:  []*appsv1.ReplicaSet{rs("x", 1, 2, 2), rs("w", 0, 2, 2)}, newRS: rs("new", 2, 0, 0),
			wantNew: 0, wantOldCut: "w:2->0 ",
		},
		{
			name: "new RS above spec.replicas is cut down",
			d:    deploy(3, "1", "0"), old: nil, newRS: rs("b", 1, 5, 5),
			wantNew: 3, wantOldCut: "",
		},
		{
			name: "new RS may not outgrow spec.replicas even with surge room",
			d:    deploy(3, "3", "0"), old: []*appsv1.ReplicaSet{rs("a", 0, 1, 1)}, newRS: rs("b", 1, 2, 2),
			// Old cannot go yet: its pod is needed for 3 available.
			wantNew: 3, wantOldCut: "",
		},
	}
	c := &Controller{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all := withNew(tt.old, tt.newRS)
			if got := c.newRSTarget(tt.d, all, tt.newRS); got != tt.wantNew {
				t.Errorf("new RS target = %d, want %d", got, tt.wantNew)
			}
			if got := planString(planOldScaleDown(tt.d, tt.old, tt.newRS)); got != tt.wantOldCut {
				t.Errorf("old scale-down = %q, want %q", got, tt.wantOldCut)
			}
		})
	}
}

// TestRollingUpdateNeverDropsBelowAvailable runs whole rollouts with the
// pure planner and a simulated ReplicaSet controller whose new pods become
// available with a lag, and checks the guarantees users rely on.
func TestRollingUpdateNeverDropsBelowAvailable(t *testing.T) {
	for _, tc := range []struct {
		replicas           int32
		surge, unavailable string
	}{
		{3, "1", "0"}, {3, "25%", "0"}, {10, "25%", "0"}, {10, "25%", "25%"}, {5, "0", "1"}, {7, "100%", "0"}, {4, "0", "50%"},
	} {
		name := fmt.Sprintf("%d_%s_%s", tc.replicas, tc.surge, tc.unavailable)
		t.Run(name, func(t *testing.T) {
			d := deploy(tc.replicas, tc.surge, tc.unavailable)
			old := rs("old", 0, tc.replicas, tc.replicas)
			newRS := rs("new", 1, 0, 0)
			minAvail := tc.replicas - maxUnavailable(d)
			maxTotal := tc.replicas + maxSurge(d)
			c := &Controller{}
			for step := 0; step < 100; step++ {
				// Controller step.
				if to := c.newRSTarget(d, []*appsv1.ReplicaSet{old, newRS}, newRS); to != replicas(newRS) {
					newRS.Spec.Replicas = ptr.To(to)
				} else {
					for _, r := range planOldScaleDown(d, active([]*appsv1.ReplicaSet{old}), newRS) {
						r.RS.Spec.Replicas = ptr.To(r.To)
					}
				}
				if total := replicas(old) + replicas(newRS); total > maxTotal {
					t.Fatalf("step %d: %d pods, above replicas+maxSurge %d", step, total, maxTotal)
				}
				// ReplicaSet controller: deletions are immediate, one new
				// pod becomes available per step.
				old.Status.AvailableReplicas = min(old.Status.AvailableReplicas, replicas(old))
				newRS.Status.AvailableReplicas = min(newRS.Status.AvailableReplicas+1, replicas(newRS))
				if avail := old.Status.AvailableReplicas + newRS.Status.AvailableReplicas; avail < minAvail {
					t.Fatalf("step %d: %d available, below %d", step, avail, minAvail)
				}
				if replicas(old) == 0 && replicas(newRS) == tc.replicas && newRS.Status.AvailableReplicas == tc.replicas {
					return
				}
			}
			t.Fatalf("rollout did not finish: old %d, new %d (available %d)", replicas(old), replicas(newRS), newRS.Status.AvailableReplicas)
		})
	}
}

func TestPlanScale(t *testing.T) {
	annotated := func(r *appsv1.ReplicaSet, desiredN, maxN int) *appsv1.ReplicaSet {
		setReplicaAnnotations(r, int32(desiredN), int32(maxN))
		return r
	}
	tests := []struct {
		name  string
		d     *appsv1.Deployment
		newRS *appsv1.ReplicaSet
		old   []*appsv1.ReplicaSet
		want  string
	}{
		{
			name: "one active RS takes the new size",
			d:    deploy(5, "1", "0"), newRS: rs("new", 1, 3, 3), old: []*appsv1.ReplicaSet{rs("old", 0, 0, 0)},
			want: "new:3->5 ",
		},
		{
			name: "nothing active: the newest old RS is scaled when there is no new one",
			d:    deploy(2, "1", "0"), old: []*appsv1.ReplicaSet{rs("a", 0, 0, 0), rs("b", 1, 0, 0)},
			want: "b:0->2 ",
		},
		{
			name: "10 -> 20 mid-rollout: proportional to last max-replicas",
			d:    deploy(20, "3", "2"),
			old:  []*appsv1.ReplicaSet{annotated(rs("old", 0, 8, 8), 10, 13)}, newRS: annotated(rs("new", 1, 5, 0), 10, 13),
			// allowed 23, +10: old 8*23/13=14.2 -> 14 (+6), new gets the
			// remaining 4.
			want: "old:8->14 new:5->9 ",
		},
		{
			name: "20 -> 10 mid-rollout: older first among equals",
			d:    deploy(10, "3", "2"),
			old:  []*appsv1.ReplicaSet{annotated(rs("old", 0, 10, 10), 20, 23)}, newRS: annotated(rs("new", 1, 10, 0), 20, 23),
			// allowed 13, -7: each 10*13/23=5.65 -> 6 (-4), capped by what
			// is left (-3) for the second; leftover 0.
			want: "old:10->6 new:10->7 ",
		},
		{
			name: "scale to zero mid-rollout",
			d:    deploy(0, "1", "0"),
			old:  []*appsv1.ReplicaSet{annotated(rs("old", 0, 2, 2), 3, 4)}, newRS: annotated(rs("new", 1, 2, 1), 3, 4),
			want: "old:2->0 new:2->0 ",
		},
		{
			name: "saturated new RS: remaining old ones go to zero",
			d:    deploy(3, "1", "0"),
			old:  []*appsv1.ReplicaSet{rs("old", 0, 1, 1)}, newRS: annotated(rs("new", 1, 3, 3), 3, 4),
			want: "old:1->0 ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := planString(planScale(tt.d, tt.newRS, tt.old)); got != tt.want {
				t.Errorf("plan = %q, want %q", got, tt.want)
			}
		})
	}
}

func template(image string) *v1.PodTemplateSpec {
	return &v1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "front"}},
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "web", Image: image}}},
	}
}

func TestTemplateHash(t *testing.T) {
	a, b := template("nginx:1.25"), template("nginx:1.25")
	h := TemplateHash(a, nil)
	if _, err := strconv.ParseUint(h, 10, 32); err != nil {
		t.Fatalf("hash %q is not a decimal uint32", h)
	}
	if TemplateHash(b, nil) != h {
		t.Errorf("equal templates hash differently")
	}
	for i := 0; i < 5; i++ {
		if TemplateHash(a, nil) != h {
			t.Fatalf("hash not stable across calls")
		}
	}
	if TemplateHash(template("nginx:1.26"), nil) == h {
		t.Errorf("image change does not change the hash")
	}
	if TemplateHash(a, ptr.To[int32](1)) == h || TemplateHash(a, ptr.To[int32](1)) == TemplateHash(a, ptr.To[int32](2)) {
		t.Errorf("collisionCount does not change the hash")
	}
	if TemplateHash(a, ptr.To[int32](0)) == h {
		t.Errorf("collisionCount 0 must differ from unset, as upstream")
	}
	d := deploy(3, "1", "0")
	d.Spec.Template = *a
	d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	got := newRSObject(d, nil, 1)
	if got.Name != "web-"+h || got.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != h ||
		got.Spec.Selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] != h ||
		got.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != h {
		t.Errorf("new RS %s labels %v selector %v: hash %s not applied everywhere", got.Name, got.Labels, got.Spec.Selector, h)
	}
	if _, ok := d.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; ok {
		t.Errorf("deployment template was modified")
	}
	if !equalIgnoreHash(&got.Spec.Template, &d.Spec.Template) {
		t.Errorf("new RS template does not match the deployment's ignoring the hash")
	}
}

func TestNewRSAnnotations(t *testing.T) {
	d := deploy(3, "1", "0")
	d.Annotations = map[string]string{
		ChangeCauseAnnotation: "kubectl set image",
		lastAppliedAnnotation: "{}",
		RevisionAnnotation:    "7",
		"team":                "a",
	}
	created := &appsv1.ReplicaSet{}
	setNewRSAnnotations(d, created, 4, false)
	want := map[string]string{
		ChangeCauseAnnotation: "kubectl set image", "team": "a", RevisionAnnotation: "4",
		DesiredReplicasAnnotation: "3", MaxReplicasAnnotation: "4",
	}
	if fmt.Sprint(created.Annotations) != fmt.Sprint(want) {
		t.Errorf("created RS annotations %v, want %v", created.Annotations, want)
	}

	// Undo: an old RS becomes new again.
	back := rs("a", 0, 0, 0, RevisionAnnotation, "1")
	if !setNewRSAnnotations(d, back, 3, true) {
		t.Fatal("no change reported")
	}
	if back.Annotations[RevisionAnnotation] != "3" || back.Annotations[RevisionHistoryAnnotation] != "1" {
		t.Errorf("after first undo: %v", back.Annotations)
	}
	setNewRSAnnotations(d, back, 5, true)
	if back.Annotations[RevisionAnnotation] != "5" || back.Annotations[RevisionHistoryAnnotation] != "1,3" {
		t.Errorf("after second undo: %v", back.Annotations)
	}
	if setNewRSAnnotations(d, back, 5, true) {
		t.Errorf("repeat reported a change")
	}
	if got := appendHistory("1,2", "3"); got != "1,2,3" {
		t.Errorf("appendHistory = %q", got)
	}
}

func TestRolloutStatusConditions(t *testing.T) {
	now := time.Unix(10000, 0)
	d := deploy(3, "1", "0")
	d.Name, d.Generation = "web", 2
	d.Spec.ProgressDeadlineSeconds = ptr.To[int32](600)
	d.Status.ObservedGeneration = 1
	setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, v1.ConditionTrue, ReasonNewReplicaSetCreated, "", now.Add(-time.Hour)))
	old, newRS := rs("web-1", 0, 1, 1), rs("web-2", 1, 3, 2)

	s := rolloutStatus(d, []*appsv1.ReplicaSet{old, newRS}, newRS, now)
	if s.ObservedGeneration != 2 || s.Replicas != 4 || s.UpdatedReplicas != 3 || s.AvailableReplicas != 3 || s.UnavailableReplicas != 1 {
		t.Errorf("counters: %+v", s)
	}
	if c := getCondition(s, appsv1.DeploymentAvailable); c == nil || c.Status != v1.ConditionTrue || c.Reason != ReasonMinimumReplicasAvailable {
		t.Errorf("available: %+v", c)
	}
	if c := getCondition(s, appsv1.DeploymentProgressing); c == nil || c.Reason != ReasonReplicaSetUpdated || !c.LastUpdateTime.Time.Equal(now) || c.LastTransitionTime.Time.Equal(now) {
		t.Errorf("progressing (update time refreshed, transition kept): %+v", c)
	}

	// No progress for longer than the deadline: timed out.
	d.Status = s
	d.Status.Conditions[1].LastUpdateTime = metav1.NewTime(now.Add(-11 * time.Minute))
	s = rolloutStatus(d, []*appsv1.ReplicaSet{old, newRS}, newRS, now)
	if c := getCondition(s, appsv1.DeploymentProgressing); c == nil || c.Status != v1.ConditionFalse || c.Reason != ReasonProgressDeadlineExceeded {
		t.Errorf("after deadline: %+v", c)
	}

	// Done.
	old.Spec.Replicas, old.Status = ptr.To[int32](0), appsv1.ReplicaSetStatus{}
	newRS.Status.AvailableReplicas = 3
	s = rolloutStatus(d, []*appsv1.ReplicaSet{old, newRS}, newRS, now)
	if c := getCondition(s, appsv1.DeploymentProgressing); c == nil || c.Status != v1.ConditionTrue || c.Reason != ReasonNewReplicaSetAvailable {
		t.Errorf("complete: %+v", c)
	}
	if !complete(d, &s) {
		t.Errorf("complete() false for %+v", s)
	}

	// Availability lost below replicas-maxUnavailable.
	newRS.Status.AvailableReplicas = 2
	s = calculateStatus(d, []*appsv1.ReplicaSet{newRS}, newRS, now)
	if c := getCondition(s, appsv1.DeploymentAvailable); c == nil || c.Status != v1.ConditionFalse || c.Reason != ReasonMinimumReplicasUnavailable {
		t.Errorf("unavailable: %+v", c)
	}
}
