package dns

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/miekg/dns"
)

// resolvConf is the part of a resolv.conf the server uses.
type resolvConf struct {
	nameservers []netip.AddrPort
	search      []string // fully qualified, lower case
}

func readResolvConf(path string) (resolvConf, error) {
	f, err := os.Open(path)
	if err != nil {
		return resolvConf{}, fmt.Errorf("reading resolv.conf: %w", err)
	}
	defer f.Close()
	return parseResolvConf(f)
}

// parseResolvConf reads nameserver, search and domain lines as the glibc
// resolver does: the last search or domain line wins.
func parseResolvConf(r io.Reader) (resolvConf, error) {
	var rc resolvConf
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			a, err := netip.ParseAddr(f[1])
			if err != nil {
				continue // glibc ignores what it cannot parse
			}
			rc.nameservers = append(rc.nameservers, netip.AddrPortFrom(a.WithZone(""), 53))
		case "search", "domain":
			rc.search = rc.search[:0]
			for _, d := range f[1:] {
				if d == "." {
					continue
				}
				rc.search = append(rc.search, strings.ToLower(dns.Fqdn(d)))
			}
		}
	}
	return rc, sc.Err()
}

// withoutLoops drops upstreams that are one of our own listen addresses:
// forwarding to ourselves would bounce a query until it times out. A
// wildcard listen address covers every loopback upstream on its port.
func withoutLoops(upstreams, listen []netip.AddrPort) []netip.AddrPort {
	var out []netip.AddrPort
next:
	for _, u := range upstreams {
		ua := u.Addr().Unmap()
		for _, l := range listen {
			la := l.Addr().Unmap()
			if l.Port() != u.Port() {
				continue
			}
			if la == ua || (la.IsUnspecified() && ua.IsLoopback()) {
				continue next
			}
		}
		out = append(out, u)
	}
	return out
}
