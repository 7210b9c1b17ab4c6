package printers

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var replicaCols = []col{
	{"Name", 0}, {"Desired", 0}, {"Current", 0}, {"Ready", 0}, {"Age", 0}, {"Containers", 1}, {"Images", 1}, {"Selector", 1},
}

func template(containers ...string) corev1.PodTemplateSpec {
	var t corev1.PodTemplateSpec
	for _, c := range containers {
		t.Spec.Containers = append(t.Spec.Containers, corev1.Container{Name: c, Image: "registry.example/" + c + ":1.0"})
	}
	return t
}

var appMeta = metav1.ObjectMeta{Name: "web", Namespace: "default", CreationTimestamp: ago(7 * time.Minute)}

func TestReplicationControllerRows(t *testing.T) {
	assertColumns(t, ReplicationControllerTable(), replicaCols)
	tmpl := template("nginx", "log")
	rc := &corev1.ReplicationController{
		ObjectMeta: appMeta,
		Spec:       corev1.ReplicationControllerSpec{Replicas: ptrTo[int32](3), Selector: map[string]string{"app": "web"}, Template: &tmpl},
		Status:     corev1.ReplicationControllerStatus{Replicas: 3, ReadyReplicas: 2},
	}
	assertCells(t, cells(t, ReplicationControllerTable(), rc), []interface{}{
		"web", int64(3), int64(3), int64(2), "7m", "nginx,log", "registry.example/nginx:1.0,registry.example/log:1.0", "app=web",
	})

	bare := &corev1.ReplicationController{ObjectMeta: appMeta}
	assertCells(t, cells(t, ReplicationControllerTable(), bare), []interface{}{
		"web", int64(1), int64(0), int64(0), "7m", "", "", "<none>",
	})
}

func TestReplicaSetRows(t *testing.T) {
	assertColumns(t, ReplicaSetTable(), replicaCols)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-7d9c8b6f5", CreationTimestamp: ago(7 * time.Minute)},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptrTo[int32](0), Template: template("nginx"), Selector: &metav1.LabelSelector{
			MatchLabels:      map[string]string{"app": "web", "pod-template-hash": "7d9c8b6f5"},
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"fe", "be"}}},
		}},
	}
	assertCells(t, cells(t, ReplicaSetTable(), rs), []interface{}{
		"web-7d9c8b6f5", int64(0), int64(0), int64(0), "7m", "nginx", "registry.example/nginx:1.0", "app=web,pod-template-hash=7d9c8b6f5,tier in (be,fe)",
	})
}

func TestDeploymentRows(t *testing.T) {
	assertColumns(t, DeploymentTable(), []col{
		{"Name", 0}, {"Ready", 0}, {"Up-to-date", 0}, {"Available", 0}, {"Age", 0}, {"Containers", 1}, {"Images", 1}, {"Selector", 1},
	})
	d := &appsv1.Deployment{
		ObjectMeta: appMeta,
		Spec:       appsv1.DeploymentSpec{Replicas: ptrTo[int32](3), Template: template("nginx"), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		Status:     appsv1.DeploymentStatus{Replicas: 3, ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 2},
	}
	assertCells(t, cells(t, DeploymentTable(), d), []interface{}{
		"web", "2/3", int64(3), int64(2), "7m", "nginx", "registry.example/nginx:1.0", "app=web",
	})

	invalid := d.DeepCopy()
	invalid.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Bogus"}}}
	invalid.Spec.Replicas = nil
	assertCells(t, cells(t, DeploymentTable(), invalid), []interface{}{
		"web", "2/1", int64(3), int64(2), "7m", "nginx", "registry.example/nginx:1.0", "<invalid>",
	})
}

func TestStatefulSetRows(t *testing.T) {
	assertColumns(t, StatefulSetTable(), []col{{"Name", 0}, {"Ready", 0}, {"Age", 0}, {"Containers", 1}, {"Images", 1}})
	ss := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", CreationTimestamp: ago(400 * 24 * time.Hour)},
		Spec:       appsv1.StatefulSetSpec{Replicas: ptrTo[int32](3), Template: template("postgres")},
		Status:     appsv1.StatefulSetStatus{ReadyReplicas: 3},
	}
	assertCells(t, cells(t, StatefulSetTable(), ss), []interface{}{"db", "3/3", "400d", "postgres", "registry.example/postgres:1.0"})
}

func TestDaemonSetRows(t *testing.T) {
	assertColumns(t, DaemonSetTable(), []col{
		{"Name", 0}, {"Desired", 0}, {"Current", 0}, {"Ready", 0}, {"Up-to-date", 0}, {"Available", 0}, {"Node Selector", 0}, {"Age", 0},
		{"Containers", 1}, {"Images", 1}, {"Selector", 1},
	})
	tmpl := template("proxy")
	tmpl.Spec.NodeSelector = map[string]string{"kubernetes.io/os": "linux"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", CreationTimestamp: ago(7 * time.Minute)},
		Spec:       appsv1.DaemonSetSpec{Template: tmpl, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-proxy"}}},
		Status:     appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2, UpdatedNumberScheduled: 3, NumberAvailable: 2},
	}
	assertCells(t, cells(t, DaemonSetTable(), ds), []interface{}{
		"kube-proxy", int64(3), int64(3), int64(2), int64(3), int64(2), "kubernetes.io/os=linux", "7m", "proxy", "registry.example/proxy:1.0", "k8s-app=kube-proxy",
	})

	noSelector := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "x"}}
	assertCells(t, cells(t, DaemonSetTable(), noSelector), []interface{}{
		"x", int64(0), int64(0), int64(0), int64(0), int64(0), "<none>", "<unknown>", "", "", "<none>",
	})
}

func TestControllerRevisionRows(t *testing.T) {
	assertColumns(t, ControllerRevisionTable(), []col{{"Name", 0}, {"Controller", 0}, {"Revision", 0}, {"Age", 0}})
	owned := func(apiVersion, kind string) *appsv1.ControllerRevision {
		return &appsv1.ControllerRevision{
			ObjectMeta: metav1.ObjectMeta{Name: "web-5c8f7", CreationTimestamp: ago(7 * time.Minute), OwnerReferences: []metav1.OwnerReference{
				{APIVersion: "v1", Kind: "ConfigMap", Name: "not-the-controller"},
				{APIVersion: apiVersion, Kind: kind, Name: "web", Controller: ptrTo(true)},
			}},
			Revision: 2,
		}
	}
	tests := []struct {
		name string
		obj  *appsv1.ControllerRevision
		want string
	}{
		{"statefulset", owned("apps/v1", "StatefulSet"), "statefulset.apps/web"},
		{"core group kind", owned("v1", "ReplicationController"), "replicationcontroller/web"},
		{"no controller", &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: "web-5c8f7", CreationTimestamp: ago(7 * time.Minute)}, Revision: 2}, "<none>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertCells(t, cells(t, ControllerRevisionTable(), tt.obj), []interface{}{"web-5c8f7", tt.want, int64(2), "7m"})
		})
	}

	bad := owned("apps/v1/extra", "StatefulSet")
	if _, err := ControllerRevisionTable().ConvertToTable(t.Context(), bad, nil); err == nil {
		t.Error("want error for an unparsable controller apiVersion")
	}
}
