package service

import (
	"context"
	"fmt"
	"net"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/portal-net/portal/internal/allocator"
	"github.com/portal-net/portal/internal/api/core"
)

// IPAllocator hands out ClusterIPs.
type IPAllocator interface {
	Allocate(ctx context.Context, owner allocator.Owner, ip net.IP) error
	AllocateNext(ctx context.Context, owner allocator.Owner) (net.IP, error)
	Release(ctx context.Context, ip net.IP) error
	CIDR() *net.IPNet
}

// PortAllocator hands out NodePorts and healthCheckNodePorts.
type PortAllocator interface {
	Allocate(ctx context.Context, owner allocator.Owner, port int) error
	AllocateNext(ctx context.Context, owner allocator.Owner) (int, error)
	Release(ctx context.Context, port int) error
}

// Allocators bundles what a service needs.
type Allocators struct {
	IPs   IPAllocator
	Ports PortAllocator
}

// needsClusterIP: every type but ExternalName, unless headless.
func needsClusterIP(s *corev1.ServiceSpec) bool {
	return s.Type != corev1.ServiceTypeExternalName && s.ClusterIP != corev1.ClusterIPNone
}

func needsNodePorts(s *corev1.ServiceSpec) bool {
	switch s.Type {
	case corev1.ServiceTypeNodePort:
		return true
	case corev1.ServiceTypeLoadBalancer:
		return s.AllocateLoadBalancerNodePorts == nil || *s.AllocateLoadBalancerNodePorts
	}
	return false
}

func needsHealthCheckPort(s *corev1.ServiceSpec) bool {
	return s.Type == corev1.ServiceTypeLoadBalancer && s.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}

// holdings are the allocations a service spec holds.
type holdings struct {
	ip    net.IP
	ports map[int]bool // nodePorts and healthCheckNodePort
}

func held(s *corev1.ServiceSpec) holdings {
	h := holdings{ports: map[int]bool{}}
	if needsClusterIP(s) {
		h.ip = net.ParseIP(s.ClusterIP)
	}
	for _, p := range s.Ports {
		if p.NodePort != 0 {
			h.ports[int(p.NodePort)] = true
		}
	}
	if s.HealthCheckNodePort != 0 {
		h.ports[int(s.HealthCheckNodePort)] = true
	}
	return h
}

// txn records what one request allocated, so a failed request gives it back.
type txn struct {
	a     *Allocators
	ips   []net.IP
	ports []int
}

func (t *txn) revert(ctx context.Context) {
	for _, ip := range t.ips {
		_ = t.a.IPs.Release(ctx, ip)
	}
	for _, p := range t.ports {
		_ = t.a.Ports.Release(ctx, p)
	}
	t.ips, t.ports = nil, nil
}

// allocate fills in and reserves what spec needs beyond what it already
// holds (old; nil on create). On error everything taken is given back and
// the error is a field error list.
func (a *Allocators) allocate(ctx context.Context, owner allocator.Owner, spec *corev1.ServiceSpec, old *holdings, dryRun bool) (*txn, field.ErrorList) {
	t := &txn{a: a}
	var errs field.ErrorList
	specPath := field.NewPath("spec")

	if needsClusterIP(spec) {
		if spec.ClusterIP == "" && len(spec.ClusterIPs) > 0 {
			spec.ClusterIP = spec.ClusterIPs[0]
		}
		switch {
		case spec.ClusterIP == "":
			if dryRun {
				break
			}
			ip, err := a.IPs.AllocateNext(ctx, owner)
			if err != nil {
				errs = append(errs, field.InternalError(specPath.Child("clusterIPs").Index(0), fmt.Errorf("failed to allocate a serviceIP: %w", err)))
				break
			}
			t.ips = append(t.ips, ip)
			spec.ClusterIP, spec.ClusterIPs = ip.String(), []string{ip.String()}
		case old != nil && old.ip != nil && old.ip.Equal(net.ParseIP(spec.ClusterIP)):
			// Already ours.
		default:
			ip := net.ParseIP(spec.ClusterIP)
			if ip == nil {
				break // validation reports it
			}
			if err := a.checkOrAllocateIP(ctx, owner, ip, dryRun); err != nil {
				errs = append(errs, field.Invalid(specPath.Child("clusterIPs").Index(0), spec.ClusterIPs,
					fmt.Sprintf("failed to allocate IP %s: %s", ip, err.Error())))
				break
			}
			if !dryRun {
				t.ips = append(t.ips, ip)
			}
		}
		if len(spec.ClusterIPs) == 0 && spec.ClusterIP != "" {
			spec.ClusterIPs = []string{spec.ClusterIP}
		}
	}

	taken := map[int]bool{} // ports this service already uses in this request
	if old != nil {
		for p := range old.ports {
			taken[p] = false // held before; usable again without allocating
		}
	}
	port := func(path *field.Path, want int32) (int32, *field.Error) {
		if want != 0 {
			if _, mine := taken[int(want)]; mine {
				taken[int(want)] = true
				return want, nil
			}
			if dryRun {
				return want, nil
			}
			if err := a.Ports.Allocate(ctx, owner, int(want)); err != nil {
				return 0, field.Invalid(path, want, err.Error())
			}
			t.ports = append(t.ports, int(want))
			taken[int(want)] = true
			return want, nil
		}
		if dryRun {
			return 0, nil
		}
		p, err := a.Ports.AllocateNext(ctx, owner)
		if err != nil {
			return 0, field.InternalError(path, fmt.Errorf("failed to allocate a nodePort: %w", err))
		}
		t.ports = append(t.ports, p)
		taken[p] = true
		return int32(p), nil
	}
	if needsNodePorts(spec) {
		for i := range spec.Ports {
			p, ferr := port(specPath.Child("ports").Index(i).Child("nodePort"), spec.Ports[i].NodePort)
			if ferr != nil {
				errs = append(errs, ferr)
				continue
			}
			spec.Ports[i].NodePort = p
		}
	}
	if needsHealthCheckPort(spec) {
		p, ferr := port(specPath.Child("healthCheckNodePort"), spec.HealthCheckNodePort)
		if ferr != nil {
			errs = append(errs, ferr)
		} else {
			spec.HealthCheckNodePort = p
		}
	}
	if len(errs) > 0 {
		t.revert(ctx)
		return nil, errs
	}
	return t, nil
}

func (a *Allocators) checkOrAllocateIP(ctx context.Context, owner allocator.Owner, ip net.IP, dryRun bool) error {
	if !a.IPs.CIDR().Contains(ip) {
		return fmt.Errorf("the provided IP (%s) is not in the valid range. The range of valid IPs is %s", ip, a.IPs.CIDR())
	}
	if dryRun {
		return nil
	}
	return a.IPs.Allocate(ctx, owner, ip)
}

// release gives back everything in h.
func (a *Allocators) release(ctx context.Context, h holdings) {
	if h.ip != nil {
		_ = a.IPs.Release(ctx, h.ip)
	}
	for p := range h.ports {
		_ = a.Ports.Release(ctx, p)
	}
}

// releaseDropped gives back what old held and new no longer does.
func (a *Allocators) releaseDropped(ctx context.Context, old, new holdings) {
	if old.ip != nil && (new.ip == nil || !new.ip.Equal(old.ip)) {
		_ = a.IPs.Release(ctx, old.ip)
	}
	for p := range old.ports {
		if !new.ports[p] {
			_ = a.Ports.Release(ctx, p)
		}
	}
}

// keepAllocated copies allocated values the user did not restate from the
// stored service: a re-applied manifest without clusterIP or nodePort must
// keep them, as in Kubernetes.
func keepAllocated(svc, old *core.Service) {
	n, o := &svc.Spec.ServiceSpec, &old.Spec.ServiceSpec
	if needsClusterIP(n) && needsClusterIP(o) && n.ClusterIP == "" && len(n.ClusterIPs) == 0 {
		n.ClusterIP = o.ClusterIP
		n.ClusterIPs = append([]string(nil), o.ClusterIPs...)
	}
	if needsNodePorts(n) && needsNodePorts(o) {
		for i := range n.Ports {
			if n.Ports[i].NodePort != 0 {
				continue
			}
			for _, op := range o.Ports {
				if op.Port == n.Ports[i].Port && op.Protocol == n.Ports[i].Protocol {
					n.Ports[i].NodePort = op.NodePort
					break
				}
			}
		}
	}
	if needsHealthCheckPort(n) && needsHealthCheckPort(o) && n.HealthCheckNodePort == 0 {
		n.HealthCheckNodePort = o.HealthCheckNodePort
	}
}
