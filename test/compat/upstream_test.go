package compat

import (
	"net/netip"

	"github.com/portal-net/portal/internal/testutil/dnspeer"
)

// externalName is the one name outside the cluster the fake upstream
// knows; an ExternalName service points at it.
const externalName = "ext-0.example.org."

// externalAddr is its A record (TEST-NET-2: nothing is ever sent there).
var externalAddr = netip.MustParseAddr("198.51.100.1")

// startUpstream is the fake resolver both servers forward to, on
// 127.0.0.1: A for externalName, NODATA for its other types, NXDOMAIN for
// any other name, never an authority section.
func startUpstream() (*dnspeer.Upstream, error) {
	return dnspeer.StartUpstream(map[string]netip.Addr{externalName: externalAddr}, 3600)
}
