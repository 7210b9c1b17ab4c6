package apiserver_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// PersistentVolumes and PersistentVolumeClaims are stored and validated as
// kube-apiserver does (no binder runs): discovery, create with Pending
// status, list, get, the status subresource, 422 with field paths,
// kubectl columns and delete.
func TestPersistentVolumeAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	ts := startServer(t)
	c := ts.client
	ctx := context.Background()

	found := discovered(t, c, "v1")
	if r := found["persistentvolumeclaims"]; !r.Namespaced || r.Kind != "PersistentVolumeClaim" || len(r.ShortNames) != 1 || r.ShortNames[0] != "pvc" {
		t.Errorf("pvc discovery: %+v", r)
	}
	if r := found["persistentvolumes"]; r.Namespaced || r.Kind != "PersistentVolume" || len(r.ShortNames) != 1 || r.ShortNames[0] != "pv" {
		t.Errorf("pv discovery: %+v", r)
	}
	for _, sub := range []string{"persistentvolumeclaims/status", "persistentvolumes/status"} {
		if _, ok := found[sub]; !ok {
			t.Errorf("no %s in discovery", sub)
		}
	}

	pvs := c.CoreV1().PersistentVolumes()
	_, err := pvs.Create(ctx, &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "bad"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:    corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		}}, metav1.CreateOptions{})
	assertInvalidField(t, err, "spec", "must specify a volume type")

	pv, err := pvs.Create(ctx, &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-1"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/mnt/pv-1"}},
			StorageClassName:       "manual",
		},
		// Ignored on create: status belongs to the status subresource.
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pv.Status.Phase != corev1.VolumePending || pv.Status.LastPhaseTransitionTime == nil ||
		pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain ||
		pv.Spec.VolumeMode == nil || *pv.Spec.VolumeMode != corev1.PersistentVolumeFilesystem || pv.Namespace != "" {
		t.Errorf("created pv: %+v %+v", pv.Spec, pv.Status)
	}

	claims := c.CoreV1().PersistentVolumeClaims("default")
	_, err = claims.Create(ctx, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "nosize"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}}}, metav1.CreateOptions{})
	assertInvalidField(t, err, "spec.resources.requests[storage]", "")
	pvc, err := claims.Create(ctx, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To("manual"),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pvc.Status.Phase != corev1.ClaimPending || pvc.Generation != 0 {
		t.Errorf("created pvc: generation %d status %+v", pvc.Generation, pvc.Status)
	}

	if l, err := claims.List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 1 || l.Items[0].Name != "data" {
		t.Fatalf("pvc list: %v %+v", err, l)
	}
	if l, err := c.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 1 {
		t.Fatalf("pvc list in all namespaces: %v", err)
	}
	if l, err := pvs.List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 1 || l.Items[0].Name != "pv-1" {
		t.Fatalf("pv list: %v %+v", err, l)
	}

	// What a binder would write: volumeName once on the claim, claimRef on
	// the volume, then both phases through /status.
	pvc.Spec.VolumeName = "pv-1"
	if pvc, err = claims.Update(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pvc.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound,
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Capacity:    corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")}}
	if pvc, err = claims.UpdateStatus(ctx, pvc, metav1.UpdateOptions{}); err != nil || pvc.Status.Phase != corev1.ClaimBound {
		t.Fatalf("pvc status update: %v", err)
	}
	pv.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: "default", Name: "data", UID: pvc.UID}
	pv.Status.Phase = corev1.VolumeFailed // the main endpoint ignores status
	if pv, err = pvs.Update(ctx, pv, metav1.UpdateOptions{}); err != nil || pv.Status.Phase != corev1.VolumePending {
		t.Fatalf("pv update: %v %+v", err, pv)
	}
	pendingSince := pv.Status.LastPhaseTransitionTime
	pv.Status.Phase = corev1.VolumeBound
	pv.Spec.StorageClassName = "ignored" // the status endpoint ignores spec
	if pv, err = pvs.UpdateStatus(ctx, pv, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if pv.Status.Phase != corev1.VolumeBound || pv.Spec.StorageClassName != "manual" || pv.Status.LastPhaseTransitionTime == nil ||
		pv.Status.LastPhaseTransitionTime.Before(pendingSince) {
		t.Errorf("pv after status update: %+v %+v", pv.Spec, pv.Status)
	}
	if got, err := pvs.Get(ctx, "pv-1", metav1.GetOptions{}); err != nil || got.Status.Phase != corev1.VolumeBound || got.Spec.ClaimRef == nil {
		t.Fatalf("pv get: %v %+v", err, got)
	}

	// Immutability comes back as 422 with the field to fix.
	src := pv.DeepCopy()
	src.Spec.HostPath.Path = "/mnt/elsewhere"
	_, err = pvs.Update(ctx, src, metav1.UpdateOptions{})
	assertInvalidField(t, err, "spec.persistentvolumesource", "immutable")
	modes := pvc.DeepCopy()
	modes.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	_, err = claims.Update(ctx, modes, metav1.UpdateOptions{})
	assertInvalidField(t, err, "spec", "spec is immutable after creation")
	// A bound claim may grow.
	grown := pvc.DeepCopy()
	grown.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
	if _, err := claims.Update(ctx, grown, metav1.UpdateOptions{}); err != nil {
		t.Errorf("growing a bound claim: %v", err)
	}

	for path, want := range map[string][]interface{}{
		"/api/v1/namespaces/default/persistentvolumeclaims": {"data", "Bound", "pv-1", "5Gi", "RWO", "manual", "<unset>"},
		"/api/v1/persistentvolumes":                         {"pv-1", "5Gi", "RWO", "Retain", "Bound", "default/data", "manual", "<unset>", ""},
	} {
		tbl := getTable(ctx, t, c, path)
		if len(tbl.Rows) != 1 || len(tbl.Rows[0].Cells) < len(want) {
			t.Fatalf("%s table: %+v", path, tbl.Rows)
		}
		for i, w := range want {
			if tbl.Rows[0].Cells[i] != w {
				t.Errorf("%s column %s = %v, want %v", path, tbl.ColumnDefinitions[i].Name, tbl.Rows[0].Cells[i], w)
			}
		}
	}

	if err := claims.Delete(ctx, "data", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pvs.Delete(ctx, "pv-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := claims.Get(ctx, "data", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pvc after delete: %v", err)
	}
	if _, err := pvs.Get(ctx, "pv-1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pv after delete: %v", err)
	}
}
