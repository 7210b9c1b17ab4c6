package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// loadResult is one bounded UDP load against one server.
type loadResult struct {
	answered int             // correct answers
	timeouts int             // queries that got no answer within -timeout
	elapsed  time.Duration   // wall time of the run
	lat      []time.Duration // latency of every correct answer, sorted
}

func (r loadResult) qps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.answered) / r.elapsed.Seconds()
}

// errWrong is a load that got a wrong answer: it stops the run, so a broken
// server is reported rather than timed.
var errWrong = errors.New("wrong answer")

// runLoad has conc clients, each with its own UDP socket (a miekg/dns
// Conn) and one query in flight, ask queries picked at random from pool
// until dur has passed or maxQueries were sent. Every answer's ID, rcode
// and answer count are checked; an answer that does not match stops the
// run with errWrong.
func runLoad(ctx context.Context, addr string, pool []wire, conc int, dur, timeout time.Duration, maxQueries int) (loadResult, error) {
	if len(pool) == 0 {
		return loadResult{}, errors.New("no queries")
	}
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	var (
		sent     atomic.Int64
		mu       sync.Mutex
		res      loadResult
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) { errOnce.Do(func() { firstErr = err; cancel() }) }
	conns := make([]*dns.Conn, conc)
	for k := range conns {
		c, err := dns.Dial("udp", addr)
		if err != nil {
			for _, c := range conns[:k] {
				c.Close()
			}
			return loadResult{}, fmt.Errorf("client socket: %w", err)
		}
		conns[k] = c
	}
	t0 := time.Now()
	for k, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			rng := rand.New(rand.NewPCG(uint64(k)+1, uint64(t0.UnixNano())))
			out := make([]byte, 0, 512)
			in := make([]byte, 65535)
			var lat []time.Duration
			timeouts := 0
			id := uint16(rng.Uint32())
			defer func() {
				mu.Lock()
				res.answered += len(lat)
				res.timeouts += timeouts
				res.lat = append(res.lat, lat...)
				mu.Unlock()
			}()
			for ctx.Err() == nil && sent.Add(1) <= int64(maxQueries) {
				q := &pool[rng.IntN(len(pool))]
				id++
				out = append(out[:0], q.msg...)
				out[0], out[1] = byte(id>>8), byte(id)
				start := time.Now()
				if _, err := conn.Write(out); err != nil {
					fail(fmt.Errorf("send: %w", err))
					return
				}
				_ = conn.SetReadDeadline(start.Add(timeout))
				for {
					n, err := conn.Read(in)
					if errors.Is(err, os.ErrDeadlineExceeded) {
						timeouts++
						break
					}
					if err != nil {
						fail(fmt.Errorf("receive: %w", err))
						return
					}
					h, ok := parseHeader(in[:n])
					if !ok || !h.response || h.id != id {
						continue // a late answer to a query that timed out
					}
					if h.rcode != q.rcode || h.ancount != q.ancount || h.truncated {
						m := new(dns.Msg)
						_ = m.Unpack(in[:n])
						fail(fmt.Errorf("%w: rcode %s with %d answers (truncated %t), want %s with %d:\n%s", errWrong,
							dns.RcodeToString[h.rcode], h.ancount, h.truncated, dns.RcodeToString[q.rcode], q.ancount, m))
						return
					}
					lat = append(lat, time.Since(start))
					break
				}
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(t0)
	slices.Sort(res.lat)
	return res, firstErr
}

// exchange asks one question with a whole-message client.
func exchange(ctx context.Context, addr string, q question, timeout time.Duration) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: timeout}
	m := new(dns.Msg)
	m.SetQuestion(q.name, q.qtype)
	r, _, err := c.ExchangeContext(ctx, m, addr)
	return r, err
}

// verify asks a sample of qs (first, last and a few between) with full
// answers checked, before any load.
func verify(ctx context.Context, addr string, qs []question, timeout time.Duration) error {
	for _, i := range sample(len(qs), 8) {
		r, err := exchange(ctx, addr, qs[i], timeout)
		if err != nil {
			return fmt.Errorf("%s: %w", qs[i].name, err)
		}
		if err := check(qs[i], r); err != nil {
			return fmt.Errorf("%w: %w", errWrong, err)
		}
	}
	return nil
}

// sample is up to k indexes spread over [0,n), first and last included.
func sample(n, k int) []int {
	if n <= k {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	out := make([]int, 0, k)
	for j := range k {
		out = append(out, j*(n-1)/(k-1))
	}
	return slices.Compact(out)
}

// firstCorrect polls addr with q every 5 ms from t0 until the answer is
// correct (SERVFAIL, refusals and silence count as not yet) and returns
// the time since t0.
func firstCorrect(ctx context.Context, t0 time.Time, addr string, q question, limit time.Duration, exited <-chan struct{}) (time.Duration, error) {
	var last error
	for time.Since(t0) < limit {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-exited:
			return 0, errors.New("exited before answering")
		default:
		}
		r, err := exchange(ctx, addr, q, 100*time.Millisecond)
		if err == nil {
			if err = check(q, r); err == nil {
				return time.Since(t0), nil
			}
		}
		last = err
		if ne := (net.Error)(nil); !errors.As(err, &ne) || !ne.Timeout() {
			time.Sleep(5 * time.Millisecond)
		}
	}
	return 0, fmt.Errorf("no correct answer within %s (last: %v)", limit, last)
}
