package nodeipam

import (
	"errors"
	"fmt"
	"math/big"
	"net"
)

// ErrRangeFull means every node-sized block of the cluster CIDR is taken.
var ErrRangeFull = errors.New("CIDR range is full")

// ErrOutOfRange means a CIDR does not lie inside the cluster CIDR.
var ErrOutOfRange = errors.New("CIDR is outside the cluster CIDR")

// maxBlockBits bounds the bitmap: 2^16 node blocks per cluster CIDR, the
// same limit upstream puts on the difference of the two mask sizes.
const maxBlockBits = 16

// CIDRSet hands out the node-sized blocks of one cluster CIDR. It is not
// safe for concurrent use; the controller serialises access.
type CIDRSet struct {
	cluster  *net.IPNet
	maskSize int
	bits     int // 32 or 128
	count    int
	used     []bool
	inUse    int
	// next is where the search for a free block starts: allocation walks
	// round-robin so a block released by a deleted node is not handed to
	// the very next node while stale routes to it may still exist.
	next int
}

// NewCIDRSet splits cluster into blocks of prefix length maskSize.
func NewCIDRSet(cluster *net.IPNet, maskSize int) (*CIDRSet, error) {
	ones, bits := cluster.Mask.Size()
	if maskSize < ones || maskSize > bits {
		return nil, fmt.Errorf("node mask size %d must lie between the cluster prefix /%d and /%d", maskSize, ones, bits)
	}
	if maskSize-ones > maxBlockBits {
		return nil, fmt.Errorf("node mask size %d is more than %d bits longer than the cluster prefix /%d", maskSize, maxBlockBits, ones)
	}
	count := 1 << (maskSize - ones)
	base := &net.IPNet{IP: cluster.IP.Mask(cluster.Mask), Mask: cluster.Mask}
	return &CIDRSet{cluster: base, maskSize: maskSize, bits: bits, count: count, used: make([]bool, count)}, nil
}

// Cluster returns the cluster CIDR this set divides.
func (s *CIDRSet) Cluster() *net.IPNet { return s.cluster }

// Free returns how many blocks are still available.
func (s *CIDRSet) Free() int { return s.count - s.inUse }

// AllocateNext takes the next free block.
func (s *CIDRSet) AllocateNext() (*net.IPNet, error) {
	for i := range s.count {
		idx := (s.next + i) % s.count
		if !s.used[idx] {
			s.used[idx] = true
			s.inUse++
			s.next = (idx + 1) % s.count
			return s.block(idx), nil
		}
	}
	return nil, ErrRangeFull
}

// Occupy marks every block that cidr overlaps as used; occupying a block
// twice is harmless, as restarts replay every node's CIDR.
func (s *CIDRSet) Occupy(cidr *net.IPNet) error {
	first, last, err := s.indexRange(cidr)
	if err != nil {
		return err
	}
	for i := first; i <= last; i++ {
		if !s.used[i] {
			s.used[i] = true
			s.inUse++
		}
	}
	return nil
}

// Release frees every block that cidr overlaps.
func (s *CIDRSet) Release(cidr *net.IPNet) error {
	first, last, err := s.indexRange(cidr)
	if err != nil {
		return err
	}
	for i := first; i <= last; i++ {
		if s.used[i] {
			s.used[i] = false
			s.inUse--
		}
	}
	return nil
}

func (s *CIDRSet) block(idx int) *net.IPNet {
	n := new(big.Int).SetBytes(s.baseIP())
	n.Add(n, new(big.Int).Lsh(big.NewInt(int64(idx)), uint(s.bits-s.maskSize)))
	return &net.IPNet{IP: toIP(n, s.bits/8), Mask: net.CIDRMask(s.maskSize, s.bits)}
}

func (s *CIDRSet) baseIP() []byte {
	if s.bits == 32 {
		return s.cluster.IP.To4()
	}
	return s.cluster.IP.To16()
}

// indexRange returns the first and last block index cidr covers.
func (s *CIDRSet) indexRange(cidr *net.IPNet) (int, int, error) {
	ones, bits := cidr.Mask.Size()
	clusterOnes, _ := s.cluster.Mask.Size()
	if bits != s.bits || ones < clusterOnes || !s.cluster.Contains(cidr.IP) {
		return 0, 0, fmt.Errorf("%s in %s: %w", cidr, s.cluster, ErrOutOfRange)
	}
	ip := cidr.IP.To16()
	if s.bits == 32 {
		ip = cidr.IP.To4()
	}
	offset := new(big.Int).Sub(new(big.Int).SetBytes(ip), new(big.Int).SetBytes(s.baseIP()))
	shift := uint(s.bits - s.maskSize)
	first := int(new(big.Int).Rsh(offset, shift).Int64())
	last := first
	if ones < s.maskSize {
		// A CIDR larger than one block (a hand-set podCIDR) covers many.
		last = first + (1 << (s.maskSize - ones)) - 1
	}
	if last >= s.count {
		last = s.count - 1
	}
	return first, last, nil
}

func toIP(n *big.Int, size int) net.IP {
	b := n.Bytes()
	ip := make(net.IP, size)
	copy(ip[size-len(b):], b)
	return ip
}
