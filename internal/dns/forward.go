package dns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

const (
	// forwardTimeout bounds one forwarded question across all upstreams:
	// well inside a stub resolver's 5 s so a failure turns into our
	// SERVFAIL, not the client's timeout.
	forwardTimeout = 2 * time.Second
	// minTryTimeout is the least one upstream is given before failing over.
	minTryTimeout = 500 * time.Millisecond
	// upstreamUDPSize is the EDNS0 buffer we advertise upstream (the DNS
	// flag day 2020 value, which avoids IP fragmentation).
	upstreamUDPSize = 1232
	// downFor is how long an upstream that timed out or could not be
	// reached is tried only after the others, so a dead first nameserver
	// does not cost every query a timeout.
	downFor = 10 * time.Second
)

var errAllUpstreamsFailed = errors.New("all upstreams failed")

// forwarder asks upstream recursive resolvers, in order.
type forwarder struct {
	upstreams atomic.Pointer[[]*upstream]
	timeout   time.Duration
	minTry    time.Duration
	m         *metrics
}

type upstream struct {
	addr      netip.AddrPort
	downUntil atomic.Int64 // unix nanoseconds; 0: healthy
}

func newForwarder(ups []netip.AddrPort, m *metrics) *forwarder {
	f := &forwarder{timeout: forwardTimeout, minTry: minTryTimeout, m: m}
	f.set(ups)
	return f
}

func (f *forwarder) set(addrs []netip.AddrPort) {
	ups := make([]*upstream, len(addrs))
	for i, a := range addrs {
		ups[i] = &upstream{addr: a}
	}
	f.upstreams.Store(&ups)
}

func (f *forwarder) list() []netip.AddrPort {
	var out []netip.AddrPort
	for _, u := range *f.upstreams.Load() {
		out = append(out, u.addr)
	}
	return out
}

// order is the upstreams in configured order, those that recently failed
// to answer moved to the end.
func (f *forwarder) order(now time.Time) []*upstream {
	ups := *f.upstreams.Load()
	healthy := true
	for _, u := range ups {
		if u.downUntil.Load() > now.UnixNano() {
			healthy = false
			break
		}
	}
	if healthy {
		return ups
	}
	out := make([]*upstream, 0, len(ups))
	for _, u := range ups {
		if u.downUntil.Load() <= now.UnixNano() {
			out = append(out, u)
		}
	}
	for _, u := range ups {
		if u.downUntil.Load() > now.UnixNano() {
			out = append(out, u)
		}
	}
	return out
}

// exchange asks q of each upstream in order until one answers with
// something other than SERVFAIL or REFUSED. A truncated UDP answer is
// asked again over TCP of the same upstream. deadline, when not zero,
// further bounds the whole exchange.
func (f *forwarder) exchange(q dns.Question, do, cd bool, deadline time.Time) (*dns.Msg, error) {
	now := time.Now()
	ups := f.order(now)
	if len(ups) == 0 {
		return nil, fmt.Errorf("%w: no upstreams", errAllUpstreamsFailed)
	}
	end := now.Add(f.timeout)
	if !deadline.IsZero() && deadline.Before(end) {
		end = deadline
	}
	ctx, cancel := context.WithDeadline(context.Background(), end)
	defer cancel()

	req := new(dns.Msg)
	req.Id = dns.Id()
	req.RecursionDesired = true
	req.CheckingDisabled = cd
	req.Question = []dns.Question{q}
	req.SetEdns0(upstreamUDPSize, do)

	var lastErr error
	for i, up := range ups {
		left := time.Until(end)
		if left <= 0 {
			break
		}
		// Share what is left among the upstreams not yet tried, but give
		// each at least minTry: a healthy upstream answering in 600 ms is
		// worth more than a quick failover.
		try := max(left/time.Duration(len(ups)-i), f.minTry)
		try = min(try, left)
		resp, err := f.ask(ctx, up.addr, req, try)
		if err != nil {
			up.downUntil.Store(time.Now().Add(downFor).UnixNano())
			lastErr = err
			continue
		}
		// It answered: whatever it said, it is alive.
		up.downUntil.Store(0)
		if resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused {
			lastErr = fmt.Errorf("upstream %s: %s", up.addr, dns.RcodeToString[resp.Rcode])
			continue
		}
		return resp, nil
	}
	return nil, fmt.Errorf("%w: %w", errAllUpstreamsFailed, lastErr)
}

func (f *forwarder) ask(ctx context.Context, up netip.AddrPort, req *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	to := up.String()
	f.m.fwdRequests.WithLabelValues(to).Inc()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &dns.Client{Net: "udp", UDPSize: upstreamUDPSize, Timeout: timeout}
	resp, _, err := c.ExchangeContext(ctx, req, to)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, req, to)
	}
	if err != nil {
		f.m.fwdResponses.WithLabelValues(to, "error").Inc()
		return nil, fmt.Errorf("upstream %s: %w", to, err)
	}
	f.m.fwdResponses.WithLabelValues(to, rcodeLabel(resp.Rcode)).Inc()
	if len(resp.Question) != 1 || !strings.EqualFold(resp.Question[0].Name, req.Question[0].Name) ||
		resp.Question[0].Qtype != req.Question[0].Qtype || resp.Question[0].Qclass != req.Question[0].Qclass {
		return nil, fmt.Errorf("upstream %s: answer for another question", to)
	}
	return resp, nil
}
