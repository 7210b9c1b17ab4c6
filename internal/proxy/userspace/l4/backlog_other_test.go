//go:build !linux

package l4

import (
	"net/netip"
	"testing"
)

func fullBacklogListener(t *testing.T) netip.AddrPort {
	t.Skip("full-backlog listener is built with Linux accept-queue behaviour")
	return netip.AddrPort{}
}
