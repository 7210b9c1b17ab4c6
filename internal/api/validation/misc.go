package validation

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"
)

// MaxSecretSize and MaxConfigMapSize are upstream's 1 MiB limits (etcd's
// request size bounds what one object may carry).
const (
	MaxSecretSize    = 1 * 1024 * 1024
	MaxConfigMapSize = 1 * 1024 * 1024
)

// ValidateNamespace validates a Namespace: a DNS-1123 label name and
// qualified finalizer names.
func ValidateNamespace(ns *corev1.Namespace) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMeta(&ns.ObjectMeta, false, apimachineryvalidation.ValidateNamespaceName, metaPath())
	for i, f := range ns.Spec.Finalizers {
		errs = append(errs, apimachineryvalidation.ValidateFinalizerName(string(f), field.NewPath("spec", "finalizers").Index(i))...)
	}
	return errs
}

// ValidateNamespaceUpdate validates an update (metadata rules only).
func ValidateNamespaceUpdate(newNS, oldNS *corev1.Namespace) field.ErrorList {
	return apimachineryvalidation.ValidateObjectMetaUpdate(&newNS.ObjectMeta, &oldNS.ObjectMeta, metaPath())
}

// ValidateNode validates a Node: name, taints and pod CIDRs.
func ValidateNode(node *corev1.Node) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMeta(&node.ObjectMeta, false, apimachineryvalidation.NameIsDNSSubdomain, metaPath())
	errs = append(errs, validateTaints(node.Spec.Taints, field.NewPath("spec", "taints"))...)
	if node.Spec.PodCIDR != "" && len(node.Spec.PodCIDRs) > 0 && node.Spec.PodCIDRs[0] != node.Spec.PodCIDR {
		errs = append(errs, field.Invalid(field.NewPath("spec", "podCIDRs"), node.Spec.PodCIDRs, "first value must match `podCIDR`"))
	}
	cidrPath := field.NewPath("spec", "podCIDRs")
	for i, c := range node.Spec.PodCIDRs {
		errs = append(errs, utilvalidation.IsValidCIDR(cidrPath.Index(i), c)...)
	}
	if len(node.Spec.PodCIDRs) > 1 {
		dual, err := netutils.IsDualStackCIDRStrings(node.Spec.PodCIDRs)
		if err == nil && (!dual || len(node.Spec.PodCIDRs) > 2) {
			errs = append(errs, field.Invalid(cidrPath, node.Spec.PodCIDRs, "may specify no more than one CIDR for each IP family"))
		}
		seen := sets.New[string]()
		for i, c := range node.Spec.PodCIDRs {
			if seen.Has(c) {
				errs = append(errs, field.Duplicate(cidrPath.Index(i), c))
			}
			seen.Insert(c)
		}
	}
	return errs
}

// ValidateNodeUpdate adds the rule that podCIDRs and providerID are set once.
func ValidateNodeUpdate(newNode, oldNode *corev1.Node) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(&newNode.ObjectMeta, &oldNode.ObjectMeta, metaPath())
	errs = append(errs, ValidateNode(newNode)...)
	if len(oldNode.Spec.PodCIDRs) > 0 {
		changed := len(oldNode.Spec.PodCIDRs) != len(newNode.Spec.PodCIDRs)
		for i := 0; !changed && i < len(oldNode.Spec.PodCIDRs); i++ {
			changed = oldNode.Spec.PodCIDRs[i] != newNode.Spec.PodCIDRs[i]
		}
		if changed {
			errs = append(errs, field.Forbidden(field.NewPath("spec", "podCIDRs"), `node updates may not change podCIDR except from "" to valid`))
		}
	}
	if oldNode.Spec.ProviderID != "" && oldNode.Spec.ProviderID != newNode.Spec.ProviderID {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "providerID"), `node updates may not change providerID except from "" to valid`))
	}
	return errs
}

func validateTaints(taints []corev1.Taint, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[corev1.TaintEffect]sets.Set[string]{}
	for i, t := range taints {
		tPath := fldPath.Index(i)
		errs = append(errs, metav1validation.ValidateLabelName(t.Key, tPath.Child("key"))...)
		errs = append(errs, validateLabelValue(t.Value, tPath.Child("value"))...)
		if t.Effect == "" {
			errs = append(errs, field.Required(tPath.Child("effect"), ""))
		} else if !contains(supportedTaintEffects, t.Effect) {
			errs = append(errs, field.NotSupported(tPath.Child("effect"), t.Effect, supportedTaintEffects))
		}
		if seen[t.Effect].Has(t.Key) {
			d := field.Duplicate(tPath, t)
			d.Detail = "taints must be unique by key and effect pair"
			errs = append(errs, d)
			continue
		}
		if seen[t.Effect] == nil {
			seen[t.Effect] = sets.New[string]()
		}
		seen[t.Effect].Insert(t.Key)
	}
	return errs
}

// ValidateConfigMap validates keys and total size.
func ValidateConfigMap(cm *corev1.ConfigMap) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMeta(&cm.ObjectMeta, true, apimachineryvalidation.NameIsDNSSubdomain, metaPath())
	total := 0
	for k, v := range cm.Data {
		for _, msg := range utilvalidation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(field.NewPath("data").Key(k), k, msg))
		}
		total += len(v)
	}
	for k, v := range cm.BinaryData {
		for _, msg := range utilvalidation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(field.NewPath("binaryData").Key(k), k, msg))
		}
		if _, dup := cm.Data[k]; dup {
			errs = append(errs, field.Invalid(field.NewPath("binaryData").Key(k), k, "duplicate of key present in data"))
		}
		total += len(v)
	}
	if total > MaxConfigMapSize {
		errs = append(errs, field.TooLong(field.NewPath(""), "", MaxConfigMapSize))
	}
	return errs
}

// ValidateConfigMapUpdate enforces immutability once immutable is true.
func ValidateConfigMapUpdate(newCM, oldCM *corev1.ConfigMap) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(&newCM.ObjectMeta, &oldCM.ObjectMeta, metaPath())
	if oldCM.Immutable != nil && *oldCM.Immutable {
		if newCM.Immutable == nil || !*newCM.Immutable {
			errs = append(errs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
		}
		errs = append(errs, immutableData(newCM.Data, oldCM.Data, "data")...)
		errs = append(errs, immutableData(newCM.BinaryData, oldCM.BinaryData, "binaryData")...)
	}
	return append(errs, ValidateConfigMap(newCM)...)
}

// ValidateSecret validates keys, size and the per-type required keys.
func ValidateSecret(s *corev1.Secret) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMeta(&s.ObjectMeta, true, apimachineryvalidation.NameIsDNSSubdomain, metaPath())
	dataPath := field.NewPath("data")
	total := 0
	for k, v := range s.Data {
		for _, msg := range utilvalidation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(dataPath.Key(k), k, msg))
		}
		total += len(v)
	}
	if total > MaxSecretSize {
		errs = append(errs, field.TooLong(dataPath, "", MaxSecretSize))
	}
	requireKey := func(key string) {
		if _, ok := s.Data[key]; !ok {
			errs = append(errs, field.Required(dataPath.Key(key), ""))
		}
	}
	switch s.Type {
	case corev1.SecretTypeServiceAccountToken:
		if s.Annotations[corev1.ServiceAccountNameKey] == "" {
			errs = append(errs, field.Required(metaPath().Child("annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	case corev1.SecretTypeDockercfg:
		requireKey(corev1.DockerConfigKey)
	case corev1.SecretTypeDockerConfigJson:
		requireKey(corev1.DockerConfigJsonKey)
	case corev1.SecretTypeBasicAuth:
		_, u := s.Data[corev1.BasicAuthUsernameKey]
		_, p := s.Data[corev1.BasicAuthPasswordKey]
		if !u && !p {
			errs = append(errs, field.Required(dataPath.Key(corev1.BasicAuthUsernameKey), ""))
			errs = append(errs, field.Required(dataPath.Key(corev1.BasicAuthPasswordKey), ""))
		}
	case corev1.SecretTypeSSHAuth:
		if len(s.Data[corev1.SSHAuthPrivateKey]) == 0 {
			errs = append(errs, field.Required(dataPath.Key(corev1.SSHAuthPrivateKey), ""))
		}
	case corev1.SecretTypeTLS:
		requireKey(corev1.TLSCertKey)
		requireKey(corev1.TLSPrivateKeyKey)
	case "":
		errs = append(errs, field.Required(field.NewPath("type"), ""))
	default:
		for _, msg := range content.IsLabelKey(string(s.Type)) {
			errs = append(errs, field.Invalid(field.NewPath("type"), s.Type, msg))
		}
	}
	return errs
}

// ValidateSecretUpdate adds type and immutable-data immutability.
func ValidateSecretUpdate(newS, oldS *corev1.Secret) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(&newS.ObjectMeta, &oldS.ObjectMeta, metaPath())
	errs = append(errs, apimachineryvalidation.ValidateImmutableField(newS.Type, oldS.Type, field.NewPath("type"))...)
	if oldS.Immutable != nil && *oldS.Immutable {
		if newS.Immutable == nil || !*newS.Immutable {
			errs = append(errs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
		}
		errs = append(errs, immutableData(newS.Data, oldS.Data, "data")...)
	}
	return append(errs, ValidateSecret(newS)...)
}

func immutableData[V string | []byte](newData, oldData map[string]V, name string) field.ErrorList {
	if len(newData) != len(oldData) {
		return field.ErrorList{field.Forbidden(field.NewPath(name), "field is immutable when `immutable` is set")}
	}
	for k, v := range oldData {
		nv, ok := newData[k]
		if !ok || fmt.Sprint(nv) != fmt.Sprint(v) {
			return field.ErrorList{field.Forbidden(field.NewPath(name), "field is immutable when `immutable` is set")}
		}
	}
	return nil
}
