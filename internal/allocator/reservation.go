package allocator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Allocators is what the Service REST layer holds: one ClusterIP allocator
// per service CIDR (primary family first) and the node port allocator.
type Allocators struct {
	ClusterIPs []*ClusterIPAllocator
	NodePorts  *PortAllocator
}

// ForFamily returns the ClusterIP allocator of family, or nil.
func (s *Allocators) ForFamily(f corev1.IPFamily) *ClusterIPAllocator {
	for _, a := range s.ClusterIPs {
		if a.r.Family() == f {
			return a
		}
	}
	return nil
}

func (s *Allocators) forIP(ip net.IP) *ClusterIPAllocator {
	fam := corev1.IPv6Protocol
	if ip.To4() != nil {
		fam = corev1.IPv4Protocol
	}
	return s.ForFamily(fam)
}

// Run keeps every allocator's local view fresh until ctx ends.
func (s *Allocators) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, a := range s.ClusterIPs {
		wg.Go(func() { a.Run(ctx) })
	}
	if s.NodePorts != nil {
		wg.Go(func() { s.NodePorts.Run(ctx) })
	}
	wg.Wait()
}

// Begin starts a Reservation for one Service. Typical use:
//
//	r := allocs.Begin(owner)
//	defer r.Revert(ctx) // no-op once committed
//	ip, err := r.AllocateNextIP(ctx, corev1.IPv4Protocol)
//	...
//	store the Service; on success r.Commit(ctx)
func (s *Allocators) Begin(o Owner) *Reservation {
	return &Reservation{s: s, owner: o}
}

// Reservation groups the allocations of one Service write so that a failure
// anywhere releases all of them, and releases of values the Service gives
// up happen only once the write is stored.
type Reservation struct {
	s     *Allocators
	owner Owner

	mu        sync.Mutex
	done      bool
	ips       []net.IP
	ports     []int
	freeIPs   []net.IP
	freePorts []int
}

var errFinished = errors.New("reservation already committed or reverted")

// AllocateIP claims ip, choosing the allocator by ip's family.
func (r *Reservation) AllocateIP(ctx context.Context, ip net.IP) error {
	if err := r.check(); err != nil {
		return err
	}
	a := r.s.forIP(ip)
	if a == nil {
		return r.noRangeFor(ip)
	}
	if err := a.Allocate(ctx, r.owner, ip); err != nil {
		return err
	}
	r.mu.Lock()
	r.ips = append(r.ips, ip)
	r.mu.Unlock()
	return nil
}

// AllocateNextIP claims a random IP of family.
func (r *Reservation) AllocateNextIP(ctx context.Context, family corev1.IPFamily) (net.IP, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	a := r.s.ForFamily(family)
	if a == nil {
		return nil, fmt.Errorf("no service CIDR configured for IP family %s", family)
	}
	ip, err := a.AllocateNext(ctx, r.owner)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.ips = append(r.ips, ip)
	r.mu.Unlock()
	return ip, nil
}

// AllocatePort claims a specific node port.
func (r *Reservation) AllocatePort(ctx context.Context, port int) error {
	if err := r.check(); err != nil {
		return err
	}
	if r.s.NodePorts == nil {
		return fmt.Errorf("no node port range configured")
	}
	if err := r.s.NodePorts.Allocate(ctx, r.owner, port); err != nil {
		return err
	}
	r.mu.Lock()
	r.ports = append(r.ports, port)
	r.mu.Unlock()
	return nil
}

// AllocateNextPort claims a random node port.
func (r *Reservation) AllocateNextPort(ctx context.Context) (int, error) {
	if err := r.check(); err != nil {
		return 0, err
	}
	if r.s.NodePorts == nil {
		return 0, fmt.Errorf("no node port range configured")
	}
	p, err := r.s.NodePorts.AllocateNext(ctx, r.owner)
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	r.ports = append(r.ports, p)
	r.mu.Unlock()
	return p, nil
}

// ReleaseIPOnCommit frees ip (if the owner still holds it) when the
// reservation commits: for an update or delete that gives the IP up, the
// release must wait until the new state is stored.
func (r *Reservation) ReleaseIPOnCommit(ip net.IP) {
	r.mu.Lock()
	r.freeIPs = append(r.freeIPs, ip)
	r.mu.Unlock()
}

// ReleasePortOnCommit is ReleaseIPOnCommit for a node port.
func (r *Reservation) ReleasePortOnCommit(port int) {
	r.mu.Lock()
	r.freePorts = append(r.freePorts, port)
	r.mu.Unlock()
}

// Allocated returns what the reservation has claimed so far.
func (r *Reservation) Allocated() (ips []net.IP, ports []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]net.IP(nil), r.ips...), append([]int(nil), r.ports...)
}

// Commit keeps the allocations and performs the deferred releases. A
// failed release only leaks a value until the next repair, so the errors
// are returned for logging, not for failing the request.
func (r *Reservation) Commit(ctx context.Context) error {
	r.mu.Lock()
	if r.done {
		r.mu.Unlock()
		return nil
	}
	r.done = true
	freeIPs, freePorts := r.freeIPs, r.freePorts
	r.mu.Unlock()
	ctx, cancel := cleanupContext(ctx)
	defer cancel()
	var errs []error
	for _, ip := range freeIPs {
		if a := r.s.forIP(ip); a != nil {
			if err := a.ReleaseIfOwner(ctx, r.owner, ip); err != nil {
				errs = append(errs, fmt.Errorf("releasing IP %s: %w", ip, err))
			}
		}
	}
	for _, p := range freePorts {
		if r.s.NodePorts != nil {
			if err := r.s.NodePorts.ReleaseIfOwner(ctx, r.owner, p); err != nil {
				errs = append(errs, fmt.Errorf("releasing port %d: %w", p, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Revert releases everything the reservation claimed and drops the
// deferred releases. It is a no-op after Commit or a previous Revert, so it
// can be deferred unconditionally.
func (r *Reservation) Revert(ctx context.Context) error {
	r.mu.Lock()
	if r.done {
		r.mu.Unlock()
		return nil
	}
	r.done = true
	ips, ports := r.ips, r.ports
	r.mu.Unlock()
	ctx, cancel := cleanupContext(ctx)
	defer cancel()
	var errs []error
	for i := len(ips) - 1; i >= 0; i-- {
		if a := r.s.forIP(ips[i]); a != nil {
			if err := a.Release(ctx, ips[i]); err != nil {
				errs = append(errs, fmt.Errorf("releasing IP %s: %w", ips[i], err))
			}
		}
	}
	for i := len(ports) - 1; i >= 0; i-- {
		if err := r.s.NodePorts.Release(ctx, ports[i]); err != nil {
			errs = append(errs, fmt.Errorf("releasing port %d: %w", ports[i], err))
		}
	}
	return errors.Join(errs...)
}

// cleanupContext detaches releases from the request's cancellation: a
// request that failed because its context ended must still give back what
// it took, or the values leak until the next repair.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
}

const releaseTimeout = 10 * time.Second

func (r *Reservation) check() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return errFinished
	}
	return nil
}

func (r *Reservation) noRangeFor(ip net.IP) error {
	ranges := ""
	for i, a := range r.s.ClusterIPs {
		if i > 0 {
			ranges += ","
		}
		ranges += a.r.String()
	}
	return ipNotInRange(ip.String(), ranges)
}
