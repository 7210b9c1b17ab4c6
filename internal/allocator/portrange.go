package allocator

import (
	"fmt"
	"strconv"
	"strings"
)

// PortRange is a contiguous range of node ports [Base, Base+Size),
// addressed by offset from Base.
type PortRange struct {
	Base int
	Size int
	sel  selector
}

// NewPortRange builds the range [base, base+size).
func NewPortRange(base, size int) (*PortRange, error) {
	if base < 1 || size < 1 || base+size-1 > 65535 {
		return nil, fmt.Errorf("invalid port range: base %d size %d must lie within 1-65535", base, size)
	}
	usable := span{lo: 0, hi: uint64(size)}
	return &PortRange{Base: base, Size: size, sel: newSelector(usable, uint64(size), portBands, nil)}, nil
}

// ParsePortRange accepts "30000-32767" (inclusive bounds), "30000+2768"
// (base and size) and a single port "30000".
func ParsePortRange(s string) (*PortRange, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("invalid port range %q: empty", s)
	}
	atoi := func(v string) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return 0, fmt.Errorf("invalid port range %q: %w", s, err)
		}
		return n, nil
	}
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		l, err := atoi(lo)
		if err != nil {
			return nil, err
		}
		h, err := atoi(hi)
		if err != nil {
			return nil, err
		}
		if h < l {
			return nil, fmt.Errorf("invalid port range %q: end is before start", s)
		}
		return NewPortRange(l, h-l+1)
	}
	if b, n, ok := strings.Cut(s, "+"); ok {
		base, err := atoi(b)
		if err != nil {
			return nil, err
		}
		size, err := atoi(n)
		if err != nil {
			return nil, err
		}
		return NewPortRange(base, size)
	}
	p, err := atoi(s)
	if err != nil {
		return nil, err
	}
	return NewPortRange(p, 1)
}

// String is "base-last", e.g. "30000-32767"; it is what error messages name.
func (r *PortRange) String() string {
	return fmt.Sprintf("%d-%d", r.Base, r.Base+r.Size-1)
}

// Contains reports whether port lies in the range.
func (r *PortRange) Contains(port int) bool {
	return port >= r.Base && port < r.Base+r.Size
}

// Offset returns port's offset from Base, if it lies in the range.
func (r *PortRange) Offset(port int) (uint64, bool) {
	if !r.Contains(port) {
		return 0, false
	}
	return uint64(port - r.Base), true
}

// Port returns the port at offset off, or 0 when off is outside the range.
func (r *PortRange) Port(off uint64) int {
	if off >= uint64(r.Size) {
		return 0
	}
	return r.Base + int(off)
}
