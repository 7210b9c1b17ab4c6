package validation

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// quotaIntegerResources are the object counts a quota can limit; their
// quantities must be whole numbers.
var quotaIntegerResources = sets.New[corev1.ResourceName](
	corev1.ResourcePods, corev1.ResourceServices, corev1.ResourceReplicationControllers,
	corev1.ResourceQuotas, corev1.ResourceSecrets, corev1.ResourceConfigMaps,
	corev1.ResourcePersistentVolumeClaims, corev1.ResourceServicesNodePorts,
	corev1.ResourceServicesLoadBalancers,
)

// quotaComputeResources are the pod compute resources a quota can limit.
var quotaComputeResources = sets.New[corev1.ResourceName](
	corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage,
	corev1.ResourceRequestsCPU, corev1.ResourceRequestsMemory, corev1.ResourceRequestsEphemeralStorage,
	corev1.ResourceLimitsCPU, corev1.ResourceLimitsMemory, corev1.ResourceLimitsEphemeralStorage,
)

var quotaScopes = sets.New(
	corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating,
	corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort,
	corev1.ResourceQuotaScopePriorityClass, corev1.ResourceQuotaScopeCrossNamespacePodAffinity,
)

// isStandardQuotaResource: the unqualified names a quota accepts.
func isStandardQuotaResource(n corev1.ResourceName) bool {
	return quotaIntegerResources.Has(n) || quotaComputeResources.Has(n) || n == corev1.ResourceRequestsStorage ||
		strings.HasPrefix(string(n), corev1.ResourceHugePagesPrefix) ||
		strings.HasPrefix(string(n), corev1.ResourceRequestsHugePagesPrefix)
}

// scopeAllows says whether a quota with the scope may limit resource n;
// scoped quotas only count pods (BestEffort pods have no compute usage).
func scopeAllows(scope corev1.ResourceQuotaScope, n corev1.ResourceName) bool {
	if !isStandardQuotaResource(n) {
		return true
	}
	podCount := n == corev1.ResourcePods
	switch scope {
	case corev1.ResourceQuotaScopeBestEffort:
		return podCount
	case corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating, corev1.ResourceQuotaScopeNotBestEffort,
		corev1.ResourceQuotaScopePriorityClass, corev1.ResourceQuotaScopeCrossNamespacePodAffinity:
		return podCount || quotaComputeResources.Has(n)
	}
	return true
}

// ValidateResourceQuota checks a ResourceQuota as kube-apiserver does.
func ValidateResourceQuota(q *corev1.ResourceQuota) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMeta(&q.ObjectMeta, true, apimachineryvalidation.NameIsDNSSubdomain, metaPath())
	errs = append(errs, validateQuotaSpec(&q.Spec, field.NewPath("spec"))...)
	return append(errs, validateQuotaStatus(&q.Status, field.NewPath("status"))...)
}

// ValidateResourceQuotaUpdate also keeps the scopes: a quota cannot change
// what it selects.
func ValidateResourceQuotaUpdate(q, old *corev1.ResourceQuota) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(&q.ObjectMeta, &old.ObjectMeta, metaPath())
	errs = append(errs, validateQuotaSpec(&q.Spec, field.NewPath("spec"))...)
	if !sets.New(q.Spec.Scopes...).Equal(sets.New(old.Spec.Scopes...)) {
		errs = append(errs, field.Invalid(field.NewPath("spec", "scopes"), q.Spec.Scopes, fieldImmutableErrorMsg))
	}
	return errs
}

// ValidateResourceQuotaStatusUpdate checks the status written by the
// resourcequota controller and quota admission.
func ValidateResourceQuotaStatusUpdate(q, old *corev1.ResourceQuota) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(&q.ObjectMeta, &old.ObjectMeta, metaPath())
	return append(errs, validateQuotaStatus(&q.Status, field.NewPath("status"))...)
}

func validateQuotaStatus(s *corev1.ResourceQuotaStatus, path *field.Path) field.ErrorList {
	errs := validateQuotaList(s.Hard, path.Child("hard"))
	return append(errs, validateQuotaList(s.Used, path.Child("used"))...)
}

func validateQuotaSpec(s *corev1.ResourceQuotaSpec, path *field.Path) field.ErrorList {
	errs := validateQuotaList(s.Hard, path.Child("hard"))
	scopes := sets.New[corev1.ResourceQuotaScope]()
	for _, sc := range s.Scopes {
		if !quotaScopes.Has(sc) {
			errs = append(errs, field.Invalid(path.Child("scopes"), s.Scopes, "unsupported scope"))
		}
		errs = append(errs, scopeResourceErrors(sc, s.Hard, path.Child("scopes"), s.Scopes)...)
		scopes.Insert(sc)
	}
	if s.ScopeSelector != nil {
		mp := path.Child("scopeSelector", "matchExpressions")
		for i, r := range s.ScopeSelector.MatchExpressions {
			rp := mp.Index(i)
			if !quotaScopes.Has(r.ScopeName) {
				errs = append(errs, field.Invalid(rp.Child("scopeName"), r.ScopeName, "unsupported scope"))
			}
			errs = append(errs, scopeResourceErrors(r.ScopeName, s.Hard, mp, s.ScopeSelector)...)
			if r.ScopeName != corev1.ResourceQuotaScopePriorityClass && r.Operator != corev1.ScopeSelectorOpExists {
				errs = append(errs, field.Invalid(rp.Child("operator"), r.Operator, "must be 'Exists' for every scope but PriorityClass"))
			}
			switch r.Operator {
			case corev1.ScopeSelectorOpIn, corev1.ScopeSelectorOpNotIn:
				if len(r.Values) == 0 {
					errs = append(errs, field.Required(rp.Child("values"), "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector"))
				}
			case corev1.ScopeSelectorOpExists, corev1.ScopeSelectorOpDoesNotExist:
				if len(r.Values) != 0 {
					errs = append(errs, field.Invalid(rp.Child("values"), r.Values, "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector"))
				}
			default:
				errs = append(errs, field.Invalid(rp.Child("operator"), r.Operator, "not a valid selector operator"))
			}
			scopes.Insert(r.ScopeName)
		}
	}
	for _, pair := range [][2]corev1.ResourceQuotaScope{
		{corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort},
		{corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating},
	} {
		if scopes.Has(pair[0]) && scopes.Has(pair[1]) {
			errs = append(errs, field.Invalid(path.Child("scopes"), s.Scopes, "conflicting scopes"))
		}
	}
	return errs
}

func scopeResourceErrors(sc corev1.ResourceQuotaScope, hard corev1.ResourceList, path *field.Path, value any) field.ErrorList {
	var errs field.ErrorList
	for n := range hard {
		if !scopeAllows(sc, n) {
			errs = append(errs, field.Invalid(path, value, "unsupported scope applied to resource"))
			break
		}
	}
	return errs
}

// validateQuotaList checks resource names and quantities: standard names,
// or qualified ones ("count/deployments.apps", "requests.example.com/gpu",
// "gold.storageclass.storage.k8s.io/requests.storage"); object counts are
// whole numbers; nothing is negative.
func validateQuotaList(l corev1.ResourceList, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for n, q := range l {
		p := path.Key(string(n))
		for _, msg := range utilvalidation.IsQualifiedName(string(n)) {
			errs = append(errs, field.Invalid(p, n, msg))
		}
		if !strings.Contains(string(n), "/") && !isStandardQuotaResource(n) {
			errs = append(errs, field.Invalid(p, n, "must be a standard resource for quota"))
		}
		if q.Sign() < 0 {
			errs = append(errs, field.Invalid(p, q.String(), "must be greater than or equal to 0"))
		}
		if (quotaIntegerResources.Has(n) || strings.HasPrefix(string(n), "count/")) && q.MilliValue()%1000 != 0 {
			errs = append(errs, field.Invalid(p, q.String(), "must be an integer"))
		}
	}
	return errs
}
