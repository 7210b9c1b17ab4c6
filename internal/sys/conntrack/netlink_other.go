//go:build !linux

package conntrack

import "errors"

// ErrUnsupported is returned where there is no kernel conntrack table.
var ErrUnsupported = errors.New("conntrack: needs linux")

// Netlink is Interface on the kernel table; on this platform it fails.
type Netlink struct{}

var _ Interface = (*Netlink)(nil)

// New returns the kernel implementation.
func New() *Netlink { return &Netlink{} }

// ClearStale validates svcs and fails with ErrUnsupported.
func (n *Netlink) ClearStale(svcs []Service) (int, error) {
	if _, err := NewMatcher(svcs); err != nil {
		return 0, err
	}
	return 0, ErrUnsupported
}

// List fails with ErrUnsupported.
func (n *Netlink) List() ([]Flow, error) { return nil, ErrUnsupported }
