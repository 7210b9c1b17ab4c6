package allocator

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
)

// Offsets from the network address that random allocation never returns:
// by convention the 1st IP is the "kubernetes" Service and the 10th is the
// cluster DNS Service. Both can still be allocated explicitly.
const (
	KubernetesServiceOffset = 1
	DNSServiceOffset        = 10
)

// maxOffsets caps how many addresses a range tracks. Offsets are uint64 and
// a random pick needs a span that fits; 2^63 addresses is far beyond any
// service CIDR worth allocating from, so a wider IPv6 prefix is used only in
// its lower 2^63 addresses.
const maxOffsets = uint64(1) << 63

// IPRange is the set of allocatable ClusterIPs of one service CIDR,
// addressed by offset from the network address. The network address (and,
// for IPv4, the broadcast address) is never allocatable.
type IPRange struct {
	prefix netip.Prefix
	cidr   net.IPNet
	total  uint64 // addresses in the CIDR, clamped to maxOffsets
	usable span
	sel    selector
}

// NewIPRange builds the range of a service CIDR such as 10.0.0.0/24 or
// fd00::/112. A host address with bits set below the mask is accepted and
// masked, as net.ParseCIDR does.
func NewIPRange(cidr *net.IPNet) (*IPRange, error) {
	if cidr == nil {
		return nil, fmt.Errorf("nil service CIDR")
	}
	addr, ok := netip.AddrFromSlice(cidr.IP)
	if !ok {
		return nil, fmt.Errorf("invalid service CIDR %v", cidr)
	}
	addr = addr.Unmap()
	ones, bits := cidr.Mask.Size()
	if bits == 0 || bits != addr.BitLen() {
		return nil, fmt.Errorf("invalid service CIDR %v: mask does not match the address family", cidr)
	}
	prefix := netip.PrefixFrom(addr, ones).Masked()
	hostBits := bits - ones
	total := maxOffsets
	if hostBits < 63 {
		total = uint64(1) << hostBits
	}
	usable := span{lo: 1, hi: total}
	if addr.Is4() && total >= 4 {
		usable.hi = total - 1 // broadcast
	}
	if usable.len() == 0 {
		return nil, fmt.Errorf("service CIDR %v has no allocatable addresses", cidr)
	}
	r := &IPRange{
		prefix: prefix,
		cidr:   net.IPNet{IP: net.IP(prefix.Addr().AsSlice()), Mask: net.CIDRMask(ones, bits)},
		total:  total,
		usable: usable,
	}
	r.sel = newSelector(usable, total, ipBands, []uint64{KubernetesServiceOffset, DNSServiceOffset})
	return r, nil
}

// ParseIPRange is NewIPRange for a CIDR string.
func ParseIPRange(cidr string) (*IPRange, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, fmt.Errorf("parsing service CIDR: %w", err)
	}
	return NewIPRange(n)
}

// String is the CIDR, e.g. "10.0.0.0/24"; it is what error messages name.
func (r *IPRange) String() string { return r.prefix.String() }

// CIDR returns a copy of the range's network.
func (r *IPRange) CIDR() *net.IPNet {
	c := net.IPNet{IP: append(net.IP(nil), r.cidr.IP...), Mask: append(net.IPMask(nil), r.cidr.Mask...)}
	return &c
}

// Family is the IP family of the range.
func (r *IPRange) Family() corev1.IPFamily {
	if r.prefix.Addr().Is4() {
		return corev1.IPv4Protocol
	}
	return corev1.IPv6Protocol
}

// Size is the number of allocatable addresses (explicitly or at random).
func (r *IPRange) Size() uint64 { return r.usable.len() }

// Contains reports whether ip may be allocated from this range: inside the
// CIDR and neither the network nor the broadcast address.
func (r *IPRange) Contains(ip net.IP) bool {
	_, ok := r.Offset(ip)
	return ok
}

// Offset returns ip's offset from the network address, if ip is allocatable.
func (r *IPRange) Offset(ip net.IP) (uint64, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return 0, false
	}
	return r.offsetOf(a.Unmap())
}

func (r *IPRange) offsetOf(a netip.Addr) (uint64, bool) {
	if !r.prefix.Contains(a) {
		return 0, false
	}
	off := low64(a) - low64(r.prefix.Addr())
	if !r.usable.contains(off) {
		return 0, false
	}
	return off, true
}

// IP returns the address at offset off, or nil when off is not allocatable.
func (r *IPRange) IP(off uint64) net.IP {
	if !r.usable.contains(off) {
		return nil
	}
	return net.IP(r.addrAt(off).AsSlice())
}

// ReservedIP returns the n-th address of the range (network address + n),
// e.g. ReservedIP(1) for the kubernetes Service and ReservedIP(10) for the
// cluster DNS, or nil when the range has no such allocatable address.
func (r *IPRange) ReservedIP(n int) net.IP {
	if n < 0 {
		return nil
	}
	return r.IP(uint64(n))
}

// addrAt adds off to the network address. The host part is at most 63 bits
// wide (see maxOffsets) and starts at zero, so adding to the low 64 bits
// never carries.
func (r *IPRange) addrAt(off uint64) netip.Addr {
	base := r.prefix.Addr()
	if base.Is4() {
		b := base.As4()
		v := binary.BigEndian.Uint32(b[:]) + uint32(off)
		binary.BigEndian.PutUint32(b[:], v)
		return netip.AddrFrom4(b)
	}
	b := base.As16()
	v := binary.BigEndian.Uint64(b[8:]) + off
	binary.BigEndian.PutUint64(b[8:], v)
	return netip.AddrFrom16(b)
}

func low64(a netip.Addr) uint64 {
	if a.Is4() {
		b := a.As4()
		return uint64(binary.BigEndian.Uint32(b[:]))
	}
	b := a.As16()
	return binary.BigEndian.Uint64(b[8:])
}
