package validation

import (
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	portalv1 "github.com/portal-net/portal/internal/api/portal/v1"
	"github.com/portal-net/portal/internal/lb/ipam"
)

// ValidateAddressPool validates a portal.dev/v1 AddressPool: a DNS
// subdomain name and a spec the load-balancer controller can use (the
// same parser decides both, so what is admitted is what gets used).
func ValidateAddressPool(p *portalv1.AddressPool) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMeta(&p.ObjectMeta, false, apimachineryvalidation.NameIsDNSSubdomain, metaPath())
	_, specErrs := ipam.PoolFromAPI(p)
	return append(errs, specErrs...)
}

// ValidateAddressPoolUpdate validates an update of the spec.
func ValidateAddressPoolUpdate(p, old *portalv1.AddressPool) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(&p.ObjectMeta, &old.ObjectMeta, metaPath())
	return append(errs, ValidateAddressPool(p)...)
}

// ValidateAddressPoolStatusUpdate validates the controller's status.
func ValidateAddressPoolStatusUpdate(p, old *portalv1.AddressPool) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(&p.ObjectMeta, &old.ObjectMeta, metaPath())
	status := field.NewPath("status")
	for name, v := range map[string]int64{"assigned": p.Status.Assigned, "availableIPv4": p.Status.AvailableIPv4, "availableIPv6": p.Status.AvailableIPv6} {
		errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(v, status.Child(name))...)
	}
	return append(errs, metav1validation.ValidateConditions(p.Status.Conditions, status.Child("conditions"))...)
}
