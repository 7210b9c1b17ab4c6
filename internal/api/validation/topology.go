package validation

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// MaxServiceTopologyKeys is the limit the removed spec.topologyKeys field had.
const MaxServiceTopologyKeys = 16

// TopologyKeyAny is the wildcard topology key: "any endpoint".
const TopologyKeyAny = "*"

// ValidateTopologyKeys validates the legacy spec.topologyKeys list the way
// Kubernetes did before the field was removed in 1.22: at most 16 keys, each
// a qualified label name or "*", "*" only last, no duplicates. The field no
// longer exists in v1, so callers pass the raw list from the request.
func ValidateTopologyKeys(keys []string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(keys) > MaxServiceTopologyKeys {
		errs = append(errs, field.TooMany(fldPath, len(keys), MaxServiceTopologyKeys))
	}
	seen := sets.New[string]()
	for i, key := range keys {
		keyPath := fldPath.Index(i)
		if seen.Has(key) {
			errs = append(errs, field.Duplicate(keyPath, key))
		}
		seen.Insert(key)
		if key == TopologyKeyAny {
			if i != len(keys)-1 {
				errs = append(errs, field.Invalid(keyPath, key, `"*" must be the last value specified`))
			}
			continue
		}
		for _, msg := range content.IsLabelKey(key) {
			errs = append(errs, field.Invalid(keyPath, key, msg))
		}
	}
	return errs
}

// ValidateServiceTopologyKeys adds the one cross-field rule the field had:
// it could not be combined with externalTrafficPolicy=Local.
func ValidateServiceTopologyKeys(svc *corev1.Service, keys []string) field.ErrorList {
	if len(keys) == 0 {
		return nil
	}
	fldPath := field.NewPath("spec", "topologyKeys")
	var errs field.ErrorList
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		errs = append(errs, field.Forbidden(fldPath, "may not be specified when `externalTrafficPolicy=Local`"))
	}
	return append(errs, ValidateTopologyKeys(keys, fldPath)...)
}

// TopologyKeysWarning returns the warning to send (as a Warning header) when
// a request still uses spec.topologyKeys; nil when keys is empty.
func TopologyKeysWarning(keys []string) []string {
	if len(keys) == 0 {
		return nil
	}
	return []string{fmt.Sprintf(
		"spec.topologyKeys (%d keys) was removed in Kubernetes v1.22 and has no effect; use spec.trafficDistribution (PreferSameZone or PreferSameNode) or the service.kubernetes.io/topology-mode annotation instead",
		len(keys))}
}
