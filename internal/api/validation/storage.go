package validation

import (
	"path"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// PersistentVolumes and PersistentVolumeClaims are stored and validated
// only: portal runs no provisioner or binder, so phases stay as written
// (Pending on create, like kube-apiserver without a PV controller).

var (
	supportedAccessModes = sets.New(corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod)
	supportedReclaim     = sets.New(corev1.PersistentVolumeReclaimRetain, corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRecycle)
	supportedVolumeModes = sets.New(corev1.PersistentVolumeBlock, corev1.PersistentVolumeFilesystem)
	supportedHostPath    = sets.New(corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory,
		corev1.HostPathFileOrCreate, corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev)
)

// betaStorageClassAnnotation predates spec.storageClassName.
const betaStorageClassAnnotation = "volume.beta.kubernetes.io/storage-class"

// DefaultPersistentVolume fills what Kubernetes' defaulting does for a PV
// spec: reclaim policy Retain and volume mode Filesystem.
func DefaultPersistentVolume(pv *corev1.PersistentVolume) {
	if pv.Spec.PersistentVolumeReclaimPolicy == "" {
		pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	}
	if pv.Spec.VolumeMode == nil {
		fs := corev1.PersistentVolumeFilesystem
		pv.Spec.VolumeMode = &fs
	}
	if pv.Status.Phase == "" {
		pv.Status.Phase = corev1.VolumePending
	}
}

// DefaultPersistentVolumeClaim fills volume mode Filesystem and phase Pending.
func DefaultPersistentVolumeClaim(pvc *corev1.PersistentVolumeClaim) {
	if pvc.Spec.VolumeMode == nil {
		fs := corev1.PersistentVolumeFilesystem
		pvc.Spec.VolumeMode = &fs
	}
	if pvc.Status.Phase == "" {
		pvc.Status.Phase = corev1.ClaimPending
	}
}

// PreparePersistentVolumeCreate defaults a new PV (its status was reset by
// the registry) and stamps the phase transition time.
func PreparePersistentVolumeCreate(pv *corev1.PersistentVolume, now metav1.Time) {
	DefaultPersistentVolume(pv)
	pv.Status.LastPhaseTransitionTime = &now
}

// PreparePersistentVolumeStatusUpdate keeps lastPhaseTransitionTime when
// the phase stays and sets it when the phase changes and the writer did
// not set a new time, as kube-apiserver does.
func PreparePersistentVolumeStatusUpdate(pv, old *corev1.PersistentVolume, now metav1.Time) {
	DefaultPersistentVolume(pv)
	t := pv.Status.LastPhaseTransitionTime
	switch {
	case pv.Status.Phase == old.Status.Phase && t == nil:
		pv.Status.LastPhaseTransitionTime = old.Status.LastPhaseTransitionTime
	case pv.Status.Phase != old.Status.Phase && (t == nil || t.Equal(old.Status.LastPhaseTransitionTime)):
		pv.Status.LastPhaseTransitionTime = &now
	}
}

func validateAccessModes(modes []corev1.PersistentVolumeAccessMode, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(modes) == 0 {
		return append(errs, field.Required(fldPath, "at least 1 access mode is required"))
	}
	rwop, other := false, false
	for _, m := range modes {
		switch {
		case !supportedAccessModes.Has(m):
			errs = append(errs, field.NotSupported(fldPath, m, sets.List(supportedAccessModes)))
		case m == corev1.ReadWriteOncePod:
			rwop = true
		default:
			other = true
		}
	}
	if rwop && other {
		errs = append(errs, field.Forbidden(fldPath, "may not use ReadWriteOncePod with other access modes"))
	}
	return errs
}

func validatePositiveQuantity(q resource.Quantity, fldPath *field.Path) field.ErrorList {
	if q.Sign() <= 0 {
		return field.ErrorList{field.Invalid(fldPath, q.String(), "must be greater than zero")}
	}
	return nil
}

func validateVolumeMode(m *corev1.PersistentVolumeMode, fldPath *field.Path) field.ErrorList {
	if m != nil && !supportedVolumeModes.Has(*m) {
		return field.ErrorList{field.NotSupported(fldPath, *m, sets.List(supportedVolumeModes))}
	}
	return nil
}

func validateClassName(name string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(name, false) {
		errs = append(errs, field.Invalid(fldPath, name, msg))
	}
	return errs
}

func validateVolumeAttributesClassName(name *string, fldPath *field.Path) field.ErrorList {
	if name == nil {
		return nil
	}
	if *name == "" {
		return field.ErrorList{field.Required(fldPath, "an empty string is disallowed")}
	}
	return validateClassName(*name, fldPath)
}

func validateVolumePath(p string, absolute bool, fldPath *field.Path) field.ErrorList {
	if p == "" {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	var errs field.ErrorList
	if absolute && !path.IsAbs(p) {
		errs = append(errs, field.Invalid(fldPath, p, "must be an absolute path"))
	}
	if slices.Contains(strings.Split(p, "/"), "..") {
		errs = append(errs, field.Invalid(fldPath, p, "must not contain '..'"))
	}
	return errs
}

// ValidatePersistentVolumeClaim validates a PVC: a DNS-subdomain name,
// valid access modes, a positive storage request and valid class names.
func ValidatePersistentVolumeClaim(pvc *corev1.PersistentVolumeClaim) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMeta(&pvc.ObjectMeta, true, apimachineryvalidation.NameIsDNSSubdomain, metaPath())
	return append(errs, validatePersistentVolumeClaimSpec(&pvc.Spec, field.NewPath("spec"))...)
}

func validatePersistentVolumeClaimSpec(spec *corev1.PersistentVolumeClaimSpec, fldPath *field.Path) field.ErrorList {
	errs := validateAccessModes(spec.AccessModes, fldPath.Child("accessModes"))
	if spec.Selector != nil {
		errs = append(errs, metav1validation.ValidateLabelSelector(spec.Selector, metav1validation.LabelSelectorValidationOptions{}, fldPath.Child("selector"))...)
	}
	reqPath := fldPath.Child("resources", "requests").Key(string(corev1.ResourceStorage))
	if q, ok := spec.Resources.Requests[corev1.ResourceStorage]; !ok {
		errs = append(errs, field.Required(reqPath, ""))
	} else {
		errs = append(errs, validatePositiveQuantity(q, reqPath)...)
	}
	if spec.StorageClassName != nil && *spec.StorageClassName != "" {
		errs = append(errs, validateClassName(*spec.StorageClassName, fldPath.Child("storageClassName"))...)
	}
	errs = append(errs, validateVolumeMode(spec.VolumeMode, fldPath.Child("volumeMode"))...)
	errs = append(errs, validateVolumeAttributesClassName(spec.VolumeAttributesClassName, fldPath.Child("volumeAttributesClassName"))...)
	if ds := spec.DataSource; ds != nil {
		if ds.Name == "" {
			errs = append(errs, field.Required(fldPath.Child("dataSource", "name"), ""))
		}
		if ds.Kind == "" {
			errs = append(errs, field.Required(fldPath.Child("dataSource", "kind"), ""))
		}
	}
	if ds := spec.DataSourceRef; ds != nil {
		if ds.Name == "" {
			errs = append(errs, field.Required(fldPath.Child("dataSourceRef", "name"), ""))
		}
		if ds.Kind == "" {
			errs = append(errs, field.Required(fldPath.Child("dataSourceRef", "kind"), ""))
		}
	}
	return errs
}

// ValidatePersistentVolumeClaimUpdate adds upstream's immutability: the
// spec is fixed after creation except volumeName (set once by a binder),
// storageClassName (set once when unset), and, for a bound claim,
// resources.requests and volumeAttributesClassName.
func ValidatePersistentVolumeClaimUpdate(pvc, old *corev1.PersistentVolumeClaim) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(&pvc.ObjectMeta, &old.ObjectMeta, metaPath())
	errs = append(errs, ValidatePersistentVolumeClaim(pvc)...)

	newSpec, oldSpec := pvc.Spec.DeepCopy(), old.Spec.DeepCopy()
	if oldSpec.VolumeName == "" {
		oldSpec.VolumeName = newSpec.VolumeName
	}
	if _, annotated := old.Annotations[betaStorageClassAnnotation]; oldSpec.StorageClassName == nil && !annotated {
		oldSpec.StorageClassName = newSpec.StorageClassName
	}
	if old.Status.Phase == corev1.ClaimBound {
		oldSpec.Resources.Requests = newSpec.Resources.Requests
		oldSpec.VolumeAttributesClassName = newSpec.VolumeAttributesClassName
	}
	if !equality.Semantic.DeepEqual(newSpec, oldSpec) {
		errs = append(errs, field.Forbidden(field.NewPath("spec"), "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"))
	}
	if old.Annotations[betaStorageClassAnnotation] != pvc.Annotations[betaStorageClassAnnotation] {
		errs = append(errs, field.Forbidden(metaPath().Child("annotations").Key(betaStorageClassAnnotation), fieldImmutableErrorMsg))
	}
	newSize, oldSize := pvc.Spec.Resources.Requests[corev1.ResourceStorage], old.Spec.Resources.Requests[corev1.ResourceStorage]
	if capacity := old.Status.Capacity[corev1.ResourceStorage]; newSize.Cmp(oldSize) < 0 && newSize.Cmp(capacity) <= 0 {
		// Shrinking is only a recovery from a failed expansion: it may
		// not go down to what the volume already has.
		errs = append(errs, field.Forbidden(field.NewPath("spec", "resources", "requests").Key(string(corev1.ResourceStorage)), "field can not be less than status.capacity"))
	}
	return errs
}

// ValidatePersistentVolume validates a PV: a DNS-subdomain name, a
// positive storage capacity, valid access modes and reclaim policy, and
// exactly one volume source.
func ValidatePersistentVolume(pv *corev1.PersistentVolume) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMeta(&pv.ObjectMeta, false, apimachineryvalidation.NameIsDNSSubdomain, metaPath())
	spec := field.NewPath("spec")
	errs = append(errs, validateAccessModes(pv.Spec.AccessModes, spec.Child("accessModes"))...)

	capPath := spec.Child("capacity")
	if len(pv.Spec.Capacity) == 0 {
		errs = append(errs, field.Required(capPath, ""))
	} else if _, ok := pv.Spec.Capacity[corev1.ResourceStorage]; !ok || len(pv.Spec.Capacity) > 1 {
		errs = append(errs, field.NotSupported(capPath, pv.Spec.Capacity, []corev1.ResourceName{corev1.ResourceStorage}))
	}
	for name, q := range pv.Spec.Capacity {
		errs = append(errs, validatePositiveQuantity(q, capPath.Key(string(name)))...)
	}

	if p := pv.Spec.PersistentVolumeReclaimPolicy; p != "" && !supportedReclaim.Has(p) {
		errs = append(errs, field.NotSupported(spec.Child("persistentVolumeReclaimPolicy"), p, sets.List(supportedReclaim)))
	}

	nodeAffinity := false
	if na := pv.Spec.NodeAffinity; na != nil {
		nodeAffinity = true
		errs = append(errs, validateVolumeNodeAffinity(na, spec.Child("nodeAffinity"))...)
	}

	sources := setVolumeSources(&pv.Spec.PersistentVolumeSource)
	switch {
	case len(sources) == 0:
		errs = append(errs, field.Required(spec, "must specify a volume type"))
	case len(sources) > 1:
		for _, name := range sources[1:] {
			errs = append(errs, field.Forbidden(spec.Child(name), "may not specify more than 1 volume type"))
		}
	}
	if hp := pv.Spec.HostPath; hp != nil {
		p := spec.Child("hostPath")
		errs = append(errs, validateVolumePath(hp.Path, true, p.Child("path"))...)
		if hp.Type != nil && !supportedHostPath.Has(*hp.Type) {
			errs = append(errs, field.NotSupported(p.Child("type"), *hp.Type, sets.List(supportedHostPath)))
		}
	}
	if l := pv.Spec.Local; l != nil {
		errs = append(errs, validateVolumePath(l.Path, false, spec.Child("local", "path"))...)
		if !nodeAffinity {
			errs = append(errs, field.Required(spec.Child("nodeAffinity"), "Local volume requires node affinity"))
		}
	}
	if nfs := pv.Spec.NFS; nfs != nil {
		if nfs.Server == "" {
			errs = append(errs, field.Required(spec.Child("nfs", "server"), ""))
		}
		errs = append(errs, validateVolumePath(nfs.Path, true, spec.Child("nfs", "path"))...)
	}
	if csi := pv.Spec.CSI; csi != nil {
		if csi.Driver == "" {
			errs = append(errs, field.Required(spec.Child("csi", "driver"), ""))
		}
		if csi.VolumeHandle == "" {
			errs = append(errs, field.Required(spec.Child("csi", "volumeHandle"), ""))
		}
	}

	if pv.Spec.StorageClassName != "" {
		errs = append(errs, validateClassName(pv.Spec.StorageClassName, spec.Child("storageClassName"))...)
	}
	errs = append(errs, validateVolumeMode(pv.Spec.VolumeMode, spec.Child("volumeMode"))...)
	errs = append(errs, validateVolumeAttributesClassName(pv.Spec.VolumeAttributesClassName, spec.Child("volumeAttributesClassName"))...)
	if pv.Spec.VolumeAttributesClassName != nil && *pv.Spec.VolumeAttributesClassName != "" && pv.Spec.CSI == nil {
		errs = append(errs, field.Required(spec.Child("csi"), "has to be specified when using volumeAttributesClassName"))
	}
	if ref := pv.Spec.ClaimRef; ref != nil && ref.Name == "" {
		errs = append(errs, field.Required(spec.Child("claimRef", "name"), ""))
	}
	return errs
}

// ValidatePersistentVolumeUpdate adds that the volume source and the
// volume mode are fixed after creation.
func ValidatePersistentVolumeUpdate(pv, old *corev1.PersistentVolume) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(&pv.ObjectMeta, &old.ObjectMeta, metaPath())
	errs = append(errs, ValidatePersistentVolume(pv)...)
	src := pv.Spec.PersistentVolumeSource.DeepCopy()
	if old.Spec.CSI != nil && old.Spec.CSI.ControllerExpandSecretRef == nil && src.CSI != nil {
		// A controller-expand secret may be added later.
		src.CSI.ControllerExpandSecretRef = nil
	}
	if !equality.Semantic.DeepEqual(*src, old.Spec.PersistentVolumeSource) {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "persistentvolumesource"), "spec.persistentvolumesource is immutable after creation"))
	}
	if !equality.Semantic.DeepEqual(pv.Spec.VolumeMode, old.Spec.VolumeMode) {
		errs = append(errs, field.Invalid(field.NewPath("spec", "volumeMode"), volumeModeValue(pv.Spec.VolumeMode), fieldImmutableErrorMsg))
	}
	if old.Spec.VolumeAttributesClassName != nil && pv.Spec.VolumeAttributesClassName == nil {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "volumeAttributesClassName"), "update from non-nil value to nil is forbidden"))
	}
	return errs
}

func volumeModeValue(m *corev1.PersistentVolumeMode) string {
	if m == nil {
		return ""
	}
	return string(*m)
}

// setVolumeSources names (by JSON field) the volume types a PV source sets.
func setVolumeSources(src *corev1.PersistentVolumeSource) []string {
	var names []string
	v := reflect.ValueOf(src).Elem()
	for i := 0; i < v.NumField(); i++ {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			names = append(names, name)
		}
	}
	return names
}

var supportedSelectorOps = sets.New(corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn, corev1.NodeSelectorOpExists,
	corev1.NodeSelectorOpDoesNotExist, corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt)

func validateVolumeNodeAffinity(na *corev1.VolumeNodeAffinity, fldPath *field.Path) field.ErrorList {
	if na.Required == nil {
		return field.ErrorList{field.Required(fldPath.Child("required"), "must specify required node constraints")}
	}
	var errs field.ErrorList
	termsPath := fldPath.Child("required", "nodeSelectorTerms")
	if len(na.Required.NodeSelectorTerms) == 0 {
		errs = append(errs, field.Required(termsPath, "must have at least one node selector term"))
	}
	for i, term := range na.Required.NodeSelectorTerms {
		for j, req := range term.MatchExpressions {
			errs = append(errs, validateNodeSelectorRequirement(req, true, termsPath.Index(i).Child("matchExpressions").Index(j))...)
		}
		for j, req := range term.MatchFields {
			errs = append(errs, validateNodeSelectorRequirement(req, false, termsPath.Index(i).Child("matchFields").Index(j))...)
		}
	}
	return errs
}

func validateNodeSelectorRequirement(req corev1.NodeSelectorRequirement, label bool, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if label {
		errs = append(errs, validateQualifiedName(req.Key, fldPath.Child("key"))...)
	} else if req.Key != "metadata.name" {
		errs = append(errs, field.NotSupported(fldPath.Child("key"), req.Key, []string{"metadata.name"}))
	}
	valuesPath := fldPath.Child("values")
	switch req.Operator {
	case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
		if len(req.Values) == 0 {
			errs = append(errs, field.Required(valuesPath, "must be specified when `operator` is 'In' or 'NotIn'"))
		}
	case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist:
		if len(req.Values) > 0 {
			errs = append(errs, field.Forbidden(valuesPath, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
		}
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if len(req.Values) != 1 {
			errs = append(errs, field.Required(valuesPath, "must be specified single value when `operator` is 'Lt' or 'Gt'"))
		}
	default:
		errs = append(errs, field.NotSupported(fldPath.Child("operator"), req.Operator, sets.List(supportedSelectorOps)))
	}
	if label && (req.Operator == corev1.NodeSelectorOpIn || req.Operator == corev1.NodeSelectorOpNotIn) {
		for i, v := range req.Values {
			errs = append(errs, validateLabelValue(v, valuesPath.Index(i))...)
		}
	}
	return errs
}
