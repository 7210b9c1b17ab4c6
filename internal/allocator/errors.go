package allocator

import (
	"errors"
	"fmt"
)

// Error classes, for errors.Is. The errors the allocators return carry a
// more specific message (naming the IP or port kind and the valid range) but
// match these.
var (
	// ErrAllocated: the requested value (or etcd key) is already taken.
	ErrAllocated = errors.New("provided value is already allocated")
	// ErrNotInRange: the requested value is outside the allocatable range.
	ErrNotInRange = errors.New("provided value is not in the valid range")
	// ErrFull: no value is left to allocate at random.
	ErrFull = errors.New("range is full")
	// ErrModified: a conditional release found the key changed or gone, so
	// it left it alone.
	ErrModified = errors.New("allocation was modified concurrently")
)

// classError carries a user-facing message while matching a class sentinel.
type classError struct {
	msg   string
	class error
}

func (e *classError) Error() string        { return e.msg }
func (e *classError) Is(target error) bool { return target == e.class }

var (
	errIPAllocated   error = &classError{msg: "provided IP is already allocated", class: ErrAllocated}
	errPortAllocated error = &classError{msg: "provided port is already allocated", class: ErrAllocated}
)

func ipNotInRange(ip string, validRange string) error {
	return &classError{
		msg:   fmt.Sprintf("the provided IP (%s) is not in the valid range. The range of valid IPs is %s", ip, validRange),
		class: ErrNotInRange,
	}
}

func portNotInRange(validRange string) error {
	return &classError{
		msg:   fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %s", validRange),
		class: ErrNotInRange,
	}
}
