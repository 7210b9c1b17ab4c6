package validation

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"
)

// Limits on EndpointSlice contents, as upstream.
const (
	MaxEndpointsPerSlice    = 1000
	MaxAddressesPerEndpoint = 100
	MaxPortsPerSlice        = 20000
	maxTopologyLabels       = 16
	maxZoneHints            = 8
	maxNodeHints            = 8
)

// ValidateEndpoints validates Endpoints (create and update alike).
func ValidateEndpoints(ep *corev1.Endpoints) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMeta(&ep.ObjectMeta, true, apimachineryvalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	subsetsPath := field.NewPath("subsets")
	for i := range ep.Subsets {
		ss := &ep.Subsets[i]
		idxPath := subsetsPath.Index(i)
		// Ports may be empty: headless Services have endpoints without ports.
		if len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0 {
			errs = append(errs, field.Required(idxPath, "must specify `addresses` or `notReadyAddresses`"))
		}
		for j := range ss.Addresses {
			errs = append(errs, validateEndpointAddress(&ss.Addresses[j], idxPath.Child("addresses").Index(j))...)
		}
		for j := range ss.NotReadyAddresses {
			errs = append(errs, validateEndpointAddress(&ss.NotReadyAddresses[j], idxPath.Child("notReadyAddresses").Index(j))...)
		}
		for j := range ss.Ports {
			errs = append(errs, validateEndpointPort(&ss.Ports[j], len(ss.Ports) > 1, idxPath.Child("ports").Index(j))...)
		}
	}
	return errs
}

// ValidateEndpointsUpdate validates an update. nodeName may change: a
// reused node IP or pod CIDR legitimately moves an address.
func ValidateEndpointsUpdate(newEp, oldEp *corev1.Endpoints) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(&newEp.ObjectMeta, &oldEp.ObjectMeta, field.NewPath("metadata"))
	return append(errs, ValidateEndpoints(newEp)...)
}

func validateEndpointAddress(a *corev1.EndpointAddress, fldPath *field.Path) field.ErrorList {
	errs := utilvalidation.IsValidIP(fldPath.Child("ip"), a.IP)
	if a.Hostname != "" {
		errs = append(errs, validateDNS1123Label(a.Hostname, fldPath.Child("hostname"))...)
	}
	if a.NodeName != nil {
		for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(*a.NodeName, false) {
			errs = append(errs, field.Invalid(fldPath.Child("nodeName"), *a.NodeName, msg))
		}
	}
	return append(errs, validateNonSpecialIP(a.IP, fldPath.Child("ip"))...)
}

func validateEndpointPort(p *corev1.EndpointPort, requireName bool, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if requireName && p.Name == "" {
		errs = append(errs, field.Required(fldPath.Child("name"), ""))
	} else if p.Name != "" {
		errs = append(errs, validateDNS1123Label(p.Name, fldPath.Child("name"))...)
	}
	errs = append(errs, validatePortNum(p.Port, fldPath.Child("port"))...)
	errs = append(errs, validateProtocol(p.Protocol, fldPath.Child("protocol"))...)
	if p.AppProtocol != nil {
		errs = append(errs, validateQualifiedName(*p.AppProtocol, fldPath.Child("appProtocol"))...)
	}
	return errs
}

var supportedAddressTypes = sets.New(discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN)

// ValidateEndpointSlice validates an EndpointSlice on create.
func ValidateEndpointSlice(es *discoveryv1.EndpointSlice) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMeta(&es.ObjectMeta, true, apimachineryvalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	atPath := field.NewPath("addressType")
	if es.AddressType == "" {
		errs = append(errs, field.Required(atPath, ""))
	} else if !supportedAddressTypes.Has(es.AddressType) {
		errs = append(errs, field.NotSupported(atPath, es.AddressType, sets.List(supportedAddressTypes)))
	}
	errs = append(errs, validateSliceEndpoints(es.Endpoints, es.AddressType, field.NewPath("endpoints"))...)
	errs = append(errs, validateSlicePorts(es.Ports, field.NewPath("ports"))...)
	return errs
}

// ValidateEndpointSliceUpdate validates an update; addressType is immutable.
func ValidateEndpointSliceUpdate(newES, oldES *discoveryv1.EndpointSlice) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(&newES.ObjectMeta, &oldES.ObjectMeta, field.NewPath("metadata"))
	errs = append(errs, ValidateEndpointSlice(newES)...)
	return append(errs, apimachineryvalidation.ValidateImmutableField(newES.AddressType, oldES.AddressType, field.NewPath("addressType"))...)
}

func validateSliceEndpoints(endpoints []discoveryv1.Endpoint, addrType discoveryv1.AddressType, fldPath *field.Path) field.ErrorList {
	if len(endpoints) > MaxEndpointsPerSlice {
		return field.ErrorList{field.TooMany(fldPath, len(endpoints), MaxEndpointsPerSlice)}
	}
	var errs field.ErrorList
	for i := range endpoints {
		ep := &endpoints[i]
		idxPath := fldPath.Index(i)
		addrPath := idxPath.Child("addresses")
		if len(ep.Addresses) == 0 {
			errs = append(errs, field.Required(addrPath, "must contain at least 1 address"))
		} else if len(ep.Addresses) > MaxAddressesPerEndpoint {
			errs = append(errs, field.TooMany(addrPath, len(ep.Addresses), MaxAddressesPerEndpoint))
		}
		for j, addr := range ep.Addresses {
			aPath := addrPath.Index(j)
			// Unknown address types were already reported; their addresses
			// are not checked, as upstream.
			switch addrType {
			case discoveryv1.AddressTypeIPv4:
				errs = append(errs, validateIPOfFamily(addr, false, aPath)...)
				errs = append(errs, validateNonSpecialIP(addr, aPath)...)
			case discoveryv1.AddressTypeIPv6:
				errs = append(errs, validateIPOfFamily(addr, true, aPath)...)
				errs = append(errs, validateNonSpecialIP(addr, aPath)...)
			case discoveryv1.AddressTypeFQDN:
				errs = append(errs, utilvalidation.IsFullyQualifiedDomainName(aPath, addr)...)
			}
		}
		if ep.NodeName != nil {
			for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(*ep.NodeName, false) {
				errs = append(errs, field.Invalid(idxPath.Child("nodeName"), *ep.NodeName, msg))
			}
		}
		if ep.Zone != nil {
			errs = append(errs, validateLabelValue(*ep.Zone, idxPath.Child("zone"))...)
		}
		topoPath := idxPath.Child("deprecatedTopology")
		if len(ep.DeprecatedTopology) > maxTopologyLabels {
			errs = append(errs, field.TooMany(topoPath, len(ep.DeprecatedTopology), maxTopologyLabels))
		}
		errs = append(errs, metav1validation.ValidateLabels(ep.DeprecatedTopology, topoPath)...)
		if ep.Hostname != nil {
			errs = append(errs, validateDNS1123Label(*ep.Hostname, idxPath.Child("hostname"))...)
		}
		if ep.Hints != nil {
			errs = append(errs, validateHints(ep.Hints, idxPath.Child("hints"))...)
		}
	}
	return errs
}

func validateIPOfFamily(addr string, v6 bool, fldPath *field.Path) field.ErrorList {
	errs := utilvalidation.IsValidIP(fldPath, addr)
	if len(errs) != 0 {
		return errs
	}
	if v6 && !netutils.IsIPv6String(addr) {
		return field.ErrorList{field.Invalid(fldPath, addr, "must be a valid IPv6 address")}
	}
	if !v6 && !netutils.IsIPv4String(addr) {
		return field.ErrorList{field.Invalid(fldPath, addr, "must be a valid IPv4 address")}
	}
	return nil
}

func validateHints(h *discoveryv1.EndpointHints, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	fzPath := fldPath.Child("forZones")
	if len(h.ForZones) > maxZoneHints {
		errs = append(errs, field.TooMany(fzPath, len(h.ForZones), maxZoneHints))
	} else {
		seen := sets.New[string]()
		for i, z := range h.ForZones {
			zPath := fzPath.Index(i).Child("name")
			if seen.Has(z.Name) {
				errs = append(errs, field.Duplicate(zPath, z.Name))
			}
			seen.Insert(z.Name)
			errs = append(errs, validateLabelValue(z.Name, zPath)...)
		}
	}
	fnPath := fldPath.Child("forNodes")
	if len(h.ForNodes) > maxNodeHints {
		errs = append(errs, field.TooMany(fnPath, len(h.ForNodes), maxNodeHints))
	} else {
		seen := sets.New[string]()
		for i, n := range h.ForNodes {
			nPath := fnPath.Index(i).Child("name")
			if seen.Has(n.Name) {
				errs = append(errs, field.Duplicate(nPath, n.Name))
			}
			seen.Insert(n.Name)
			for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(n.Name, false) {
				errs = append(errs, field.Invalid(nPath, n.Name, msg))
			}
		}
	}
	return errs
}

func validateSlicePorts(ports []discoveryv1.EndpointPort, fldPath *field.Path) field.ErrorList {
	if len(ports) > MaxPortsPerSlice {
		return field.ErrorList{field.TooMany(fldPath, len(ports), MaxPortsPerSlice)}
	}
	var errs field.ErrorList
	names := sets.New[string]()
	for i, p := range ports {
		idxPath := fldPath.Index(i)
		// Defaulting turns a nil name into ""; tolerate callers that skip it.
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		if name != "" {
			errs = append(errs, validateDNS1123Label(name, idxPath.Child("name"))...)
		}
		if names.Has(name) {
			errs = append(errs, field.Duplicate(idxPath.Child("name"), name))
		}
		names.Insert(name)
		if p.Protocol == nil {
			errs = append(errs, field.Required(idxPath.Child("protocol"), ""))
		} else if !supportedPortProtocols.Has(*p.Protocol) {
			errs = append(errs, field.NotSupported(idxPath.Child("protocol"), *p.Protocol, sets.List(supportedPortProtocols)))
		}
		if p.AppProtocol != nil {
			errs = append(errs, validateQualifiedName(*p.AppProtocol, idxPath.Child("appProtocol"))...)
		}
	}
	return errs
}
