package ipam

import (
	"errors"
	"net/netip"
)

// Error classes, for errors.Is. The errors the allocator returns are *Error
// with a message naming the service, address, pool or holder involved.
var (
	// ErrInvalidRequest: the request itself is malformed (bad address,
	// families that do not match the requested addresses...).
	ErrInvalidRequest = errors.New("invalid load balancer request")
	// ErrNoPool: no pool can serve the request: the named pool does not
	// exist, or no pool auto-assigns and admits the service for a family.
	ErrNoPool = errors.New("no usable address pool")
	// ErrNotInPool: a requested address is in no pool (or not in the
	// requested pool, or is a held-back network/broadcast address).
	ErrNotInPool = errors.New("address not in any pool")
	// ErrNotAllowed: the pools holding a requested address, or the
	// requested pool, do not admit the service (selectors).
	ErrNotAllowed = errors.New("address pool does not admit service")
	// ErrInUse: a requested address is held by another service it may
	// not share with.
	ErrInUse = errors.New("address in use")
	// ErrPoolExhausted: the eligible pools have no free address left.
	ErrPoolExhausted = errors.New("address pool exhausted")
)

// Error is a refusal. Its message is written for an event or condition.
type Error struct {
	kind    error
	msg     string
	service ServiceKey
	addr    netip.Addr
	holder  ServiceKey
}

func (e *Error) Error() string { return e.msg }

// Unwrap returns the class sentinel, so errors.Is works.
func (e *Error) Unwrap() error { return e.kind }

// Address is the requested address the error is about, if any.
func (e *Error) Address() (netip.Addr, bool) { return e.addr, e.addr.IsValid() }

// Holder is the service holding the address, for ErrInUse.
func (e *Error) Holder() (ServiceKey, bool) { return e.holder, e.holder != ServiceKey{} }

// Reason maps an error from this package to a CamelCase reason for a
// condition or event ("" for nil, "AllocationFailed" for others).
func Reason(err error) string {
	for _, c := range []struct {
		err    error
		reason string
	}{
		{ErrInvalidRequest, "InvalidRequest"},
		{ErrNoPool, "NoAddressPool"},
		{ErrNotInPool, "AddressNotInPool"},
		{ErrNotAllowed, "AddressPoolNotAllowed"},
		{ErrInUse, "AddressInUse"},
		{ErrPoolExhausted, "AddressPoolExhausted"},
	} {
		if errors.Is(err, c.err) {
			return c.reason
		}
	}
	if err == nil {
		return ""
	}
	return "AllocationFailed"
}
