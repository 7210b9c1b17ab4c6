package ipam

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Annotations a Service uses to steer its LoadBalancer addresses.
const (
	// AnnotationIPs requests addresses: comma-separated, at most one per
	// IP family. It takes the place of the deprecated spec.loadBalancerIP.
	AnnotationIPs = "portal.dev/lb-ips"
	// AnnotationSharingKey lets Services carrying the same value share an
	// address as long as their ports do not overlap.
	AnnotationSharingKey = "portal.dev/allow-shared-ip"
	// AnnotationPool restricts the Service to the named pool.
	AnnotationPool = "portal.dev/address-pool"
)

// ServiceKey names a Service.
type ServiceKey struct{ Namespace, Name string }

func (k ServiceKey) String() string { return k.Namespace + "/" + k.Name }

func (k ServiceKey) less(o ServiceKey) bool {
	if k.Namespace != o.Namespace {
		return k.Namespace < o.Namespace
	}
	return k.Name < o.Name
}

// Port is a port a Service exposes on its LoadBalancer address.
type Port struct {
	Protocol corev1.Protocol // empty means TCP
	Port     int32
}

func (p Port) String() string { return fmt.Sprintf("%s/%d", p.Protocol, p.Port) }

// Request is what one Service asks of the allocator.
type Request struct {
	Service         ServiceKey
	NamespaceLabels map[string]string
	ServiceLabels   map[string]string
	// Families wanted, in the order the ingress lists them: one for single
	// stack, IPv4 and IPv6 in either order for dual stack. Empty means the
	// families of Addresses, or IPv4 when none are requested.
	Families []corev1.IPFamily
	// Addresses requested, at most one per family. When set they are the
	// whole answer: Assign gives exactly these or fails.
	Addresses []netip.Addr
	// Pool, when set, is the only pool considered (also if it does not
	// auto-assign).
	Pool string
	// SharingKey, when set, lets the Service share an address with other
	// Services carrying the same key whose Ports do not overlap.
	SharingKey string
	Ports      []Port
}

// RequestFromService builds the Request of svc. nsLabels are the labels of
// its namespace.
func RequestFromService(svc *corev1.Service, nsLabels map[string]string) (Request, error) {
	req := Request{
		Service:         ServiceKey{svc.Namespace, svc.Name},
		NamespaceLabels: nsLabels,
		ServiceLabels:   svc.Labels,
		Families:        slices.Clone(svc.Spec.IPFamilies),
		Pool:            strings.TrimSpace(svc.Annotations[AnnotationPool]),
		SharingKey:      strings.TrimSpace(svc.Annotations[AnnotationSharingKey]),
	}
	for _, p := range svc.Spec.Ports {
		req.Ports = append(req.Ports, Port{Protocol: p.Protocol, Port: p.Port})
	}
	if v, ok := svc.Annotations[AnnotationIPs]; ok {
		for _, f := range strings.Split(v, ",") {
			if strings.TrimSpace(f) == "" {
				continue
			}
			a, err := parseAddr(f)
			if err != nil {
				return Request{}, &Error{kind: ErrInvalidRequest, msg: fmt.Sprintf("annotation %s of %s: %q is not an IP address", AnnotationIPs, req.Service, strings.TrimSpace(f))}
			}
			req.Addresses = append(req.Addresses, a)
		}
	}
	if s := strings.TrimSpace(svc.Spec.LoadBalancerIP); s != "" {
		a, err := parseAddr(s)
		if err != nil {
			return Request{}, &Error{kind: ErrInvalidRequest, msg: fmt.Sprintf("spec.loadBalancerIP of %s: %q is not an IP address", req.Service, s)}
		}
		switch {
		case len(req.Addresses) == 0:
			req.Addresses = []netip.Addr{a}
		case !slices.Contains(req.Addresses, a):
			return Request{}, &Error{kind: ErrInvalidRequest, msg: fmt.Sprintf("%s: spec.loadBalancerIP %s is not among the addresses of annotation %s", req.Service, a, AnnotationIPs)}
		}
	}
	return req, nil
}

func familyOf(a netip.Addr) corev1.IPFamily {
	if a.Is4() {
		return corev1.IPv4Protocol
	}
	return corev1.IPv6Protocol
}

// normalize checks req and returns a copy with defaults filled in.
func (req Request) normalize() (Request, error) {
	bad := func(format string, args ...any) (Request, error) {
		return Request{}, &Error{kind: ErrInvalidRequest, service: req.Service, msg: fmt.Sprintf("%s: ", req.Service) + fmt.Sprintf(format, args...)}
	}
	if req.Service.Namespace == "" || req.Service.Name == "" {
		return bad("service namespace and name are required")
	}
	// Copies, so a caller reusing its maps and slices cannot race with us.
	req.NamespaceLabels, req.ServiceLabels = maps.Clone(req.NamespaceLabels), maps.Clone(req.ServiceLabels)
	req.Addresses = slices.Clone(req.Addresses)
	seen := map[corev1.IPFamily]bool{}
	for i, a := range req.Addresses {
		a = a.Unmap()
		if !a.IsValid() || a.Zone() != "" {
			return bad("invalid requested address %q", a)
		}
		req.Addresses[i] = a
		if seen[familyOf(a)] {
			return bad("more than one %s address requested", familyOf(a))
		}
		seen[familyOf(a)] = true
	}
	if len(req.Families) == 0 {
		for _, a := range req.Addresses {
			req.Families = append(req.Families, familyOf(a))
		}
		if len(req.Families) == 0 {
			req.Families = []corev1.IPFamily{corev1.IPv4Protocol}
		}
	} else {
		req.Families = slices.Clone(req.Families)
		if len(req.Families) > 2 || (len(req.Families) == 2 && req.Families[0] == req.Families[1]) {
			return bad("IP families %v: want one family or one of each", req.Families)
		}
		for _, f := range req.Families {
			if f != corev1.IPv4Protocol && f != corev1.IPv6Protocol {
				return bad("unknown IP family %q", f)
			}
		}
		if len(req.Addresses) > 0 {
			want := map[corev1.IPFamily]bool{}
			for _, f := range req.Families {
				want[f] = true
			}
			for _, a := range req.Addresses {
				if !want[familyOf(a)] {
					return bad("requested address %s is %s but the service's IP families are %v", a, familyOf(a), req.Families)
				}
			}
			if len(req.Addresses) != len(req.Families) {
				return bad("requested addresses %v do not give one address for each IP family %v", req.Addresses, req.Families)
			}
		}
	}
	req.Ports = slices.Clone(req.Ports)
	for i := range req.Ports {
		if req.Ports[i].Protocol == "" {
			req.Ports[i].Protocol = corev1.ProtocolTCP
		}
	}
	return req, nil
}

// overlap returns a port both a and b use, if any.
func overlap(a, b []Port) (Port, bool) {
	for _, p := range a {
		if slices.Contains(b, p) {
			return p, true
		}
	}
	return Port{}, false
}

// shareConflict explains why a Service with req may not share an address
// with holder (holding with hreq), or returns "".
func shareConflict(req *Request, holder ServiceKey, hreq *Request) string {
	switch {
	case req.SharingKey == "" && hreq.SharingKey == "":
		return fmt.Sprintf("in use by %s", holder)
	case req.SharingKey == "":
		return fmt.Sprintf("in use by %s (which allows sharing with key %q, but %s has no %s annotation)", holder, hreq.SharingKey, req.Service, AnnotationSharingKey)
	case hreq.SharingKey == "":
		return fmt.Sprintf("in use by %s, which does not allow sharing", holder)
	case req.SharingKey != hreq.SharingKey:
		return fmt.Sprintf("in use by %s with sharing key %q, not %q", holder, hreq.SharingKey, req.SharingKey)
	}
	if p, ok := overlap(req.Ports, hreq.Ports); ok {
		return fmt.Sprintf("in use by %s with sharing key %q, and both use port %s", holder, req.SharingKey, p)
	}
	return ""
}
