package compat

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/miekg/dns"
	"github.com/portal-net/portal/internal/testutil/dnspeer"
	"github.com/portal-net/portal/internal/testutil/portalproc"
)

const zone = dnspeer.Zone

// exchange asks addr one question over UDP, again over TCP if truncated.
func exchange(ctx context.Context, addr string, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c := &dns.Client{Net: "udp", Timeout: 3 * time.Second}
	r, _, err := c.ExchangeContext(ctx, m, addr)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, m, addr)
	}
	return r, err
}

// waitAnswers polls addr until name has the A record want, or the process
// exits, or limit passes.
func waitAnswers(ctx context.Context, p *portalproc.Process, addr, name string, want netip.Addr, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-p.Exited():
			return fmt.Errorf("exited before answering:\n%s", portalproc.LastLines(p.Log.String(), 20))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		qctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		r, err := exchange(qctx, addr, name, dns.TypeA)
		cancel()
		if err != nil {
			last = err.Error()
		} else {
			last = dns.RcodeToString[r.Rcode]
			for _, rr := range r.Answer {
				if a, ok := rr.(*dns.A); ok && a.A.Equal(want.AsSlice()) {
					return nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no A %s for %s within %s (last: %s):\n%s", want, name, limit, last, portalproc.LastLines(p.Log.String(), 20))
}

// serviceCIDR is the API server's service range (portalproc's).
var serviceCIDR = netip.MustParsePrefix("10.0.0.0/16")
