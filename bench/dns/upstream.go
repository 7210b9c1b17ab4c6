package main

import (
	"fmt"
	"net/netip"

	"github.com/portal-net/portal/internal/testutil/dnspeer"
)

// externalNames is how many names outside the cluster the fake upstream
// answers: ext-0.example.org. … each with one A record.
const externalNames = 8

func externalName(i int) string { return fmt.Sprintf("ext-%d.example.org.", i) }

// externalAddr is the A record the upstream gives externalName(i)
// (TEST-NET-2: nothing is ever sent there).
func externalAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}) }

// upstreamTTL is long enough that neither cache expires an answer within a
// run (CoreDNS's `cache 30` caps it at 30 s).
const upstreamTTL = 3600

// startUpstream is the fake resolver both servers forward to, on
// 127.0.0.1: externalName(i) for each i, NXDOMAIN otherwise.
func startUpstream() (*dnspeer.Upstream, error) {
	names := map[string]netip.Addr{}
	for i := range externalNames {
		names[externalName(i)] = externalAddr(i)
	}
	return dnspeer.StartUpstream(names, upstreamTTL)
}
