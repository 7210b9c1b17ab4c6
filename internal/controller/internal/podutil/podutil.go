package podutil

import (
	"fmt"
	"net/netip"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Included reports whether pod may back a Service at all. Terminal pods never
// come back, and pods without an address cannot be reached. Terminating pods
// are only wanted by callers that publish a terminating condition (slices) or
// that were told to publish everything (publishNotReadyAddresses).
func Included(pod *v1.Pod, includeTerminating bool) bool {
	if pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
		return false
	}
	if pod.Status.PodIP == "" && len(pod.Status.PodIPs) == 0 {
		return false
	}
	if !includeTerminating && pod.DeletionTimestamp != nil {
		return false
	}
	return true
}

// Ready reports the pod's Ready condition.
func Ready(pod *v1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

// IPv4 returns the pod's IPv4 address, or "" when it has none. PodIPs is
// authoritative when present; PodIP covers writers that set only that field.
func IPv4(pod *v1.Pod) string {
	candidates := make([]string, 0, len(pod.Status.PodIPs)+1)
	for _, ip := range pod.Status.PodIPs {
		candidates = append(candidates, ip.IP)
	}
	candidates = append(candidates, pod.Status.PodIP)
	for _, c := range candidates {
		if a, err := netip.ParseAddr(c); err == nil && a.Is4() {
			return a.String()
		}
	}
	return ""
}

// FindPort resolves a service port's targetPort against one pod: a number is
// used as is, a name must match one of the pod's container ports with the
// same protocol. Pods of different versions may therefore resolve the same
// service port to different numbers.
func FindPort(pod *v1.Pod, sp *v1.ServicePort) (int32, error) {
	target := sp.TargetPort
	switch target.Type {
	case intstr.String:
		name := target.StrVal
		if name == "" {
			return sp.Port, nil
		}
		for _, c := range pod.Spec.Containers {
			for _, p := range c.Ports {
				if p.Name == name && protocolOf(p.Protocol) == protocolOf(sp.Protocol) {
					return p.ContainerPort, nil
				}
			}
		}
		return 0, fmt.Errorf("pod %s/%s has no container port named %q", pod.Namespace, pod.Name, name)
	default:
		if target.IntVal == 0 {
			// An unset targetPort defaults to the service port.
			return sp.Port, nil
		}
		return target.IntVal, nil
	}
}

func protocolOf(p v1.Protocol) v1.Protocol {
	if p == "" {
		return v1.ProtocolTCP
	}
	return p
}

// Protocol returns the port's protocol with the API default applied.
func Protocol(p v1.Protocol) v1.Protocol { return protocolOf(p) }

// ShouldSetHostname reports whether the pod's own hostname is published for
// the service: only when the pod explicitly joined the service's subdomain,
// which is what makes <hostname>.<service> resolvable in DNS.
func ShouldSetHostname(pod *v1.Pod, svc *v1.Service) bool {
	return pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name && pod.Namespace == svc.Namespace
}

// ServesSelector reports whether the controllers derive endpoints for svc
// from pods: ExternalName services have no endpoints, and selector-less
// services have user-managed ones.
func ServesSelector(svc *v1.Service) bool {
	return svc.Spec.Type != v1.ServiceTypeExternalName && svc.Spec.Selector != nil
}
