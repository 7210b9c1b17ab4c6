package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"
)

// backendPort is the backend's HTTP port and dummyPort the dummy
// interface's listener; neither is the services' port, so a ClusterIP
// nobody programmed never reaches a listener by accident.
const (
	backendPort = 8080
	dummyPort   = 9000
)

// serveHTTP answers every request with a short body until ln closes;
// /bulk?bytes=N answers N zero bytes.
func serveHTTP(ln net.Listener) *http.Server {
	body := []byte("ok\n")
	zeros := make([]byte, 1<<20)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/bulk" {
				n, _ := strconv.ParseInt(r.URL.Query().Get("bytes"), 10, 64)
				w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
				for n > 0 {
					k, err := w.Write(zeros[:min(n, int64(len(zeros)))])
					if err != nil {
						return
					}
					n -= int64(k)
				}
				return
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	return srv
}

// acceptAndClose accepts connections on ln and closes them at once, the
// listener the programming probes connect to.
func acceptAndClose(ln net.Listener) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// bulkGet downloads size bytes from addr's /bulk on one connection and
// returns how long the body took.
func bulkGet(ctx context.Context, addr netip.AddrPort, size int64) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/bulk?bytes=%d", addr, size), nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	t0 := time.Now()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && n != size {
		err = fmt.Errorf("got %d of %d bytes", n, size)
	}
	return time.Since(t0), err
}

// httpResult is one fixed-duration HTTP run.
type httpResult struct {
	requests  int
	elapsed   time.Duration
	latencies []time.Duration // sorted
	// proxyCPU is the CPU time the proxy process used during the run
	// (through the ClusterIP only; 0 when not measured).
	proxyCPU time.Duration
}

// cpuPerRequest is the proxy's CPU time per request, 0 if not measured.
func (r httpResult) cpuPerRequest() time.Duration {
	if r.requests == 0 || r.proxyCPU <= 0 {
		return 0
	}
	return r.proxyCPU / time.Duration(r.requests)
}

func (r httpResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.requests) / r.elapsed.Seconds()
}

// httpLoad sends GETs to addr from conc clients for d: over kept-alive
// connections, or a new connection per request. The first error ends the
// run (a proxy that drops requests is reported, not timed).
func httpLoad(ctx context.Context, addr netip.AddrPort, conc int, d time.Duration, keepAlive bool) (httpResult, error) {
	tr := &http.Transport{
		DisableKeepAlives:   !keepAlive,
		MaxIdleConnsPerHost: conc,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	url := "http://" + addr.String() + "/"
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu       sync.Mutex
		all      []time.Duration
		firstErr error
		wg       sync.WaitGroup
	)
	t0 := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			defer func() { mu.Lock(); all = append(all, mine...); mu.Unlock() }()
			for ctx.Err() == nil {
				s := time.Now()
				err := get(ctx, hc, url)
				if err != nil {
					if ctx.Err() == nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
						cancel()
					}
					return
				}
				mine = append(mine, time.Since(s))
			}
		}()
	}
	wg.Wait()
	slices.Sort(all)
	return httpResult{requests: len(all), elapsed: time.Since(t0), latencies: all}, firstErr
}

func get(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return err
}

// connectLatency times n sequential TCP connects to addr (each closed at
// once), or as many as fit in limit; sorted.
func connectLatency(ctx context.Context, addr netip.AddrPort, n int, limit time.Duration) ([]time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	d := net.Dialer{Timeout: 5 * time.Second}
	out := make([]time.Duration, 0, n)
	for range n {
		if ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		c, err := d.DialContext(ctx, "tcp4", addr.String())
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return nil, fmt.Errorf("connect %s: %w", addr, err)
		}
		out = append(out, time.Since(t0))
		c.Close()
	}
	slices.Sort(out)
	return out, nil
}

// errNotLive is a connect to a ClusterIP that no rule sends anywhere yet.
var errNotLive = errors.New("not live")

// waitLive connects to addr every interval until a connect succeeds and
// returns when it did. A connect that fails (reset or unreachable, at
// once) or takes longer than the interval counts as not live yet.
func waitLive(ctx context.Context, addr netip.AddrPort, interval, limit time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	d := net.Dialer{Timeout: 50 * time.Millisecond}
	for {
		next := time.Now().Add(interval)
		c, err := d.DialContext(ctx, "tcp4", addr.String())
		if err == nil {
			now := time.Now()
			c.Close()
			return now, nil
		}
		if ctx.Err() != nil {
			return time.Time{}, fmt.Errorf("%s %w within %s", addr, errNotLive, limit)
		}
		time.Sleep(time.Until(next))
	}
}
