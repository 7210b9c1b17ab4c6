package printers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A claim and volume as the API server stores them without a binder
// (Pending, defaulted volume mode), rendered as `kubectl get -o wide`.
func TestKubectlRenderingStorage(t *testing.T) {
	fs := corev1.PersistentVolumeFilesystem
	meta := func(name, ns string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: ns, CreationTimestamp: ago(7 * time.Minute)}
	}
	claims := &corev1.PersistentVolumeClaimList{Items: []corev1.PersistentVolumeClaim{{
		ObjectMeta: meta("data", "default"),
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptrTo("manual"), VolumeMode: &fs,
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
	}}}
	volumes := &corev1.PersistentVolumeList{Items: []corev1.PersistentVolume{{
		ObjectMeta: meta("pv-1", ""),
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadWriteMany},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			ClaimRef:                      &corev1.ObjectReference{Namespace: "default", Name: "data"},
			StorageClassName:              "manual",
			VolumeMode:                    &fs,
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound},
	}}}
	if got, want := kubectlGet(t, PersistentVolumeClaimTable(), claims, true), ""+
		"NAME   STATUS    VOLUME   CAPACITY   ACCESS MODES   STORAGECLASS   VOLUMEATTRIBUTESCLASS   AGE   VOLUMEMODE\n"+
		"data   Pending                                      manual         <unset>                 7m    Filesystem\n"; got != want {
		t.Errorf("kubectl get pvc -o wide:\n%s\nwant:\n%s", got, want)
	}
	if got, want := kubectlGet(t, PersistentVolumeTable(), volumes, false), ""+
		"NAME   CAPACITY   ACCESS MODES   RECLAIM POLICY   STATUS   CLAIM          STORAGECLASS   VOLUMEATTRIBUTESCLASS   REASON   AGE\n"+
		"pv-1   5Gi        RWO,RWX        Retain           Bound    default/data   manual         <unset>                          7m\n"; got != want {
		t.Errorf("kubectl get pv:\n%s\nwant:\n%s", got, want)
	}
}
