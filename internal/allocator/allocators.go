package allocator

import (
	"context"
	"net"
	"strconv"
)

// ClusterIPAllocator allocates ClusterIPs of one service CIDR (one IP
// family). Several instances, in one process or across API servers, may
// share a store.
type ClusterIPAllocator struct {
	r *IPRange
	c *core
}

// NewClusterIPAllocator allocates from r, keeping IPAddress objects under
// the API server's etcd prefix (DefaultPrefix unless configured).
func NewClusterIPAllocator(store Store, etcdPrefix string, r *IPRange, opts Options) *ClusterIPAllocator {
	a := &ClusterIPAllocator{r: r}
	nameOf := func(off uint64) string { return r.addrAt(off).String() }
	offsetOf := func(name string) (uint64, bool) {
		ip, ok := parseIPName(name)
		if !ok {
			return 0, false
		}
		return r.offsetOf(ip)
	}
	a.c = newCore(store, ipKeyPrefix(etcdPrefix), r.sel, nameOf, offsetOf, decodeIPAddress, opts)
	return a
}

// Range is the range the allocator hands out.
func (a *ClusterIPAllocator) Range() *IPRange { return a.r }

// CIDR is the range the allocator hands addresses from.
func (a *ClusterIPAllocator) CIDR() *net.IPNet { return a.r.CIDR() }

// Run keeps the allocator's local view fresh with an etcd watch until ctx
// ends. Optional: without it the view is re-listed when older than
// Options.Resync, which costs more etcd reads on a busy cluster.
func (a *ClusterIPAllocator) Run(ctx context.Context) { a.c.run(ctx) }

func (a *ClusterIPAllocator) offset(ip net.IP) (uint64, error) {
	off, ok := a.r.Offset(ip)
	if !ok {
		return 0, ipNotInRange(ip.String(), a.r.String())
	}
	return off, nil
}

func (a *ClusterIPAllocator) value(o Owner) func(uint64) ([]byte, error) {
	return func(off uint64) ([]byte, error) {
		return encodeIPAddress(a.r.addrAt(off), o, a.c.opts.Now(), newUID())
	}
}

// Allocate claims a specific IP for o. It fails with an error matching
// ErrNotInRange or ErrAllocated (also when o itself already holds it, so a
// Reservation never reverts an allocation it did not make).
func (a *ClusterIPAllocator) Allocate(ctx context.Context, o Owner, ip net.IP) error {
	off, err := a.offset(ip)
	if err != nil {
		return err
	}
	if err := a.c.reserve(ctx, off, a.value(o)); err != nil {
		return ipError(err)
	}
	return nil
}

// AllocateNext claims a random free IP for o, preferring the upper band and
// never returning the reserved offsets. It fails with ErrFull when the
// range has no free IP left.
func (a *ClusterIPAllocator) AllocateNext(ctx context.Context, o Owner) (net.IP, error) {
	off, err := a.c.next(ctx, a.value(o))
	if err != nil {
		return nil, err
	}
	return a.r.IP(off), nil
}

// Release frees ip whoever holds it. IPs outside the range are left alone:
// they belong to another allocator, and repair collects leaks.
func (a *ClusterIPAllocator) Release(ctx context.Context, ip net.IP) error {
	off, ok := a.r.Offset(ip)
	if !ok {
		return nil
	}
	return a.c.release(ctx, off)
}

// ReleaseIfOwner frees ip only if o holds it.
func (a *ClusterIPAllocator) ReleaseIfOwner(ctx context.Context, o Owner, ip net.IP) error {
	off, ok := a.r.Offset(ip)
	if !ok {
		return nil
	}
	return a.c.releaseIfOwner(ctx, o, off)
}

// Has reports whether ip is allocated (reading the store, not the cache).
func (a *ClusterIPAllocator) Has(ctx context.Context, ip net.IP) (bool, error) {
	_, ok, err := a.Owner(ctx, ip)
	return ok, err
}

// Owner returns the Service holding ip; the zero Owner with true means the
// key exists but does not name a Service.
func (a *ClusterIPAllocator) Owner(ctx context.Context, ip net.IP) (Owner, bool, error) {
	off, ok := a.r.Offset(ip)
	if !ok {
		return Owner{}, false, nil
	}
	return a.c.owner(ctx, off)
}

// Used is the number of allocated IPs in the local view.
func (a *ClusterIPAllocator) Used() int { return a.c.used() }

func ipError(err error) error {
	if err == ErrAllocated {
		return errIPAllocated
	}
	return err
}

// PortAllocator allocates node ports (NodePorts and healthCheckNodePorts
// share one range and one key space).
type PortAllocator struct {
	r *PortRange
	c *core
}

// NewPortAllocator allocates from r, keeping ports under
// <etcdPrefix>/portal.dev/nodeports/.
func NewPortAllocator(store Store, etcdPrefix string, r *PortRange, opts Options) *PortAllocator {
	nameOf := func(off uint64) string { return strconv.Itoa(r.Port(off)) }
	offsetOf := func(name string) (uint64, bool) {
		p, ok := parsePortName(name)
		if !ok {
			return 0, false
		}
		return r.Offset(p)
	}
	return &PortAllocator{r: r, c: newCore(store, portKeyPrefix(etcdPrefix), r.sel, nameOf, offsetOf, decodeNodePort, opts)}
}

// Range is the range the allocator hands out.
func (a *PortAllocator) Range() *PortRange { return a.r }

// Run keeps the local view fresh; see ClusterIPAllocator.Run.
func (a *PortAllocator) Run(ctx context.Context) { a.c.run(ctx) }

func (a *PortAllocator) value(o Owner) func(uint64) ([]byte, error) {
	return func(uint64) ([]byte, error) { return encodeNodePort(o, a.c.opts.Now()) }
}

// Allocate claims a specific port for o; errors match ErrNotInRange or
// ErrAllocated.
func (a *PortAllocator) Allocate(ctx context.Context, o Owner, port int) error {
	off, ok := a.r.Offset(port)
	if !ok {
		return portNotInRange(a.r.String())
	}
	if err := a.c.reserve(ctx, off, a.value(o)); err != nil {
		if err == ErrAllocated {
			return errPortAllocated
		}
		return err
	}
	return nil
}

// AllocateNext claims a random free port for o, or fails with ErrFull.
func (a *PortAllocator) AllocateNext(ctx context.Context, o Owner) (int, error) {
	off, err := a.c.next(ctx, a.value(o))
	if err != nil {
		return 0, err
	}
	return a.r.Port(off), nil
}

// Release frees port whoever holds it; ports outside the range are left
// alone.
func (a *PortAllocator) Release(ctx context.Context, port int) error {
	off, ok := a.r.Offset(port)
	if !ok {
		return nil
	}
	return a.c.release(ctx, off)
}

// ReleaseIfOwner frees port only if o holds it.
func (a *PortAllocator) ReleaseIfOwner(ctx context.Context, o Owner, port int) error {
	off, ok := a.r.Offset(port)
	if !ok {
		return nil
	}
	return a.c.releaseIfOwner(ctx, o, off)
}

// Has reports whether port is allocated (reading the store).
func (a *PortAllocator) Has(ctx context.Context, port int) (bool, error) {
	_, ok, err := a.Owner(ctx, port)
	return ok, err
}

// Owner returns the Service holding port.
func (a *PortAllocator) Owner(ctx context.Context, port int) (Owner, bool, error) {
	off, ok := a.r.Offset(port)
	if !ok {
		return Owner{}, false, nil
	}
	return a.c.owner(ctx, off)
}

// Used is the number of allocated ports in the local view.
func (a *PortAllocator) Used() int { return a.c.used() }
