package validation

import (
	"fmt"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/sets"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"
)

// ServiceOptions carries the cluster configuration that upstream's
// allocators consult. Zero values disable the corresponding checks.
type ServiceOptions struct {
	// ServiceCIDRs are the service cluster IP ranges, primary first. Their
	// families are the families the cluster serves.
	ServiceCIDRs []*net.IPNet
	// NodePortRange is the --service-node-port-range (30000-32767 by default).
	NodePortRange utilnet.PortRange
	// DeferAllocatedFields is for callers that validate before allocating:
	// it drops the Required check on healthCheckNodePort, which upstream can
	// only make because allocation runs first.
	DeferAllocatedFields bool
}

// DefaultNodePortRange is the API server's default --service-node-port-range.
var DefaultNodePortRange = utilnet.PortRange{Base: 30000, Size: 2768}

// ValidateServiceName is the name rule for Services: a DNS-1035 label,
// because the name becomes a DNS label and an environment variable prefix.
var ValidateServiceName = apimachineryvalidation.NameIsDNS1035Label

var (
	supportedSessionAffinityType = sets.New(corev1.ServiceAffinityClientIP, corev1.ServiceAffinityNone)
	supportedServiceType         = sets.New(corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort,
		corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName)
	supportedServiceInternalTrafficPolicy = sets.New(corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal)
	supportedServiceIPFamily              = sets.New(corev1.IPv4Protocol, corev1.IPv6Protocol)
	supportedServiceIPFamilyPolicy        = sets.New(corev1.IPFamilyPolicySingleStack,
		corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack)
	validExternalTrafficPolicies  = sets.New(corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal)
	supportedTrafficDistributions = []string{
		corev1.ServiceTrafficDistributionPreferClose,
		corev1.ServiceTrafficDistributionPreferSameNode,
		corev1.ServiceTrafficDistributionPreferSameZone,
	}
	supportedLoadBalancerIPMode = sets.New(corev1.LoadBalancerIPModeVIP, corev1.LoadBalancerIPModeProxy)
)

// MaxClientIPServiceAffinitySeconds is the upper bound of
// sessionAffinityConfig.clientIP.timeoutSeconds (one day).
const MaxClientIPServiceAffinitySeconds int32 = 86400

// ValidateService validates a Service on create.
func ValidateService(svc *corev1.Service, opts ServiceOptions) field.ErrorList {
	errs := validateServiceSpec(svc, opts.DeferAllocatedFields)
	errs = append(errs, validateServiceAllocation(svc, nil, opts)...)
	return errs
}

// ValidateServiceUpdate validates an update: everything ValidateService
// checks, plus the immutability of allocated values. Range checks only apply
// to values the update introduces, so that shrinking a range does not make
// existing Services unwritable.
func ValidateServiceUpdate(newSvc, oldSvc *corev1.Service, opts ServiceOptions) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(&newSvc.ObjectMeta, &oldSvc.ObjectMeta, field.NewPath("metadata"))
	errs = append(errs, validateUpgradeDowngradeClusterIPs(oldSvc, newSvc)...)
	errs = append(errs, validateUpgradeDowngradeIPFamilies(oldSvc, newSvc)...)
	errs = append(errs, validateLoadBalancerClassUpdate(oldSvc, newSvc)...)
	if needsHealthCheck(oldSvc) && needsHealthCheck(newSvc) && oldSvc.Spec.HealthCheckNodePort != newSvc.Spec.HealthCheckNodePort {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "healthCheckNodePort"), fieldImmutableErrorMsg))
	}
	errs = append(errs, validateServiceSpec(newSvc, opts.DeferAllocatedFields)...)
	errs = append(errs, validateServiceAllocation(newSvc, oldSvc, opts)...)
	return errs
}

// ValidateServiceStatusUpdate validates a write to the status subresource.
func ValidateServiceStatusUpdate(newSvc, oldSvc *corev1.Service) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(&newSvc.ObjectMeta, &oldSvc.ObjectMeta, field.NewPath("metadata"))
	errs = append(errs, ValidateLoadBalancerStatus(&newSvc.Status.LoadBalancer, field.NewPath("status", "loadBalancer"), &newSvc.Spec)...)
	return errs
}

// ValidateLoadBalancerStatus checks load-balancer ingress points. Status on
// a non-LoadBalancer Service is refused, as with upstream's default gates.
func ValidateLoadBalancerStatus(status *corev1.LoadBalancerStatus, fldPath *field.Path, spec *corev1.ServiceSpec) field.ErrorList {
	var errs field.ErrorList
	ingPath := fldPath.Child("ingress")
	if spec.Type != corev1.ServiceTypeLoadBalancer && len(status.Ingress) != 0 {
		return field.ErrorList{field.Forbidden(ingPath, "may only be used when `spec.type` is 'LoadBalancer'")}
	}
	for i, ing := range status.Ingress {
		idxPath := ingPath.Index(i)
		if ing.IP != "" {
			errs = append(errs, utilvalidation.IsValidIP(idxPath.Child("ip"), ing.IP)...)
		}
		switch {
		case ing.IPMode == nil && ing.IP != "":
			errs = append(errs, field.Required(idxPath.Child("ipMode"), "must be specified when `ip` is set"))
		case ing.IPMode != nil && ing.IP == "":
			errs = append(errs, field.Forbidden(idxPath.Child("ipMode"), "may not be specified when `ip` is not set"))
		case ing.IPMode != nil && !supportedLoadBalancerIPMode.Has(*ing.IPMode):
			errs = append(errs, field.NotSupported(idxPath.Child("ipMode"), *ing.IPMode, sets.List(supportedLoadBalancerIPMode)))
		}
		if ing.Hostname != "" {
			errs = append(errs, validateDNS1123Subdomain(ing.Hostname, idxPath.Child("hostname"))...)
			if netutils.ParseIPSloppy(ing.Hostname) != nil {
				errs = append(errs, field.Invalid(idxPath.Child("hostname"), ing.Hostname, "must be a DNS name, not an IP address"))
			}
		}
		for j, p := range ing.Ports {
			pPath := idxPath.Child("ports").Index(j)
			errs = append(errs, validatePortNum(p.Port, pPath.Child("port"))...)
			errs = append(errs, validateProtocol(p.Protocol, pPath.Child("protocol"))...)
			if p.Error != nil {
				errs = append(errs, validateQualifiedName(*p.Error, pPath.Child("error"))...)
			}
		}
	}
	return errs
}

func isHeadlessService(svc *corev1.Service) bool {
	return svc != nil && len(svc.Spec.ClusterIPs) == 1 && svc.Spec.ClusterIPs[0] == corev1.ClusterIPNone
}

func externallyAccessible(svc *corev1.Service) bool {
	switch svc.Spec.Type {
	case corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort:
		return true
	case corev1.ServiceTypeClusterIP:
		return len(svc.Spec.ExternalIPs) > 0
	}
	return false
}

func needsHealthCheck(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer &&
		svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}

// validateServiceSpec is upstream's ValidateService: it depends only on the
// object itself.
func validateServiceSpec(svc *corev1.Service, deferAllocated bool) field.ErrorList {
	metaPath := field.NewPath("metadata")
	errs := apimachineryvalidation.ValidateObjectMeta(&svc.ObjectMeta, true, ValidateServiceName, metaPath)

	hintsVal, hintsSet := svc.Annotations[corev1.DeprecatedAnnotationTopologyAwareHints]
	modeVal, modeSet := svc.Annotations[corev1.AnnotationTopologyMode]
	if hintsSet && modeSet && hintsVal != modeVal {
		errs = append(errs, field.Invalid(metaPath.Child("annotations").Key(corev1.AnnotationTopologyMode), modeVal,
			fmt.Sprintf("must match annotations[%s] when both are specified", corev1.DeprecatedAnnotationTopologyAwareHints)))
	}

	spec := &svc.Spec
	specPath := field.NewPath("spec")
	portsPath := specPath.Child("ports")
	headless := isHeadlessService(svc)

	if len(spec.Ports) == 0 && !headless && spec.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, field.Required(portsPath, ""))
	}
	switch spec.Type {
	case corev1.ServiceTypeLoadBalancer:
		if headless {
			errs = append(errs, field.Invalid(specPath.Child("clusterIPs").Index(0), spec.ClusterIPs[0], "may not be set to 'None' for LoadBalancer services"))
		}
	case corev1.ServiceTypeNodePort:
		if headless {
			errs = append(errs, field.Invalid(specPath.Child("clusterIPs").Index(0), spec.ClusterIPs[0], "may not be set to 'None' for NodePort services"))
		}
	case corev1.ServiceTypeExternalName:
		if len(spec.ClusterIPs) > 0 {
			errs = append(errs, field.Forbidden(specPath.Child("clusterIPs"), "may not be set for ExternalName services"))
		} else if spec.ClusterIP != "" {
			// Only reachable without defaulting, which would have copied
			// clusterIP into clusterIPs.
			errs = append(errs, field.Forbidden(specPath.Child("clusterIP"), "may not be set for ExternalName services"))
		}
		if len(spec.IPFamilies) > 0 {
			errs = append(errs, field.Forbidden(specPath.Child("ipFamilies"), "may not be set for ExternalName services"))
		}
		if spec.IPFamilyPolicy != nil {
			errs = append(errs, field.Forbidden(specPath.Child("ipFamilyPolicy"), "may not be set for ExternalName services"))
		}
		// A CNAME may carry a trailing dot to mark it fully qualified.
		if cname := strings.TrimSuffix(spec.ExternalName, "."); cname != "" {
			errs = append(errs, validateDNS1123Subdomain(cname, specPath.Child("externalName"))...)
		} else {
			errs = append(errs, field.Required(specPath.Child("externalName"), ""))
		}
	}

	names := sets.New[string]()
	for i := range spec.Ports {
		errs = append(errs, validateServicePort(&spec.Ports[i], len(spec.Ports) > 1, names, portsPath.Index(i))...)
	}

	if spec.Selector != nil {
		errs = append(errs, metav1validation.ValidateLabels(spec.Selector, specPath.Child("selector"))...)
	}

	switch {
	case spec.SessionAffinity == "":
		errs = append(errs, field.Required(specPath.Child("sessionAffinity"), ""))
	case !supportedSessionAffinityType.Has(spec.SessionAffinity):
		errs = append(errs, field.NotSupported(specPath.Child("sessionAffinity"), spec.SessionAffinity, sets.List(supportedSessionAffinityType)))
	case spec.SessionAffinity == corev1.ServiceAffinityClientIP:
		errs = append(errs, validateClientIPAffinityConfig(spec.SessionAffinityConfig, specPath.Child("sessionAffinityConfig"))...)
	case spec.SessionAffinity == corev1.ServiceAffinityNone && spec.SessionAffinityConfig != nil:
		errs = append(errs, field.Forbidden(specPath.Child("sessionAffinityConfig"),
			fmt.Sprintf("must not be set when session affinity is %s", corev1.ServiceAffinityNone)))
	}

	errs = append(errs, validateServiceClusterIPsRelatedFields(svc)...)

	for i, ip := range spec.ExternalIPs {
		idxPath := specPath.Child("externalIPs").Index(i)
		if ipErrs := utilvalidation.IsValidIP(idxPath, ip); len(ipErrs) != 0 {
			errs = append(errs, ipErrs...)
		} else {
			errs = append(errs, validateNonSpecialIP(ip, idxPath)...)
		}
	}

	if spec.Type == "" {
		errs = append(errs, field.Required(specPath.Child("type"), ""))
	} else if !supportedServiceType.Has(spec.Type) {
		errs = append(errs, field.NotSupported(specPath.Child("type"), spec.Type, sets.List(supportedServiceType)))
	}

	if spec.Type == corev1.ServiceTypeClusterIP {
		for i := range spec.Ports {
			if spec.Ports[i].NodePort != 0 {
				errs = append(errs, field.Forbidden(portsPath.Index(i).Child("nodePort"), "may not be used when `type` is 'ClusterIP'"))
			}
		}
	}

	type protoPort struct {
		proto corev1.Protocol
		port  int32
	}
	seenNodePorts := map[protoPort]bool{}
	for i, p := range spec.Ports {
		if p.NodePort == 0 {
			continue
		}
		key := protoPort{p.Protocol, p.NodePort}
		if seenNodePorts[key] {
			errs = append(errs, field.Duplicate(portsPath.Index(i).Child("nodePort"), p.NodePort))
		}
		seenNodePorts[key] = true
	}
	seenPorts := map[protoPort]bool{}
	for i, p := range spec.Ports {
		key := protoPort{p.Protocol, p.Port}
		if seenPorts[key] {
			errs = append(errs, field.Duplicate(portsPath.Index(i), corev1.ServicePort{Protocol: p.Protocol, Port: p.Port}))
		}
		seenPorts[key] = true
	}

	errs = append(errs, validateSourceRanges(svc)...)

	if spec.AllocateLoadBalancerNodePorts != nil && spec.Type != corev1.ServiceTypeLoadBalancer {
		errs = append(errs, field.Forbidden(specPath.Child("allocateLoadBalancerNodePorts"), "may only be used when `type` is 'LoadBalancer'"))
	}
	if spec.Type == corev1.ServiceTypeLoadBalancer && spec.AllocateLoadBalancerNodePorts == nil {
		// Upstream reports this without the "spec." prefix; kept for parity.
		errs = append(errs, field.Required(field.NewPath("allocateLoadBalancerNodePorts"), ""))
	}

	if spec.LoadBalancerClass != nil {
		lbcPath := specPath.Child("loadBalancerClass")
		if spec.Type == corev1.ServiceTypeLoadBalancer {
			errs = append(errs, validateQualifiedName(*spec.LoadBalancerClass, lbcPath)...)
		} else {
			errs = append(errs, field.Forbidden(lbcPath, "may only be used when `type` is 'LoadBalancer'"))
		}
	}

	errs = append(errs, validateExternalTrafficPolicy(svc)...)
	errs = append(errs, validateHealthCheckNodePort(svc, deferAllocated)...)

	itpPath := specPath.Child("internalTrafficPolicy")
	if spec.InternalTrafficPolicy == nil {
		// Other types are tolerated for historical reasons, as upstream does.
		switch spec.Type {
		case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
			errs = append(errs, field.Required(itpPath, ""))
		}
	} else if !supportedServiceInternalTrafficPolicy.Has(*spec.InternalTrafficPolicy) {
		errs = append(errs, field.NotSupported(itpPath, *spec.InternalTrafficPolicy, sets.List(supportedServiceInternalTrafficPolicy)))
	}

	if td := spec.TrafficDistribution; td != nil && !sets.New(supportedTrafficDistributions...).Has(*td) {
		errs = append(errs, field.NotSupported(specPath.Child("trafficDistribution"), *td, supportedTrafficDistributions))
	}
	return errs
}

func validateServicePort(sp *corev1.ServicePort, requireName bool, names sets.Set[string], fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if requireName && sp.Name == "" {
		errs = append(errs, field.Required(fldPath.Child("name"), ""))
	} else if sp.Name != "" {
		errs = append(errs, validateDNS1123Label(sp.Name, fldPath.Child("name"))...)
		if names.Has(sp.Name) {
			errs = append(errs, field.Duplicate(fldPath.Child("name"), sp.Name))
		} else {
			names.Insert(sp.Name)
		}
	}
	errs = append(errs, validatePortNum(sp.Port, fldPath.Child("port"))...)
	errs = append(errs, validateProtocol(sp.Protocol, fldPath.Child("protocol"))...)
	errs = append(errs, validatePortNumOrName(sp.TargetPort, fldPath.Child("targetPort"))...)
	if sp.AppProtocol != nil {
		errs = append(errs, validateQualifiedName(*sp.AppProtocol, fldPath.Child("appProtocol"))...)
	}
	return errs
}

func validateClientIPAffinityConfig(config *corev1.SessionAffinityConfig, fldPath *field.Path) field.ErrorList {
	msg := fmt.Sprintf("when session affinity type is %s", corev1.ServiceAffinityClientIP)
	if config == nil {
		return field.ErrorList{field.Required(fldPath, msg)}
	}
	if config.ClientIP == nil {
		return field.ErrorList{field.Required(fldPath.Child("clientIP"), msg)}
	}
	tPath := fldPath.Child("clientIP", "timeoutSeconds")
	if config.ClientIP.TimeoutSeconds == nil {
		return field.ErrorList{field.Required(tPath, msg)}
	}
	if t := *config.ClientIP.TimeoutSeconds; t <= 0 || t > MaxClientIPServiceAffinitySeconds {
		return field.ErrorList{field.Invalid(tPath, t,
			fmt.Sprintf("must be greater than 0 and less than %d", MaxClientIPServiceAffinitySeconds))}
	}
	return nil
}

func validateSourceRanges(svc *corev1.Service) field.ErrorList {
	var errs field.ErrorList
	isLB := svc.Spec.Type == corev1.ServiceTypeLoadBalancer
	if len(svc.Spec.LoadBalancerSourceRanges) > 0 {
		// Upstream's path really is capitalised here.
		fldPath := field.NewPath("spec", "LoadBalancerSourceRanges")
		if !isLB {
			errs = append(errs, field.Forbidden(fldPath, "may only be used when `type` is 'LoadBalancer'"))
		}
		for i, v := range svc.Spec.LoadBalancerSourceRanges {
			// Space padding is a historical accident of the annotation
			// format that is still tolerated.
			errs = append(errs, utilvalidation.IsValidCIDR(fldPath.Index(i), strings.TrimSpace(v))...)
		}
		return errs
	}
	val, ok := svc.Annotations[corev1.AnnotationLoadBalancerSourceRangesKey]
	if !ok {
		return nil
	}
	fldPath := field.NewPath("metadata", "annotations").Key(corev1.AnnotationLoadBalancerSourceRangesKey)
	if !isLB {
		errs = append(errs, field.Forbidden(fldPath, "may only be used when `type` is 'LoadBalancer'"))
	}
	if val = strings.TrimSpace(val); val != "" {
		for _, v := range strings.Split(val, ",") {
			errs = append(errs, utilvalidation.IsValidCIDR(fldPath, strings.TrimSpace(v))...)
		}
	}
	return errs
}

func validateExternalTrafficPolicy(svc *corev1.Service) field.ErrorList {
	var errs field.ErrorList
	specPath := field.NewPath("spec")
	etp := svc.Spec.ExternalTrafficPolicy
	if !externallyAccessible(svc) {
		if etp != "" {
			errs = append(errs, field.Invalid(specPath.Child("externalTrafficPolicy"), etp,
				"may only be set for externally-accessible services"))
		}
	} else if etp == "" {
		errs = append(errs, field.Required(specPath.Child("externalTrafficPolicy"), ""))
	} else if !validExternalTrafficPolicies.Has(etp) {
		errs = append(errs, field.NotSupported(specPath.Child("externalTrafficPolicy"), etp, sets.List(validExternalTrafficPolicies)))
	}
	return errs
}

// validateHealthCheckNodePort is split from the traffic-policy checks so the
// Required case can be deferred until after allocation.
func validateHealthCheckNodePort(svc *corev1.Service, deferAllocated bool) field.ErrorList {
	fldPath := field.NewPath("spec", "healthCheckNodePort")
	hc := svc.Spec.HealthCheckNodePort
	if !needsHealthCheck(svc) {
		if hc != 0 {
			return field.ErrorList{field.Invalid(fldPath, hc,
				"may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'")}
		}
		return nil
	}
	if hc == 0 {
		if deferAllocated {
			return nil
		}
		return field.ErrorList{field.Required(fldPath, "")}
	}
	return validatePortNum(hc, fldPath)
}

// validateServiceClusterIPsRelatedFields checks clusterIP/clusterIPs,
// ipFamilies and ipFamilyPolicy for consistency (upstream's function of the
// same name).
func validateServiceClusterIPsRelatedFields(svc *corev1.Service) field.ErrorList {
	spec := &svc.Spec
	if spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	var errs field.ErrorList
	specPath := field.NewPath("spec")
	ipsPath := specPath.Child("clusterIPs")
	famPath := specPath.Child("ipFamilies")

	if spec.ClusterIP != "" {
		if len(spec.ClusterIPs) == 0 {
			errs = append(errs, field.Required(ipsPath, ""))
		} else if spec.ClusterIPs[0] != spec.ClusterIP {
			errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "first value must match `clusterIP`"))
		}
	} else if len(spec.ClusterIPs) != 0 {
		errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "must be empty when `clusterIP` is not specified"))
	}

	seen := sets.New[corev1.IPFamily]()
	for i, fam := range spec.IPFamilies {
		if !supportedServiceIPFamily.Has(fam) {
			errs = append(errs, field.NotSupported(famPath.Index(i), fam, sets.List(supportedServiceIPFamily)))
		}
		if seen.Has(fam) {
			errs = append(errs, field.Duplicate(famPath.Index(i), fam))
		}
		seen.Insert(fam)
	}
	if p := spec.IPFamilyPolicy; p != nil && !supportedServiceIPFamilyPolicy.Has(*p) {
		errs = append(errs, field.NotSupported(specPath.Child("ipFamilyPolicy"), *p, sets.List(supportedServiceIPFamilyPolicy)))
	}

	invalidIPs := false
	for i, ip := range spec.ClusterIPs {
		if i == 0 && ip == corev1.ClusterIPNone {
			if len(spec.ClusterIPs) > 1 {
				invalidIPs = true
				errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "'None' must be the first and only value"))
			}
			continue
		}
		ipErrs := utilvalidation.IsValidIP(ipsPath.Index(i), ip)
		invalidIPs = invalidIPs || len(ipErrs) != 0
		errs = append(errs, ipErrs...)
	}
	if len(spec.ClusterIPs) > 2 {
		errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "may only hold up to 2 values"))
	}
	// Family checks on IPs that are already known to be bad would only add
	// noise.
	if invalidIPs {
		return errs
	}
	if len(spec.ClusterIPs) > 1 {
		if dual, err := netutils.IsDualStackIPStrings(spec.ClusterIPs); err != nil || !dual {
			errs = append(errs, field.Invalid(ipsPath, spec.ClusterIPs, "may specify no more than one IP for each IP family"))
		}
	}
	if !isHeadlessService(svc) {
		for i, ip := range spec.ClusterIPs {
			if i >= len(spec.IPFamilies) {
				break
			}
			isV6 := netutils.IsIPv6String(ip)
			if spec.IPFamilies[i] == corev1.IPv4Protocol && isV6 {
				errs = append(errs, field.Invalid(ipsPath.Index(i), ip, fmt.Sprintf("expected an IPv4 value as indicated by `ipFamilies[%v]`", i)))
			}
			if spec.IPFamilies[i] == corev1.IPv6Protocol && !isV6 {
				errs = append(errs, field.Invalid(ipsPath.Index(i), ip, fmt.Sprintf("expected an IPv6 value as indicated by `ipFamilies[%v]`", i)))
			}
		}
	}
	return errs
}
