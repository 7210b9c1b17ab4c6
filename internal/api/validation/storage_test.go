package validation

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

func validPVC(mod func(*corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default", ResourceVersion: "1"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if mod != nil {
		mod(pvc)
	}
	return pvc
}

func validPV(mod func(*corev1.PersistentVolume)) *corev1.PersistentVolume {
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-1", ResourceVersion: "1"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadOnlyMany},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/mnt/data"}},
		},
	}
	DefaultPersistentVolume(pv)
	if mod != nil {
		mod(pv)
	}
	return pv
}

// hasError reports whether errs hold an error of type typ at path.
func hasError(errs field.ErrorList, typ field.ErrorType, path, detail string) bool {
	for _, e := range errs {
		if e.Type == typ && e.Field == path && strings.Contains(e.Detail, detail) {
			return true
		}
	}
	return false
}

type storageCase[T any] struct {
	name   string
	mod    func(T)
	typ    field.ErrorType
	path   string
	detail string
}

func TestValidatePersistentVolumeClaim(t *testing.T) {
	valid := []func(*corev1.PersistentVolumeClaim){
		nil,
		func(p *corev1.PersistentVolumeClaim) {
			p.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod}
			p.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeBlock)
			p.Spec.StorageClassName = ptr.To("fast-ssd")
			p.Spec.VolumeAttributesClassName = ptr.To("gold")
			p.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "db"}}
		},
		func(p *corev1.PersistentVolumeClaim) {
			p.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany, corev1.ReadOnlyMany}
			p.Spec.StorageClassName = ptr.To("") // explicitly no class
		},
	}
	for i, mod := range valid {
		if errs := ValidatePersistentVolumeClaim(validPVC(mod)); len(errs) != 0 {
			t.Errorf("valid claim %d refused: %v", i, errs)
		}
	}
	for _, tc := range []storageCase[*corev1.PersistentVolumeClaim]{
		{"bad name", func(p *corev1.PersistentVolumeClaim) { p.Name = "Data_1" }, field.ErrorTypeInvalid, "metadata.name", ""},
		{"no namespace", func(p *corev1.PersistentVolumeClaim) { p.Namespace = "" }, field.ErrorTypeRequired, "metadata.namespace", ""},
		{"no access modes", func(p *corev1.PersistentVolumeClaim) { p.Spec.AccessModes = nil }, field.ErrorTypeRequired, "spec.accessModes", "at least 1 access mode"},
		{"unknown access mode", func(p *corev1.PersistentVolumeClaim) {
			p.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{"ReadWriteSometimes"}
		}, field.ErrorTypeNotSupported, "spec.accessModes", ""},
		{"RWOP with others", func(p *corev1.PersistentVolumeClaim) {
			p.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod, corev1.ReadWriteOnce}
		}, field.ErrorTypeForbidden, "spec.accessModes", "ReadWriteOncePod"},
		{"no storage request", func(p *corev1.PersistentVolumeClaim) { p.Spec.Resources.Requests = nil }, field.ErrorTypeRequired, "spec.resources.requests[storage]", ""},
		{"zero storage request", func(p *corev1.PersistentVolumeClaim) {
			p.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("0")
		}, field.ErrorTypeInvalid, "spec.resources.requests[storage]", "greater than zero"},
		{"negative storage request", func(p *corev1.PersistentVolumeClaim) {
			p.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("-1Gi")
		}, field.ErrorTypeInvalid, "spec.resources.requests[storage]", "greater than zero"},
		{"bad volume mode", func(p *corev1.PersistentVolumeClaim) { p.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeMode("Raw")) }, field.ErrorTypeNotSupported, "spec.volumeMode", ""},
		{"bad storage class", func(p *corev1.PersistentVolumeClaim) { p.Spec.StorageClassName = ptr.To("Fast SSD") }, field.ErrorTypeInvalid, "spec.storageClassName", ""},
		{"empty volume attributes class", func(p *corev1.PersistentVolumeClaim) { p.Spec.VolumeAttributesClassName = ptr.To("") }, field.ErrorTypeRequired, "spec.volumeAttributesClassName", ""},
		{"bad selector", func(p *corev1.PersistentVolumeClaim) {
			p.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"bad key!": "x"}}
		}, field.ErrorTypeInvalid, "spec.selector.matchLabels", ""},
		{"data source without a name", func(p *corev1.PersistentVolumeClaim) {
			p.Spec.DataSource = &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim"}
		}, field.ErrorTypeRequired, "spec.dataSource.name", ""},
	} {
		errs := ValidatePersistentVolumeClaim(validPVC(tc.mod))
		if !hasError(errs, tc.typ, tc.path, tc.detail) {
			t.Errorf("%s: want %s at %s, got %v", tc.name, tc.typ, tc.path, errs)
		}
	}
}

func TestValidatePersistentVolumeClaimUpdate(t *testing.T) {
	pending := validPVC(func(p *corev1.PersistentVolumeClaim) { DefaultPersistentVolumeClaim(p) })
	bound := validPVC(func(p *corev1.PersistentVolumeClaim) {
		DefaultPersistentVolumeClaim(p)
		p.Spec.VolumeName = "pv-1"
		p.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound,
			Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}
	})
	for _, tc := range []struct {
		name string
		old  *corev1.PersistentVolumeClaim
		mod  func(*corev1.PersistentVolumeClaim)
	}{
		{"labels", pending, func(p *corev1.PersistentVolumeClaim) { p.Labels = map[string]string{"a": "b"} }},
		{"volumeName set once", pending, func(p *corev1.PersistentVolumeClaim) { p.Spec.VolumeName = "pv-1" }},
		{"storageClassName set once", pending, func(p *corev1.PersistentVolumeClaim) { p.Spec.StorageClassName = ptr.To("standard") }},
		{"bound claim grows", bound, func(p *corev1.PersistentVolumeClaim) {
			p.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("5Gi")
		}},
		{"bound claim changes attributes class", bound, func(p *corev1.PersistentVolumeClaim) { p.Spec.VolumeAttributesClassName = ptr.To("gold") }},
	} {
		p := tc.old.DeepCopy()
		tc.mod(p)
		if errs := ValidatePersistentVolumeClaimUpdate(p, tc.old); len(errs) != 0 {
			t.Errorf("%s refused: %v", tc.name, errs)
		}
	}
	for _, tc := range []struct {
		storageCase[*corev1.PersistentVolumeClaim]
		old *corev1.PersistentVolumeClaim
	}{
		{storageCase[*corev1.PersistentVolumeClaim]{"access modes", func(p *corev1.PersistentVolumeClaim) {
			p.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
		}, field.ErrorTypeForbidden, "spec", "spec is immutable after creation"}, pending},
		{storageCase[*corev1.PersistentVolumeClaim]{"volume mode", func(p *corev1.PersistentVolumeClaim) {
			p.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeBlock)
		}, field.ErrorTypeForbidden, "spec", "immutable"}, pending},
		{storageCase[*corev1.PersistentVolumeClaim]{"pending claim resized", func(p *corev1.PersistentVolumeClaim) {
			p.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
		}, field.ErrorTypeForbidden, "spec", "for bound claims"}, pending},
		{storageCase[*corev1.PersistentVolumeClaim]{"volumeName changed", func(p *corev1.PersistentVolumeClaim) {
			p.Spec.VolumeName = "pv-2"
		}, field.ErrorTypeForbidden, "spec", "immutable"}, bound},
		{storageCase[*corev1.PersistentVolumeClaim]{"shrunk to status capacity", func(p *corev1.PersistentVolumeClaim) {
			p.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("512Mi")
		}, field.ErrorTypeForbidden, "spec.resources.requests[storage]", "less than status.capacity"}, bound},
		{storageCase[*corev1.PersistentVolumeClaim]{"still validated", func(p *corev1.PersistentVolumeClaim) {
			p.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("0")
		}, field.ErrorTypeInvalid, "spec.resources.requests[storage]", "greater than zero"}, bound},
	} {
		p := tc.old.DeepCopy()
		tc.mod(p)
		errs := ValidatePersistentVolumeClaimUpdate(p, tc.old)
		if !hasError(errs, tc.typ, tc.path, tc.detail) {
			t.Errorf("%s: want %s at %s, got %v", tc.name, tc.typ, tc.path, errs)
		}
	}
}

func TestValidatePersistentVolume(t *testing.T) {
	local := func(p *corev1.PersistentVolume) {
		p.Spec.HostPath = nil
		p.Spec.Local = &corev1.LocalVolumeSource{Path: "/mnt/disks/ssd1"}
		p.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{"node-1"}}},
		}}}}
	}
	valid := []func(*corev1.PersistentVolume){
		nil,
		local,
		func(p *corev1.PersistentVolume) {
			p.Spec.HostPath = nil
			p.Spec.CSI = &corev1.CSIPersistentVolumeSource{Driver: "csi.example.com", VolumeHandle: "vol-1"}
			p.Spec.VolumeAttributesClassName = ptr.To("gold")
			p.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimDelete
			p.Spec.StorageClassName = "fast"
			p.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "data"}
		},
		func(p *corev1.PersistentVolume) {
			p.Spec.HostPath = nil
			p.Spec.NFS = &corev1.NFSVolumeSource{Server: "nfs.example.com", Path: "/exports"}
			p.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
		},
	}
	for i, mod := range valid {
		if errs := ValidatePersistentVolume(validPV(mod)); len(errs) != 0 {
			t.Errorf("valid volume %d refused: %v", i, errs)
		}
	}
	for _, tc := range []storageCase[*corev1.PersistentVolume]{
		{"bad name", func(p *corev1.PersistentVolume) { p.Name = "PV 1" }, field.ErrorTypeInvalid, "metadata.name", ""},
		{"namespaced", func(p *corev1.PersistentVolume) { p.Namespace = "default" }, field.ErrorTypeForbidden, "metadata.namespace", ""},
		{"no capacity", func(p *corev1.PersistentVolume) { p.Spec.Capacity = nil }, field.ErrorTypeRequired, "spec.capacity", ""},
		{"capacity without storage", func(p *corev1.PersistentVolume) {
			p.Spec.Capacity = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
		}, field.ErrorTypeNotSupported, "spec.capacity", ""},
		{"zero capacity", func(p *corev1.PersistentVolume) {
			p.Spec.Capacity[corev1.ResourceStorage] = resource.MustParse("0")
		}, field.ErrorTypeInvalid, "spec.capacity[storage]", "greater than zero"},
		{"no access modes", func(p *corev1.PersistentVolume) { p.Spec.AccessModes = nil }, field.ErrorTypeRequired, "spec.accessModes", ""},
		{"unknown access mode", func(p *corev1.PersistentVolume) {
			p.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{"RWO"}
		}, field.ErrorTypeNotSupported, "spec.accessModes", ""},
		{"RWOP with others", func(p *corev1.PersistentVolume) {
			p.Spec.AccessModes = append(p.Spec.AccessModes, corev1.ReadWriteOncePod)
		}, field.ErrorTypeForbidden, "spec.accessModes", ""},
		{"no volume source", func(p *corev1.PersistentVolume) { p.Spec.HostPath = nil }, field.ErrorTypeRequired, "spec", "must specify a volume type"},
		{"two volume sources", func(p *corev1.PersistentVolume) {
			p.Spec.NFS = &corev1.NFSVolumeSource{Server: "nfs", Path: "/x"}
		}, field.ErrorTypeForbidden, "spec.nfs", "may not specify more than 1 volume type"},
		{"hostPath without a path", func(p *corev1.PersistentVolume) { p.Spec.HostPath.Path = "" }, field.ErrorTypeRequired, "spec.hostPath.path", ""},
		{"relative hostPath", func(p *corev1.PersistentVolume) { p.Spec.HostPath.Path = "mnt/data" }, field.ErrorTypeInvalid, "spec.hostPath.path", "absolute"},
		{"hostPath with backsteps", func(p *corev1.PersistentVolume) { p.Spec.HostPath.Path = "/mnt/../etc" }, field.ErrorTypeInvalid, "spec.hostPath.path", "'..'"},
		{"bad hostPath type", func(p *corev1.PersistentVolume) {
			p.Spec.HostPath.Type = ptr.To(corev1.HostPathType("Folder"))
		}, field.ErrorTypeNotSupported, "spec.hostPath.type", ""},
		{"local without a path", func(p *corev1.PersistentVolume) { local(p); p.Spec.Local.Path = "" }, field.ErrorTypeRequired, "spec.local.path", ""},
		{"local without node affinity", func(p *corev1.PersistentVolume) { local(p); p.Spec.NodeAffinity = nil }, field.ErrorTypeRequired, "spec.nodeAffinity", "Local volume requires node affinity"},
		{"node affinity without required", func(p *corev1.PersistentVolume) {
			local(p)
			p.Spec.NodeAffinity.Required = nil
		}, field.ErrorTypeRequired, "spec.nodeAffinity.required", ""},
		{"node affinity In without values", func(p *corev1.PersistentVolume) {
			local(p)
			p.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values = nil
		}, field.ErrorTypeRequired, "spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values", ""},
		{"bad reclaim policy", func(p *corev1.PersistentVolume) { p.Spec.PersistentVolumeReclaimPolicy = "Keep" }, field.ErrorTypeNotSupported, "spec.persistentVolumeReclaimPolicy", ""},
		{"bad volume mode", func(p *corev1.PersistentVolume) { p.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeMode("Raw")) }, field.ErrorTypeNotSupported, "spec.volumeMode", ""},
		{"bad storage class", func(p *corev1.PersistentVolume) { p.Spec.StorageClassName = "Fast!" }, field.ErrorTypeInvalid, "spec.storageClassName", ""},
		{"attributes class without CSI", func(p *corev1.PersistentVolume) { p.Spec.VolumeAttributesClassName = ptr.To("gold") }, field.ErrorTypeRequired, "spec.csi", ""},
		{"CSI without a driver", func(p *corev1.PersistentVolume) {
			p.Spec.HostPath = nil
			p.Spec.CSI = &corev1.CSIPersistentVolumeSource{VolumeHandle: "v"}
		}, field.ErrorTypeRequired, "spec.csi.driver", ""},
	} {
		errs := ValidatePersistentVolume(validPV(tc.mod))
		if !hasError(errs, tc.typ, tc.path, tc.detail) {
			t.Errorf("%s: want %s at %s, got %v", tc.name, tc.typ, tc.path, errs)
		}
	}
}

func TestValidatePersistentVolumeUpdate(t *testing.T) {
	old := validPV(nil)
	for name, mod := range map[string]func(*corev1.PersistentVolume){
		"capacity": func(p *corev1.PersistentVolume) { p.Spec.Capacity[corev1.ResourceStorage] = resource.MustParse("20Gi") },
		"claimRef": func(p *corev1.PersistentVolume) {
			p.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "ns", Name: "c"}
		},
		"reclaim policy": func(p *corev1.PersistentVolume) {
			p.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimDelete
		},
	} {
		p := old.DeepCopy()
		mod(p)
		if errs := ValidatePersistentVolumeUpdate(p, old); len(errs) != 0 {
			t.Errorf("%s change refused: %v", name, errs)
		}
	}
	for _, tc := range []storageCase[*corev1.PersistentVolume]{
		{"source changed", func(p *corev1.PersistentVolume) { p.Spec.HostPath.Path = "/mnt/other" }, field.ErrorTypeForbidden, "spec.persistentvolumesource", "immutable"},
		{"source type changed", func(p *corev1.PersistentVolume) {
			p.Spec.HostPath = nil
			p.Spec.NFS = &corev1.NFSVolumeSource{Server: "nfs", Path: "/x"}
		}, field.ErrorTypeForbidden, "spec.persistentvolumesource", "immutable"},
		{"volume mode changed", func(p *corev1.PersistentVolume) { p.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeBlock) }, field.ErrorTypeInvalid, "spec.volumeMode", "immutable"},
		{"still validated", func(p *corev1.PersistentVolume) { p.Spec.AccessModes = nil }, field.ErrorTypeRequired, "spec.accessModes", ""},
	} {
		p := old.DeepCopy()
		tc.mod(p)
		errs := ValidatePersistentVolumeUpdate(p, old)
		if !hasError(errs, tc.typ, tc.path, tc.detail) {
			t.Errorf("%s: want %s at %s, got %v", tc.name, tc.typ, tc.path, errs)
		}
	}
}

func TestPersistentVolumeDefaultsAndPhaseTime(t *testing.T) {
	pv := &corev1.PersistentVolume{}
	t0 := metav1.NewTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	PreparePersistentVolumeCreate(pv, t0)
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain || pv.Spec.VolumeMode == nil ||
		*pv.Spec.VolumeMode != corev1.PersistentVolumeFilesystem || pv.Status.Phase != corev1.VolumePending ||
		!pv.Status.LastPhaseTransitionTime.Equal(&t0) {
		t.Fatalf("create defaults: %+v %+v", pv.Spec, pv.Status)
	}
	t1 := metav1.NewTime(t0.Add(time.Hour))
	same := pv.DeepCopy()
	same.Status.LastPhaseTransitionTime = nil
	PreparePersistentVolumeStatusUpdate(same, pv, t1)
	if !same.Status.LastPhaseTransitionTime.Equal(&t0) {
		t.Errorf("unchanged phase moved the transition time to %v", same.Status.LastPhaseTransitionTime)
	}
	moved := pv.DeepCopy()
	moved.Status.Phase = corev1.VolumeAvailable
	PreparePersistentVolumeStatusUpdate(moved, pv, t1)
	if !moved.Status.LastPhaseTransitionTime.Equal(&t1) {
		t.Errorf("phase change kept the transition time %v", moved.Status.LastPhaseTransitionTime)
	}

	pvc := &corev1.PersistentVolumeClaim{}
	DefaultPersistentVolumeClaim(pvc)
	if pvc.Status.Phase != corev1.ClaimPending || pvc.Spec.VolumeMode == nil || *pvc.Spec.VolumeMode != corev1.PersistentVolumeFilesystem {
		t.Errorf("claim defaults: %+v %+v", pvc.Spec, pvc.Status)
	}
}
