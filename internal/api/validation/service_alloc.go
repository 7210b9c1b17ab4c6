package validation

import (
	"fmt"
	"net"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"
)

// validateServiceAllocation reproduces the rejections upstream's IP and port
// allocators make before anything is stored: families the cluster does not
// serve, a single-stack policy with two families, IPs outside the service
// CIDRs and ports outside the node-port range. old is nil on create; on
// update, values already present on old are not re-checked.
func validateServiceAllocation(svc, old *corev1.Service, opts ServiceOptions) field.ErrorList {
	spec := &svc.Spec
	if spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	var errs field.ErrorList
	specPath := field.NewPath("spec")

	headlessSelectorless := spec.ClusterIP == corev1.ClusterIPNone && len(spec.Selector) == 0
	if !headlessSelectorless {
		if p := spec.IPFamilyPolicy; p != nil && *p == corev1.IPFamilyPolicySingleStack {
			if len(spec.ClusterIPs) == 2 {
				errs = append(errs, field.Invalid(specPath.Child("ipFamilyPolicy"), *p,
					"must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified"))
			}
			if len(spec.IPFamilies) == 2 {
				errs = append(errs, field.Invalid(specPath.Child("ipFamilyPolicy"), *p,
					"must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified"))
			}
		}
	}

	if len(opts.ServiceCIDRs) > 0 && !headlessSelectorless {
		families := clusterFamilies(opts.ServiceCIDRs)
		if p := spec.IPFamilyPolicy; p != nil && *p == corev1.IPFamilyPolicyRequireDualStack && len(families) < 2 {
			errs = append(errs, field.Invalid(specPath.Child("ipFamilyPolicy"), *p,
				"this cluster is not configured for dual-stack services"))
		}
		for i, fam := range spec.IPFamilies {
			if !slices.Contains(families, fam) && supportedServiceIPFamily.Has(fam) {
				errs = append(errs, field.Invalid(specPath.Child("ipFamilies").Index(i), fam, "not configured on this cluster"))
			}
		}
		errs = append(errs, validateClusterIPsInRange(svc, old, opts.ServiceCIDRs)...)
	}

	if opts.NodePortRange.Size > 0 {
		r := opts.NodePortRange
		if spec.Type == corev1.ServiceTypeNodePort || spec.Type == corev1.ServiceTypeLoadBalancer {
			for i, p := range spec.Ports {
				if p.NodePort == 0 || r.Contains(int(p.NodePort)) || hadNodePort(old, p.NodePort) {
					continue
				}
				errs = append(errs, field.Invalid(specPath.Child("ports").Index(i).Child("nodePort"), p.NodePort,
					fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %s", r.String())))
			}
		}
		hc := spec.HealthCheckNodePort
		if needsHealthCheck(svc) && hc > 0 && !r.Contains(int(hc)) && (old == nil || old.Spec.HealthCheckNodePort != hc) {
			errs = append(errs, field.Invalid(specPath.Child("healthCheckNodePort"), hc,
				fmt.Sprintf("failed to allocate requested HealthCheck NodePort %d: provided port is not in the valid range. The range of valid ports is %s", hc, r.String())))
		}
	}
	return errs
}

func hadNodePort(old *corev1.Service, port int32) bool {
	if old == nil {
		return false
	}
	for _, p := range old.Spec.Ports {
		if p.NodePort == port {
			return true
		}
	}
	return false
}

func clusterFamilies(cidrs []*net.IPNet) []corev1.IPFamily {
	var out []corev1.IPFamily
	for _, c := range cidrs {
		fam := familyOfIP(c.IP)
		if !slices.Contains(out, fam) {
			out = append(out, fam)
		}
	}
	return out
}

func familyOfIP(ip net.IP) corev1.IPFamily {
	if ip.To4() != nil {
		return corev1.IPv4Protocol
	}
	return corev1.IPv6Protocol
}

// validateClusterIPsInRange rejects user-chosen cluster IPs that the
// allocator could never hand out. The message is the allocator's, naming
// the range, because users (and tools that probe the service CIDR by
// creating a Service with a bogus IP) read the range from it.
func validateClusterIPsInRange(svc, old *corev1.Service, cidrs []*net.IPNet) field.ErrorList {
	var errs field.ErrorList
	ipsPath := field.NewPath("spec", "clusterIPs")
	for i, s := range svc.Spec.ClusterIPs {
		if s == corev1.ClusterIPNone || s == "" {
			continue
		}
		if old != nil && slices.Contains(old.Spec.ClusterIPs, s) {
			continue
		}
		ip := netutils.ParseIPSloppy(s)
		if ip == nil {
			continue // reported by the format checks
		}
		fam := familyOfIP(ip)
		var ranges []string
		inRange := false
		for _, c := range cidrs {
			if familyOfIP(c.IP) != fam {
				continue
			}
			ranges = append(ranges, c.String())
			if allocatable(c, ip) {
				inRange = true
			}
		}
		if len(ranges) == 0 || inRange {
			continue // an unserved family is reported against ipFamilies
		}
		errs = append(errs, field.Invalid(ipsPath.Index(i), s,
			fmt.Sprintf("failed to allocate IP %s: the provided IP (%s) is not in the valid range. The range of valid IPs is %s",
				s, s, strings.Join(ranges, ","))))
	}
	return errs
}

// allocatable reports whether ip can be a cluster IP from cidr: inside it,
// and (like upstream's allocator) neither the network address nor, for IPv4,
// the broadcast address.
func allocatable(cidr *net.IPNet, ip net.IP) bool {
	if !cidr.Contains(ip) {
		return false
	}
	if ip.Equal(cidr.IP.Mask(cidr.Mask)) {
		return false
	}
	if v4 := ip.To4(); v4 != nil {
		ones, bits := cidr.Mask.Size()
		if bits-ones >= 2 {
			bcast := make(net.IP, 4)
			base := cidr.IP.To4()
			for k := range bcast {
				bcast[k] = base[k] | ^cidr.Mask[len(cidr.Mask)-4+k]
			}
			if v4.Equal(bcast) {
				return false
			}
		}
	}
	return true
}

// validateUpgradeDowngradeClusterIPs: the primary cluster IP never changes
// once set; a secondary may be added, or released by going SingleStack.
func validateUpgradeDowngradeClusterIPs(oldSvc, svc *corev1.Service) field.ErrorList {
	if svc.Spec.Type == corev1.ServiceTypeExternalName || oldSvc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	if isHeadlessService(oldSvc) && isHeadlessService(svc) {
		return nil
	}
	var errs field.ErrorList
	ipsPath := field.NewPath("spec", "clusterIPs")
	oldIPs, newIPs := oldSvc.Spec.ClusterIPs, svc.Spec.ClusterIPs
	switch {
	case len(oldIPs) == len(newIPs):
		for i, ip := range oldIPs {
			if ip != newIPs[i] {
				errs = append(errs, field.Invalid(ipsPath.Index(i), newIPs, "may not change once set"))
			}
		}
	case len(oldIPs) > len(newIPs):
		if len(newIPs) == 0 {
			errs = append(errs, field.Invalid(ipsPath.Index(0), newIPs, "primary clusterIP can not be unset"))
		}
		if len(newIPs) > 0 && newIPs[0] != oldIPs[0] {
			errs = append(errs, field.Invalid(ipsPath.Index(0), newIPs, "may not change once set"))
		}
		if len(newIPs) == 1 {
			if p := svc.Spec.IPFamilyPolicy; p == nil || *p != corev1.IPFamilyPolicySingleStack {
				errs = append(errs, field.Invalid(field.NewPath("spec", "ipFamilyPolicy"), svc.Spec.IPFamilyPolicy,
					"must be set to 'SingleStack' when releasing the secondary clusterIP"))
			}
		}
	default:
		if len(oldIPs) > 0 && newIPs[0] != oldIPs[0] {
			errs = append(errs, field.Invalid(ipsPath.Index(0), newIPs, "may not change once set"))
		}
	}
	return errs
}

// validateUpgradeDowngradeIPFamilies mirrors the clusterIPs rule for
// ipFamilies; headless Services may change families freely.
func validateUpgradeDowngradeIPFamilies(oldSvc, svc *corev1.Service) field.ErrorList {
	if svc.Spec.Type == corev1.ServiceTypeExternalName || oldSvc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	if isHeadlessService(oldSvc) || isHeadlessService(svc) {
		return nil
	}
	var errs field.ErrorList
	famPath := field.NewPath("spec", "ipFamilies")
	oldF, newF := oldSvc.Spec.IPFamilies, svc.Spec.IPFamilies
	switch {
	case len(oldF) == len(newF):
		for i := range oldF {
			if oldF[i] != newF[i] {
				errs = append(errs, field.Invalid(famPath.Index(0), newF, "may not change once set"))
			}
		}
	case len(oldF) > len(newF):
		if len(svc.Spec.ClusterIPs) == 0 {
			errs = append(errs, field.Invalid(famPath.Index(0), newF, "primary ipFamily can not be unset"))
		}
		if len(newF) > 0 && newF[0] != oldF[0] {
			errs = append(errs, field.Invalid(famPath.Index(0), svc.Spec.ClusterIPs, "may not change once set"))
		}
		if len(newF) == 1 {
			if p := svc.Spec.IPFamilyPolicy; p == nil || *p != corev1.IPFamilyPolicySingleStack {
				errs = append(errs, field.Invalid(field.NewPath("spec", "ipFamilyPolicy"), svc.Spec.IPFamilyPolicy,
					"must be set to 'SingleStack' when releasing the secondary ipFamily"))
			}
		}
	default:
		if len(oldF) > 0 && len(newF) > 0 && newF[0] != oldF[0] {
			errs = append(errs, field.Invalid(famPath.Index(0), svc.Spec.ClusterIPs, "may not change once set"))
		}
	}
	return errs
}

func validateLoadBalancerClassUpdate(oldSvc, svc *corev1.Service) field.ErrorList {
	if oldSvc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return nil
	}
	o, n := oldSvc.Spec.LoadBalancerClass, svc.Spec.LoadBalancerClass
	if (o == nil) != (n == nil) || (o != nil && *o != *n) {
		return field.ErrorList{field.Invalid(field.NewPath("spec", "loadBalancerClass"), n, "may not change once set")}
	}
	return nil
}
