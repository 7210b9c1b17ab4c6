package podenv

import (
	"net"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// masterService is the service whose variables every pod gets, whatever its
// namespace and enableServiceLinks: in-cluster clients find the API server
// through KUBERNETES_SERVICE_HOST/PORT.
const masterService = "kubernetes"

// Services selects, from all services the agent knows, those whose link
// variables a pod in podNamespace receives: the kubernetes service of the
// default namespace always, and the services of the pod's own namespace when
// enableServiceLinks is true. A service of the pod's namespace shadows a
// same-named one from default. Services without a cluster IP (headless,
// ExternalName) are left out. The result is sorted by name.
func Services(all []*v1.Service, podNamespace string, enableServiceLinks bool) []*v1.Service {
	byName := map[string]*v1.Service{}
	for _, svc := range all {
		if svc == nil || !hasClusterIP(svc) {
			continue
		}
		switch {
		case svc.Namespace == podNamespace && enableServiceLinks:
			byName[svc.Name] = svc
		case svc.Namespace == metav1.NamespaceDefault && svc.Name == masterService:
			// The pod's own namespace wins, whichever order they come in.
			if _, ok := byName[svc.Name]; !ok {
				byName[svc.Name] = svc
			}
		}
	}
	out := make([]*v1.Service, 0, len(byName))
	for _, svc := range byName {
		out = append(out, svc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func hasClusterIP(svc *v1.Service) bool {
	if svc.Spec.Type == v1.ServiceTypeExternalName {
		return false
	}
	ip := svc.Spec.ClusterIP
	return ip != "" && ip != v1.ClusterIPNone
}

// ServiceEnv returns the link variables for services, in the form the
// kubelet (and Docker links before it) define them:
//
//	<NAME>_SERVICE_HOST, <NAME>_SERVICE_PORT, <NAME>_SERVICE_PORT_<PORTNAME>,
//	<NAME>_PORT, <NAME>_PORT_<port>_<PROTO>{,_PROTO,_PORT,_ADDR}
//
// Services are taken in name order; headless, ExternalName and port-less
// services are skipped.
func ServiceEnv(services []*v1.Service) []v1.EnvVar {
	sorted := make([]*v1.Service, 0, len(services))
	for _, svc := range services {
		if svc != nil && hasClusterIP(svc) && len(svc.Spec.Ports) > 0 {
			sorted = append(sorted, svc)
		}
	}
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })

	var out []v1.EnvVar
	for _, svc := range sorted {
		prefix := envName(svc.Name)
		ip := svc.Spec.ClusterIP
		out = append(out,
			v1.EnvVar{Name: prefix + "_SERVICE_HOST", Value: ip},
			v1.EnvVar{Name: prefix + "_SERVICE_PORT", Value: strconv.Itoa(int(svc.Spec.Ports[0].Port))},
		)
		for _, p := range svc.Spec.Ports {
			if p.Name != "" {
				out = append(out, v1.EnvVar{Name: prefix + "_SERVICE_PORT_" + envName(p.Name), Value: strconv.Itoa(int(p.Port))})
			}
		}
		out = append(out, linkEnv(prefix, ip, svc.Spec.Ports)...)
	}
	return out
}

// linkEnv builds the Docker-link-compatible variables; Docker gives the first
// port the bare <NAME>_PORT form.
func linkEnv(prefix, ip string, ports []v1.ServicePort) []v1.EnvVar {
	var out []v1.EnvVar
	for i, p := range ports {
		proto := string(p.Protocol)
		if proto == "" {
			proto = string(v1.ProtocolTCP)
		}
		lower := strings.ToLower(proto)
		port := strconv.Itoa(int(p.Port))
		url := lower + "://" + net.JoinHostPort(ip, port)
		if i == 0 {
			out = append(out, v1.EnvVar{Name: prefix + "_PORT", Value: url})
		}
		pp := prefix + "_PORT_" + port + "_" + strings.ToUpper(proto)
		out = append(out,
			v1.EnvVar{Name: pp, Value: url},
			v1.EnvVar{Name: pp + "_PROTO", Value: lower},
			v1.EnvVar{Name: pp + "_PORT", Value: port},
			v1.EnvVar{Name: pp + "_ADDR", Value: ip},
		)
	}
	return out
}

func envName(s string) string {
	return strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
}
