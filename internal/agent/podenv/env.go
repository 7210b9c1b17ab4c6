package podenv

import (
	"fmt"
	"math"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Sources reads the ConfigMaps and Secrets a container's environment refers
// to. A missing object must be reported with an error for which
// apierrors.IsNotFound is true (as the kubelet's managers do: `configmap "x"
// not found`), so optional references can be told apart from failures.
type Sources interface {
	ConfigMap(ns, name string) (*v1.ConfigMap, error)
	Secret(ns, name string) (*v1.Secret, error)
}

// ContainerEnv resolves the environment of container c of pod as "K=V"
// entries, the way the kubelet does before it creates the container:
//
//   - envFrom sources first (ConfigMaps, Secrets, with prefix); keys that
//     cannot be environment variable names (empty, containing '=' or
//     non-printable characters) are skipped;
//   - then env, which overrides envFrom; a literal value has $(VAR) expanded
//     against the variables defined so far and then the service variables;
//     valueFrom reads the downward API, resources, ConfigMap and Secret keys;
//   - then serviceEnv, for every name not set by the container itself.
//
// The order is that of first definition (envFrom keys sorted within each
// source), then serviceEnv's order, so the result is deterministic. alloc is
// the node's allocatable, used by resourceFieldRef for unset limits.
//
// The returned errors read like the kubelet's CreateContainerConfigError
// messages; lookup errors from src are returned unchanged.
func ContainerEnv(pod *v1.Pod, c *v1.Container, serviceEnv []v1.EnvVar, src Sources, podIP, hostIP string, podIPs []string, alloc v1.ResourceList) ([]string, error) {
	r := &resolver{pod: pod, src: src, configMaps: map[string]*v1.ConfigMap{}, secrets: map[string]*v1.Secret{}}
	env := newOrderedEnv()

	for _, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			cm, err := r.configMap(from.ConfigMapRef.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && isTrue(from.ConfigMapRef.Optional) {
					continue
				}
				return nil, err
			}
			data = cm.Data
		case from.SecretRef != nil:
			s, err := r.secret(from.SecretRef.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && isTrue(from.SecretRef.Optional) {
					continue
				}
				return nil, err
			}
			data = make(map[string]string, len(s.Data)+len(s.StringData))
			for k, v := range s.StringData {
				data[k] = v
			}
			for k, v := range s.Data {
				data[k] = string(v)
			}
		default:
			continue
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			name := from.Prefix + k
			if !validEnvName(name) {
				continue
			}
			env.set(name, data[k])
		}
	}

	svc := make(map[string]string, len(serviceEnv))
	for _, e := range serviceEnv {
		svc[e.Name] = e.Value
	}
	lookup := func(name string) (string, bool) {
		if v, ok := env.values[name]; ok {
			return v, true
		}
		v, ok := svc[name]
		return v, ok
	}

	if len(podIPs) > 0 {
		podIP = podIPs[0]
	} else if podIP != "" {
		podIPs = []string{podIP}
	}

	for _, e := range c.Env {
		val := e.Value
		switch {
		case val != "":
			val = expand(val, lookup)
		case e.ValueFrom == nil:
		case e.ValueFrom.FieldRef != nil:
			v, err := fieldValue(pod, e.ValueFrom.FieldRef.FieldPath, podIP, hostIP, podIPs)
			if err != nil {
				return nil, err
			}
			val = v
		case e.ValueFrom.ResourceFieldRef != nil:
			v, err := resourceValue(pod, c, e.ValueFrom.ResourceFieldRef, alloc)
			if err != nil {
				return nil, err
			}
			val = v
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			optional := isTrue(ref.Optional)
			cm, err := r.configMap(ref.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && optional {
					continue
				}
				return nil, err
			}
			v, ok := cm.Data[ref.Key]
			if !ok {
				if optional {
					continue
				}
				return nil, fmt.Errorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, pod.Namespace, ref.Name)
			}
			val = v
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			optional := isTrue(ref.Optional)
			s, err := r.secret(ref.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && optional {
					continue
				}
				return nil, err
			}
			v, ok := s.Data[ref.Key]
			if !ok {
				sv, sok := s.StringData[ref.Key]
				if !sok {
					if optional {
						continue
					}
					return nil, fmt.Errorf("couldn't find key %s in Secret %s/%s", ref.Key, pod.Namespace, ref.Name)
				}
				v = []byte(sv)
			}
			val = string(v)
		}
		env.set(e.Name, val)
	}

	out := make([]string, 0, len(env.order)+len(serviceEnv))
	for _, k := range env.order {
		out = append(out, k+"="+env.values[k])
	}
	seen := map[string]bool{}
	for _, e := range serviceEnv {
		if _, own := env.values[e.Name]; own || seen[e.Name] {
			continue
		}
		seen[e.Name] = true
		out = append(out, e.Name+"="+e.Value)
	}
	return out, nil
}

type orderedEnv struct {
	order  []string
	values map[string]string
}

func newOrderedEnv() *orderedEnv { return &orderedEnv{values: map[string]string{}} }

func (e *orderedEnv) set(k, v string) {
	if _, ok := e.values[k]; !ok {
		e.order = append(e.order, k)
	}
	e.values[k] = v
}

// resolver fetches each referenced object once per container, as the
// kubelet's per-call caches do, so one container sees one version of it.
type resolver struct {
	pod        *v1.Pod
	src        Sources
	configMaps map[string]*v1.ConfigMap
	secrets    map[string]*v1.Secret
}

func (r *resolver) configMap(name string) (*v1.ConfigMap, error) {
	if cm, ok := r.configMaps[name]; ok {
		return cm, nil
	}
	if r.src == nil {
		return nil, fmt.Errorf("couldn't get configMap %s/%s, no source defined", r.pod.Namespace, name)
	}
	cm, err := r.src.ConfigMap(r.pod.Namespace, name)
	if err != nil {
		return nil, err
	}
	r.configMaps[name] = cm
	return cm, nil
}

func (r *resolver) secret(name string) (*v1.Secret, error) {
	if s, ok := r.secrets[name]; ok {
		return s, nil
	}
	if r.src == nil {
		return nil, fmt.Errorf("couldn't get secret %s/%s, no source defined", r.pod.Namespace, name)
	}
	s, err := r.src.Secret(r.pod.Namespace, name)
	if err != nil {
		return nil, err
	}
	r.secrets[name] = s
	return s, nil
}

func isTrue(b *bool) bool { return b != nil && *b }

// validEnvName accepts what the API accepts for env names with relaxed
// validation: printable ASCII other than '='. Anything else could not be
// written as K=V and is dropped, as older kubelets dropped invalid keys.
func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e || s[i] == '=' {
			return false
		}
	}
	return true
}

// fieldValue resolves a downward API fieldRef for an environment variable.
func fieldValue(pod *v1.Pod, path, podIP, hostIP string, podIPs []string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		return podIP, nil
	case "status.podIPs":
		return strings.Join(podIPs, ","), nil
	case "status.hostIP", "status.hostIPs":
		// The agent runs single-stack: the node has one address.
		return hostIP, nil
	}
	if base, key, ok := subscript(path); ok {
		switch base {
		case "metadata.labels":
			return pod.Labels[key], nil
		case "metadata.annotations":
			return pod.Annotations[key], nil
		}
	}
	return "", fmt.Errorf("unsupported fieldPath: %s", path)
}

// subscript splits "metadata.labels['key']" into its base and key.
func subscript(path string) (string, string, bool) {
	if !strings.HasSuffix(path, "']") {
		return "", "", false
	}
	i := strings.Index(path, "['")
	if i < 0 {
		return "", "", false
	}
	return path[:i], path[i+2 : len(path)-2], true
}

// formatMap renders a map as the downward API does: sorted key="value" lines.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	return b.String()
}

// resourceValue resolves a resourceFieldRef. An unset limit reads as the
// node's allocatable, which is the effective ceiling for the container.
func resourceValue(pod *v1.Pod, c *v1.Container, ref *v1.ResourceFieldSelector, alloc v1.ResourceList) (string, error) {
	target := c
	if ref.ContainerName != "" {
		target = FindContainer(pod, ref.ContainerName)
		if target == nil {
			return "", fmt.Errorf("container %s not found", ref.ContainerName)
		}
	}
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") {
		return "", fmt.Errorf("unsupported container resource : %v", ref.Resource)
	}
	rn := v1.ResourceName(name)
	switch {
	case rn == v1.ResourceCPU, rn == v1.ResourceMemory, rn == v1.ResourceEphemeralStorage,
		strings.HasPrefix(name, v1.ResourceHugePagesPrefix):
	default:
		return "", fmt.Errorf("unsupported container resource : %v", ref.Resource)
	}
	var q resource.Quantity
	if kind == "limits" {
		v, ok := target.Resources.Limits[rn]
		if !ok {
			v = alloc[rn]
		}
		q = v
	} else {
		q = target.Resources.Requests[rn]
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if rn == v1.ResourceCPU {
		return fmt.Sprint(int64(math.Ceil(float64(q.MilliValue()) / float64(divisor.MilliValue())))), nil
	}
	return fmt.Sprint(int64(math.Ceil(float64(q.Value()) / float64(divisor.Value())))), nil
}

// FindContainer returns the container or init container of pod named
// name, or nil.
func FindContainer(pod *v1.Pod, name string) *v1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}
