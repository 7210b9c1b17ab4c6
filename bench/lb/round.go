package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/portal-net/portal/internal/lb/speaker"
	"github.com/portal-net/portal/internal/sys/netns"
)

// roundResult is one failover and failback of portal.
type roundResult struct {
	outage         time.Duration // link down → traffic flowing again
	resumed        bool          // traffic flowed again within the cap
	failed, sent   int           // requests ending after the cut
	takeover       time.Duration // link down → the new announcer's log line
	takeoverSeen   bool
	neighMoved     bool // the client's entry left node-1's MAC for the new announcer's
	failbackFailed int  // requests failed after the link came up
	failbackSent   int
	neighBack      bool // the client's entry is on node-1's MAC again
}

// client sends the benchmark's bounded load: one request every interval,
// each on a new TCP connection with a time-out.
type client struct {
	l                 *lab
	addr              string
	interval, timeout time.Duration
	log               []sample
}

// get is one HTTP GET /hostname from the client namespace.
func (c *client) get() error {
	var conn net.Conn
	err := netns.Do(c.l.client, func() error {
		var err error
		conn, err = net.DialTimeout("tcp", c.addr, c.timeout)
		return err
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(c.timeout))
	if _, err := fmt.Fprintf(conn, "GET /hostname HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := bufio.NewReader(resp.Body).WriteTo(&strings.Builder{}); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// until sends requests until done says so (checked after each request)
// or limit passes; it reports whether done said so.
func (c *client) until(ctx context.Context, limit time.Duration, done func(now time.Time) bool) (bool, error) {
	end := time.Now().Add(limit)
	for time.Now().Before(end) {
		err := c.get()
		now := time.Now()
		c.log = append(c.log, sample{at: now, ok: err == nil})
		if done(now) {
			return true, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(c.interval):
		}
	}
	return false, nil
}

// warm waits until the client gets 0.5 s of answers in a row (at most
// limit).
func (c *client) warm(ctx context.Context, limit time.Duration) error {
	t0 := time.Now()
	ok, err := c.until(ctx, limit, func(now time.Time) bool { return steady(c.log, t0, now, 500*time.Millisecond) })
	if err == nil && !ok {
		err = fmt.Errorf("the client did not get 0.5 s of answers from %s within %s", c.addr, limit)
	}
	return err
}

// failoverRound cuts node-1 off and brings it back, measuring both.
func failoverRound(ctx context.Context, c *cluster, l *lab, o options) (r roundResult, err error) {
	cl := &client{l: l, addr: netip.AddrPortFrom(c.vip, 80).String(), interval: o.interval, timeout: o.timeout}
	if err := cl.warm(ctx, 30*time.Second); err != nil {
		return r, err
	}
	macs := make([]string, nodeCount+1)
	for i := 1; i <= nodeCount; i++ {
		if macs[i], err = l.mac(i); err != nil {
			return r, err
		}
	}
	if n := l.neigh(c.vip); !strings.Contains(n, macs[1]) {
		fmt.Fprintf(os.Stderr, "  note: before the cut the client's entry is %q, not node-1's %s\n", n, macs[1])
	}
	// The node that takes over: the winner among the nodes left.
	heir := 2
	if speaker.Winner(c.vip, []string{nodeName(2), nodeName(3)}) == nodeName(3) {
		heir = 3
	}

	t0 := time.Now()
	if err := l.setLink(1, false); err != nil {
		return r, fmt.Errorf("link down: %w", err)
	}
	// From here on the link must come back up, whatever happens.
	up := false
	defer func() {
		if !up {
			_ = l.setLink(1, true)
		}
	}()
	_, err = cl.until(ctx, 20*time.Second, func(now time.Time) bool {
		return now.Sub(t0) > 500*time.Millisecond && steady(cl.log, t0, now, 2*time.Second)
	})
	if err != nil {
		return r, err
	}
	r.outage, r.failed, r.sent, r.resumed = failover(cl.log, t0)
	n := l.neigh(c.vip)
	r.neighMoved = !strings.Contains(n, macs[1]) && strings.Contains(n, macs[heir])
	if !r.neighMoved {
		fmt.Fprintf(os.Stderr, "  note: after the failover the client's entry is %q (node-1 %s, node-%d %s)\n", n, macs[1], heir, macs[heir])
	}
	if at, ok := firstAnnounce(c.agents[heir-1].Log.String(), c.vip.String(), t0); ok {
		r.takeover, r.takeoverSeen = at.Sub(t0), true
	}

	// Failback: node-1 is live again and wins the address back.
	t1 := time.Now()
	if err := l.setLink(1, true); err != nil {
		return r, fmt.Errorf("link up: %w", err)
	}
	up = true
	var lastNeigh time.Time
	_, err = cl.until(ctx, 15*time.Second, func(now time.Time) bool {
		if !r.neighBack && now.Sub(lastNeigh) > 100*time.Millisecond {
			lastNeigh = now
			r.neighBack = strings.Contains(l.neigh(c.vip), macs[1])
		}
		return now.Sub(t1) >= 3*time.Second && r.neighBack && steady(cl.log, t1, now, time.Second)
	})
	if err != nil {
		return r, err
	}
	_, r.failbackFailed, r.failbackSent, _ = failover(cl.log, t1)
	return r, nil
}
