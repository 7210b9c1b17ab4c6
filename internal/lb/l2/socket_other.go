//go:build !linux

package l2

import "errors"

// ErrUnsupported is returned by New on platforms without packet sockets.
var ErrUnsupported = errors.New("l2: announcing needs linux packet sockets")

// New fails: L2 announcement needs Linux.
func New(cfg Config) (*Announcer, error) { return nil, ErrUnsupported }
