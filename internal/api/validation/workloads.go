package validation

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const selectorMismatchMsg = "`selector` does not match template `labels`"

func metaPath() *field.Path { return field.NewPath("metadata") }

// validateTemplateForController applies what every replicating controller
// requires of its template: valid, restartPolicy Always, no deadline.
func validateTemplateForController(t *corev1.PodTemplateSpec, fldPath *field.Path) field.ErrorList {
	errs := ValidatePodTemplateSpec(t, fldPath)
	if t.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		errs = append(errs, field.NotSupported(fldPath.Child("spec", "restartPolicy"), t.Spec.RestartPolicy, []corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if t.Spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Forbidden(fldPath.Child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in ReplicationController is not Supported"))
	}
	return errs
}

// ValidateReplicationController validates an RC on create and update.
func ValidateReplicationController(rc *corev1.ReplicationController) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMeta(&rc.ObjectMeta, true, apimachineryvalidation.NameIsDNSSubdomain, metaPath())
	specPath := field.NewPath("spec")
	errs = append(errs, validateNonnegative(int64(rc.Spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	sel := labels.Set(rc.Spec.Selector).AsSelector()
	if sel.Empty() {
		errs = append(errs, field.Required(specPath.Child("selector"), ""))
	}
	if rc.Spec.Replicas != nil {
		errs = append(errs, validateNonnegative(int64(*rc.Spec.Replicas), specPath.Child("replicas"))...)
	}
	tPath := specPath.Child("template")
	if rc.Spec.Template == nil {
		return append(errs, field.Required(tPath, ""))
	}
	if !sel.Empty() && !sel.Matches(labels.Set(rc.Spec.Template.Labels)) {
		errs = append(errs, field.Invalid(tPath.Child("metadata", "labels"), rc.Spec.Template.Labels, selectorMismatchMsg))
	}
	return append(errs, validateTemplateForController(rc.Spec.Template, tPath)...)
}

// validateSelectorAndTemplate covers the apps/v1 selector rules shared by
// ReplicaSets, Deployments, StatefulSets and DaemonSets.
func validateSelectorAndTemplate(sel *metav1.LabelSelector, t *corev1.PodTemplateSpec, kind string, specPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	selPath := specPath.Child("selector")
	tPath := specPath.Child("template")
	if sel == nil {
		errs = append(errs, field.Required(selPath, ""))
	} else {
		errs = append(errs, metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, selPath)...)
		if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
			errs = append(errs, field.Invalid(selPath, sel, "empty selector is invalid for "+kind))
		}
	}
	if s, err := metav1.LabelSelectorAsSelector(sel); err == nil && sel != nil && !s.Empty() && !s.Matches(labels.Set(t.Labels)) {
		errs = append(errs, field.Invalid(tPath.Child("metadata", "labels"), t.Labels, selectorMismatchMsg))
	}
	return append(errs, validateTemplateForController(t, tPath)...)
}

// ValidateReplicaSet validates a ReplicaSet.
func ValidateReplicaSet(rs *appsv1.ReplicaSet) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMeta(&rs.ObjectMeta, true, apimachineryvalidation.NameIsDNSSubdomain, metaPath())
	specPath := field.NewPath("spec")
	errs = append(errs, validateReplicas(rs.Spec.Replicas, specPath)...)
	errs = append(errs, validateNonnegative(int64(rs.Spec.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	return append(errs, validateSelectorAndTemplate(rs.Spec.Selector, &rs.Spec.Template, "replicaset", specPath)...)
}

// ValidateReplicaSetUpdate adds selector immutability.
func ValidateReplicaSetUpdate(newRS, oldRS *appsv1.ReplicaSet) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(&newRS.ObjectMeta, &oldRS.ObjectMeta, metaPath())
	errs = append(errs, ValidateReplicaSet(newRS)...)
	return append(errs, apimachineryvalidation.ValidateImmutableField(newRS.Spec.Selector, oldRS.Spec.Selector, field.NewPath("spec", "selector"))...)
}

func validateReplicas(r *int32, specPath *field.Path) field.ErrorList {
	if r == nil {
		return nil
	}
	return validateNonnegative(int64(*r), specPath.Child("replicas"))
}

// ValidateDeployment validates a Deployment.
func ValidateDeployment(d *appsv1.Deployment) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMeta(&d.ObjectMeta, true, apimachineryvalidation.NameIsDNSSubdomain, metaPath())
	specPath := field.NewPath("spec")
	s := &d.Spec
	errs = append(errs, validateReplicas(s.Replicas, specPath)...)
	errs = append(errs, validateNonnegative(int64(s.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	errs = append(errs, validateSelectorAndTemplate(s.Selector, &s.Template, "deployment", specPath)...)

	stPath := specPath.Child("strategy")
	switch s.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if s.Strategy.RollingUpdate != nil {
			errs = append(errs, field.Forbidden(stPath.Child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'"))
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		if ru := s.Strategy.RollingUpdate; ru == nil {
			errs = append(errs, field.Required(stPath.Child("rollingUpdate"), "this should be defaulted and never be nil"))
		} else {
			errs = append(errs, validateRollingUpdate(ru.MaxUnavailable, ru.MaxSurge, stPath.Child("rollingUpdate"))...)
		}
	case "":
		errs = append(errs, field.Required(stPath.Child("type"), ""))
	default:
		errs = append(errs, field.NotSupported(stPath.Child("type"), s.Strategy.Type,
			[]appsv1.DeploymentStrategyType{appsv1.RecreateDeploymentStrategyType, appsv1.RollingUpdateDeploymentStrategyType}))
	}
	if s.RevisionHistoryLimit != nil {
		errs = append(errs, validateNonnegative(int64(*s.RevisionHistoryLimit), specPath.Child("revisionHistoryLimit"))...)
	}
	if s.ProgressDeadlineSeconds != nil {
		pds := *s.ProgressDeadlineSeconds
		errs = append(errs, validateNonnegative(int64(pds), specPath.Child("progressDeadlineSeconds"))...)
		if pds <= s.MinReadySeconds {
			errs = append(errs, field.Invalid(specPath.Child("progressDeadlineSeconds"), pds, "must be greater than minReadySeconds"))
		}
	}
	return errs
}

// ValidateDeploymentUpdate adds selector immutability.
func ValidateDeploymentUpdate(newD, oldD *appsv1.Deployment) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(&newD.ObjectMeta, &oldD.ObjectMeta, metaPath())
	errs = append(errs, ValidateDeployment(newD)...)
	return append(errs, apimachineryvalidation.ValidateImmutableField(newD.Spec.Selector, oldD.Spec.Selector, field.NewPath("spec", "selector"))...)
}

// validateRollingUpdate checks maxUnavailable/maxSurge: non-negative ints or
// percentages, maxUnavailable at most 100%, and not both zero.
func validateRollingUpdate(maxUnavailable, maxSurge *intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	muPath, msPath := fldPath.Child("maxUnavailable"), fldPath.Child("maxSurge")
	errs = append(errs, validatePositiveIntOrPercent(maxUnavailable, muPath)...)
	errs = append(errs, validatePositiveIntOrPercent(maxSurge, msPath)...)
	if maxUnavailable != nil && maxUnavailable.Type == intstr.String {
		if v, err := intstr.GetScaledValueFromIntOrPercent(maxUnavailable, 100, false); err == nil && v > 100 {
			errs = append(errs, field.Invalid(muPath, maxUnavailable, "must not be greater than 100%"))
		}
	}
	if isZero(maxUnavailable) && isZero(maxSurge) {
		errs = append(errs, field.Invalid(muPath, maxUnavailable, "may not be 0 when `maxSurge` is 0"))
	}
	return errs
}

func validatePositiveIntOrPercent(v *intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	switch v.Type {
	case intstr.String:
		for _, msg := range utilvalidation.IsValidPercent(v.StrVal) {
			return field.ErrorList{field.Invalid(fldPath, v, msg)}
		}
		if n, err := intstr.GetScaledValueFromIntOrPercent(v, 100, false); err == nil && n < 0 {
			return field.ErrorList{field.Invalid(fldPath, v, "must be greater than or equal to 0")}
		}
	case intstr.Int:
		return validateNonnegative(int64(v.IntValue()), fldPath)
	}
	return nil
}

func isZero(v *intstr.IntOrString) bool {
	if v == nil {
		return true
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(v, 100, false)
	return err == nil && n == 0
}

// ValidateStatefulSet validates a StatefulSet.
func ValidateStatefulSet(ss *appsv1.StatefulSet) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMeta(&ss.ObjectMeta, true, apimachineryvalidation.NameIsDNSSubdomain, metaPath())
	specPath := field.NewPath("spec")
	s := &ss.Spec
	errs = append(errs, validateReplicas(s.Replicas, specPath)...)
	errs = append(errs, validateNonnegative(int64(s.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	switch s.PodManagementPolicy {
	case appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement:
	case "":
		errs = append(errs, field.Required(specPath.Child("podManagementPolicy"), ""))
	default:
		errs = append(errs, field.Invalid(specPath.Child("podManagementPolicy"), s.PodManagementPolicy,
			"must be 'OrderedReady' or 'Parallel'"))
	}
	usPath := specPath.Child("updateStrategy")
	switch s.UpdateStrategy.Type {
	case appsv1.OnDeleteStatefulSetStrategyType:
		if s.UpdateStrategy.RollingUpdate != nil {
			errs = append(errs, field.Invalid(usPath.Child("rollingUpdate"), s.UpdateStrategy.RollingUpdate,
				"only allowed for updateStrategy 'RollingUpdate'"))
		}
	case appsv1.RollingUpdateStatefulSetStrategyType:
		if ru := s.UpdateStrategy.RollingUpdate; ru != nil {
			if ru.Partition != nil {
				errs = append(errs, validateNonnegative(int64(*ru.Partition), usPath.Child("rollingUpdate", "partition"))...)
			}
			errs = append(errs, validatePositiveIntOrPercent(ru.MaxUnavailable, usPath.Child("rollingUpdate", "maxUnavailable"))...)
		}
	case "":
		errs = append(errs, field.Required(usPath, ""))
	default:
		errs = append(errs, field.Invalid(usPath, s.UpdateStrategy,
			"must be 'RollingUpdate' or 'OnDelete'"))
	}
	if p := s.PersistentVolumeClaimRetentionPolicy; p != nil {
		ok := []appsv1.PersistentVolumeClaimRetentionPolicyType{appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType}
		pPath := specPath.Child("persistentVolumeClaimRetentionPolicy")
		if !contains(ok, p.WhenDeleted) {
			errs = append(errs, field.NotSupported(pPath.Child("whenDeleted"), p.WhenDeleted, ok))
		}
		if !contains(ok, p.WhenScaled) {
			errs = append(errs, field.NotSupported(pPath.Child("whenScaled"), p.WhenScaled, ok))
		}
	}
	if s.RevisionHistoryLimit != nil {
		errs = append(errs, validateNonnegative(int64(*s.RevisionHistoryLimit), specPath.Child("revisionHistoryLimit"))...)
	}
	if s.ServiceName != "" {
		for _, msg := range ValidateServiceName(s.ServiceName, false) {
			errs = append(errs, field.Invalid(specPath.Child("serviceName"), s.ServiceName, msg))
		}
	}
	// Containers mount volumeClaimTemplates by name; for the template's
	// validation they count as volumes, as they do in the pods the
	// controller creates.
	tmpl := s.Template.DeepCopy()
	for _, c := range s.VolumeClaimTemplates {
		if !hasVolume(tmpl.Spec.Volumes, c.Name) {
			tmpl.Spec.Volumes = append(tmpl.Spec.Volumes, corev1.Volume{Name: c.Name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		}
	}
	return append(errs, validateSelectorAndTemplate(s.Selector, tmpl, "statefulset", specPath)...)
}

func hasVolume(vols []corev1.Volume, name string) bool {
	for _, v := range vols {
		if v.Name == name {
			return true
		}
	}
	return false
}

// ValidateStatefulSetUpdate enforces upstream's short list of mutable
// StatefulSet spec fields.
func ValidateStatefulSetUpdate(newSS, oldSS *appsv1.StatefulSet) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(&newSS.ObjectMeta, &oldSS.ObjectMeta, metaPath())
	errs = append(errs, ValidateStatefulSet(newSS)...)
	masked := *oldSS.Spec.DeepCopy()
	masked.Replicas = newSS.Spec.Replicas
	masked.Ordinals = newSS.Spec.Ordinals
	masked.Template = newSS.Spec.Template
	masked.UpdateStrategy = newSS.Spec.UpdateStrategy
	masked.RevisionHistoryLimit = newSS.Spec.RevisionHistoryLimit
	masked.PersistentVolumeClaimRetentionPolicy = newSS.Spec.PersistentVolumeClaimRetentionPolicy
	masked.MinReadySeconds = newSS.Spec.MinReadySeconds
	if !apiequality.Semantic.DeepEqual(masked, newSS.Spec) {
		errs = append(errs, field.Forbidden(field.NewPath("spec"),
			"updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"))
	}
	return errs
}

// ValidateDaemonSet validates a DaemonSet.
func ValidateDaemonSet(ds *appsv1.DaemonSet) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMeta(&ds.ObjectMeta, true, apimachineryvalidation.NameIsDNSSubdomain, metaPath())
	specPath := field.NewPath("spec")
	s := &ds.Spec
	errs = append(errs, validateNonnegative(int64(s.MinReadySeconds), specPath.Child("minReadySeconds"))...)
	usPath := specPath.Child("updateStrategy")
	switch s.UpdateStrategy.Type {
	case appsv1.OnDeleteDaemonSetStrategyType:
	case appsv1.RollingUpdateDaemonSetStrategyType:
		if ru := s.UpdateStrategy.RollingUpdate; ru == nil {
			errs = append(errs, field.Required(usPath.Child("rollingUpdate"), ""))
		} else {
			errs = append(errs, validateRollingUpdate(ru.MaxUnavailable, ru.MaxSurge, usPath.Child("rollingUpdate"))...)
			if !isZero(ru.MaxUnavailable) && !isZero(ru.MaxSurge) {
				errs = append(errs, field.Invalid(usPath.Child("rollingUpdate", "maxSurge"), ru.MaxSurge, "may not be set when maxUnavailable is non-zero"))
			}
		}
	case "":
		errs = append(errs, field.Required(usPath.Child("type"), ""))
	default:
		errs = append(errs, field.NotSupported(usPath.Child("type"), s.UpdateStrategy.Type,
			[]appsv1.DaemonSetUpdateStrategyType{appsv1.OnDeleteDaemonSetStrategyType, appsv1.RollingUpdateDaemonSetStrategyType}))
	}
	if s.RevisionHistoryLimit != nil {
		errs = append(errs, validateNonnegative(int64(*s.RevisionHistoryLimit), specPath.Child("revisionHistoryLimit"))...)
	}
	return append(errs, validateSelectorAndTemplate(s.Selector, &s.Template, "daemonset", specPath)...)
}

// ValidateDaemonSetUpdate adds selector immutability.
func ValidateDaemonSetUpdate(newDS, oldDS *appsv1.DaemonSet) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(&newDS.ObjectMeta, &oldDS.ObjectMeta, metaPath())
	errs = append(errs, ValidateDaemonSet(newDS)...)
	return append(errs, apimachineryvalidation.ValidateImmutableField(newDS.Spec.Selector, oldDS.Spec.Selector, field.NewPath("spec", "selector"))...)
}
