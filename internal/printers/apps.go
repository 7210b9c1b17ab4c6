package printers

import (
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// defaultReplicas is the API default for spec.replicas; a nil pointer only
// reaches us from objects that skipped defaulting.
const defaultReplicas = 1

func replicaColumns(specDoc, statusDoc map[string]string) []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Desired", Type: "integer", Description: specDoc["replicas"]},
		{Name: "Current", Type: "integer", Description: statusDoc["replicas"]},
		{Name: "Ready", Type: "integer", Description: statusDoc["readyReplicas"]},
		ageColumn,
		containersColumn,
		imagesColumn,
		{Name: "Selector", Type: "string", Priority: 1, Description: specDoc["selector"]},
	}
}

// ReplicationControllerTable prints ReplicationControllers.
func ReplicationControllerTable() *TableConvertor {
	return NewTableConvertor(
		replicaColumns(corev1.ReplicationControllerSpec{}.SwaggerDoc(), corev1.ReplicationControllerStatus{}.SwaggerDoc()),
		RowOf(func(rc *corev1.ReplicationController, now time.Time) ([]interface{}, error) {
			var containers []corev1.Container
			if rc.Spec.Template != nil {
				containers = rc.Spec.Template.Spec.Containers
			}
			names, images := containerCells(containers)
			return []interface{}{
				rc.Name, int64(int32Or(rc.Spec.Replicas, defaultReplicas)), int64(rc.Status.Replicas), int64(rc.Status.ReadyReplicas),
				since(rc.CreationTimestamp, now), names, images, labels.FormatLabels(rc.Spec.Selector),
			}, nil
		}))
}

// ReplicaSetTable prints ReplicaSets.
func ReplicaSetTable() *TableConvertor {
	return NewTableConvertor(
		replicaColumns(appsv1.ReplicaSetSpec{}.SwaggerDoc(), appsv1.ReplicaSetStatus{}.SwaggerDoc()),
		RowOf(func(rs *appsv1.ReplicaSet, now time.Time) ([]interface{}, error) {
			names, images := containerCells(rs.Spec.Template.Spec.Containers)
			return []interface{}{
				rs.Name, int64(int32Or(rs.Spec.Replicas, defaultReplicas)), int64(rs.Status.Replicas), int64(rs.Status.ReadyReplicas),
				since(rs.CreationTimestamp, now), names, images, metav1.FormatLabelSelector(rs.Spec.Selector),
			}, nil
		}))
}

// DeploymentTable prints Deployments; READY is ready/desired replicas.
func DeploymentTable() *TableConvertor {
	statusDoc := appsv1.DeploymentStatus{}.SwaggerDoc()
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Ready", Type: "string", Description: "Number of the pod with ready state"},
		{Name: "Up-to-date", Type: "string", Description: statusDoc["updatedReplicas"]},
		{Name: "Available", Type: "string", Description: statusDoc["availableReplicas"]},
		ageColumn,
		containersColumn,
		imagesColumn,
		{Name: "Selector", Type: "string", Priority: 1, Description: appsv1.DeploymentSpec{}.SwaggerDoc()["selector"]},
	}, RowOf(func(d *appsv1.Deployment, now time.Time) ([]interface{}, error) {
		names, images := containerCells(d.Spec.Template.Spec.Containers)
		selector := "<invalid>"
		if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err == nil {
			selector = sel.String()
		}
		return []interface{}{
			d.Name, fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, int32Or(d.Spec.Replicas, defaultReplicas)),
			int64(d.Status.UpdatedReplicas), int64(d.Status.AvailableReplicas), since(d.CreationTimestamp, now),
			names, images, selector,
		}, nil
	}))
}

// StatefulSetTable prints StatefulSets; READY is ready/desired replicas.
func StatefulSetTable() *TableConvertor {
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Ready", Type: "string", Description: "Number of the pod with ready state"},
		ageColumn,
		containersColumn,
		imagesColumn,
	}, RowOf(func(ss *appsv1.StatefulSet, now time.Time) ([]interface{}, error) {
		names, images := containerCells(ss.Spec.Template.Spec.Containers)
		return []interface{}{
			ss.Name, fmt.Sprintf("%d/%d", ss.Status.ReadyReplicas, int32Or(ss.Spec.Replicas, defaultReplicas)),
			since(ss.CreationTimestamp, now), names, images,
		}, nil
	}))
}

// DaemonSetTable prints DaemonSets.
func DaemonSetTable() *TableConvertor {
	statusDoc := appsv1.DaemonSetStatus{}.SwaggerDoc()
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Desired", Type: "integer", Description: statusDoc["desiredNumberScheduled"]},
		{Name: "Current", Type: "integer", Description: statusDoc["currentNumberScheduled"]},
		{Name: "Ready", Type: "integer", Description: statusDoc["numberReady"]},
		{Name: "Up-to-date", Type: "integer", Description: statusDoc["updatedNumberScheduled"]},
		{Name: "Available", Type: "integer", Description: statusDoc["numberAvailable"]},
		{Name: "Node Selector", Type: "string", Description: corev1.PodSpec{}.SwaggerDoc()["nodeSelector"]},
		ageColumn,
		containersColumn,
		imagesColumn,
		{Name: "Selector", Type: "string", Priority: 1, Description: appsv1.DaemonSetSpec{}.SwaggerDoc()["selector"]},
	}, RowOf(func(ds *appsv1.DaemonSet, now time.Time) ([]interface{}, error) {
		names, images := containerCells(ds.Spec.Template.Spec.Containers)
		st := ds.Status
		return []interface{}{
			ds.Name, int64(st.DesiredNumberScheduled), int64(st.CurrentNumberScheduled), int64(st.NumberReady),
			int64(st.UpdatedNumberScheduled), int64(st.NumberAvailable), labels.FormatLabels(ds.Spec.Template.Spec.NodeSelector),
			since(ds.CreationTimestamp, now), names, images, metav1.FormatLabelSelector(ds.Spec.Selector),
		}, nil
	}))
}

// ControllerRevisionTable prints ControllerRevisions; CONTROLLER is the
// owning controller as "kind.group/name", e.g. "statefulset.apps/web".
func ControllerRevisionTable() *TableConvertor {
	return NewTableConvertor([]metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Controller", Type: "string", Description: "Controller of the object"},
		{Name: "Revision", Type: "string", Description: appsv1.ControllerRevision{}.SwaggerDoc()["revision"]},
		ageColumn,
	}, RowOf(func(cr *appsv1.ControllerRevision, now time.Time) ([]interface{}, error) {
		controller := none
		if ref := metav1.GetControllerOf(cr); ref != nil {
			gv, err := schema.ParseGroupVersion(ref.APIVersion)
			if err != nil {
				return nil, fmt.Errorf("controller reference of %s: %w", cr.Name, err)
			}
			controller = ref.Name
			if gk := gv.WithKind(ref.Kind).GroupKind(); !gk.Empty() {
				controller = strings.ToLower(gk.String()) + "/" + ref.Name
			}
		}
		return []interface{}{cr.Name, controller, cr.Revision, since(cr.CreationTimestamp, now)}, nil
	}))
}
