//go:build !linux

package agent

import (
	"errors"
	"net/netip"
)

func serviceRoute(netip.Prefix) error { return errors.New("service routes need linux") }
