package apiserver

import (
	"context"
	"fmt"
	"net"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/portal-net/portal/internal/allocator"
	"github.com/portal-net/portal/internal/registry/service"
)

// serviceAllocation owns the ClusterIP and NodePort allocators of this
// server and their repair.
type serviceAllocation struct {
	allocs *allocator.Allocators
	client func() (kubernetes.Interface, error)
	// minAge protects allocations made by creates still in flight (on
	// this or another server) from being released by a repair pass.
	minAge time.Duration
}

func newServiceAllocation(ctx context.Context, etcd *clientv3.Client, prefix string, cidr *net.IPNet, portBase, portSize int) (*serviceAllocation, error) {
	ipr, err := allocator.NewIPRange(cidr)
	if err != nil {
		return nil, err
	}
	pr, err := allocator.NewPortRange(portBase, portSize)
	if err != nil {
		return nil, err
	}
	store := allocator.NewEtcdStore(etcd)
	a := &allocator.Allocators{
		ClusterIPs: []*allocator.ClusterIPAllocator{allocator.NewClusterIPAllocator(store, prefix, ipr, allocator.Options{})},
		NodePorts:  allocator.NewPortAllocator(store, prefix, pr, allocator.Options{}),
	}
	go a.Run(ctx)
	return &serviceAllocation{allocs: a}, nil
}

func (s *serviceAllocation) allocators() *service.Allocators {
	return &service.Allocators{IPs: s.allocs.ClusterIPs[0], Ports: s.allocs.NodePorts}
}

// repair makes the allocations agree with the stored services.
func (s *serviceAllocation) repairWith(ctx context.Context, c kubernetes.Interface) error {
	list, err := c.CoreV1().Services("").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return fmt.Errorf("listing services: %w", err)
	}
	claims := make([]allocator.Claim, 0, len(list.Items))
	for i := range list.Items {
		claims = append(claims, claimOf(&list.Items[i]))
	}
	sum, err := s.allocs.Repair(ctx, claims, s.minAge)
	if err != nil {
		return err
	}
	for _, c := range sum.Conflicts {
		klog.InfoS("Allocation conflict repair cannot fix", "detail", c)
	}
	klog.V(2).InfoS("Allocation repair done", "summary", sum.String())
	return nil
}

func claimOf(svc *corev1.Service) allocator.Claim {
	c := allocator.Claim{Owner: allocator.Owner{Namespace: svc.Namespace, Name: svc.Name}}
	if svc.Spec.Type != corev1.ServiceTypeExternalName {
		for _, ip := range svc.Spec.ClusterIPs {
			if p := net.ParseIP(ip); p != nil {
				c.IPs = append(c.IPs, p)
			}
		}
		if len(c.IPs) == 0 {
			if p := net.ParseIP(svc.Spec.ClusterIP); p != nil {
				c.IPs = append(c.IPs, p)
			}
		}
	}
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 {
			c.Ports = append(c.Ports, int(p.NodePort))
		}
	}
	if svc.Spec.HealthCheckNodePort != 0 {
		c.Ports = append(c.Ports, int(svc.Spec.HealthCheckNodePort))
	}
	return c
}

func (s *serviceAllocation) repair(ctx context.Context) error {
	if s.client == nil {
		return fmt.Errorf("no client yet")
	}
	c, err := s.client()
	if err != nil {
		return err
	}
	return s.repairWith(ctx, c)
}

func (s *serviceAllocation) runRepairLoop(ctx context.Context, every time.Duration) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.repair(ctx); err != nil {
				klog.ErrorS(err, "Allocation repair failed")
			}
		}
	}
}
