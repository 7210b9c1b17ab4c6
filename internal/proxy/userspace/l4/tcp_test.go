package l4

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portal-net/portal/internal/proxy/userspace/sched"
)

func TestTCPReachesPickedBackend(t *testing.T) {
	checkGoroutines(t)
	a, b, c := newLineServer(t, "a"), newLineServer(t, "b"), newLineServer(t, "c")
	p := startTCP(t, TCPConfig{Config: Config{Scheduler: &fakeSched{}}}, backendsOf(a.Addr(), b.Addr(), c.Addr()))

	var got []string
	for range 6 {
		name, err := ask(p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, name)
	}
	if want := "a b c a b c"; strings.Join(got, " ") != want {
		t.Errorf("backends = %v, want %s", got, want)
	}
	eventually(t, "connections to end", func() bool { return p.Stats().Sessions == 0 })
	for _, s := range []*lineServer{a, b, c} {
		st, _ := statsFor(p.Stats(), s.Addr())
		if want := (BackendStats{Addr: s.Addr(), InSet: true, Total: 2}); st != want {
			t.Errorf("stats %s = %+v, want %+v", s.name, st, want)
		}
	}
}

func TestTCPOriginalDstReachesScheduler(t *testing.T) {
	checkGoroutines(t)
	a := newLineServer(t, "a")
	want := netip.MustParseAddrPort("10.96.0.10:80")
	rec := &destRecorder{fakeSched: &fakeSched{}}
	p := startTCP(t, TCPConfig{
		Config:      Config{Scheduler: rec},
		OriginalDst: func(net.Conn) netip.AddrPort { return want },
	}, backendsOf(a.Addr()))
	if _, err := ask(p.Addr()); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.dest != want || rec.client.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("Pick saw client %v dest %v, want 127.0.0.1:* and %v", rec.client, rec.dest, want)
	}
}

func TestTCPRetriesRefusingBackend(t *testing.T) {
	for _, tc := range []struct {
		name      string
		threshold int
	}{
		{"back off after 1 failure", 1},
		{"back off after 2 failures (default)", 0},
		{"back off after 3 failures", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			a, c := newLineServer(t, "a"), newLineServer(t, "c")
			dead := deadAddr(t)
			dials := &dialRecorder{}
			p := startTCP(t, TCPConfig{Config: Config{
				Scheduler:     &fakeSched{},
				Dial:          dials.Dial,
				FailThreshold: tc.threshold,
			}}, backendsOf(a.Addr(), dead, c.Addr()))

			// 200 requests from 4 clients at a time.
			var (
				mu       sync.Mutex
				failures []error
				seen     = map[string]int{}
				wg       sync.WaitGroup
				work     = make(chan struct{})
			)
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range work {
						name, err := ask(p.Addr())
						mu.Lock()
						if err != nil {
							failures = append(failures, err)
						}
						seen[name]++
						mu.Unlock()
					}
				}()
			}
			for range 200 {
				work <- struct{}{}
			}
			close(work)
			wg.Wait()

			if len(failures) != 0 {
				t.Fatalf("%d of 200 requests failed, first: %v", len(failures), failures[0])
			}
			if seen["a"]+seen["c"] != 200 || seen["a"] == 0 || seen["c"] == 0 {
				t.Errorf("answers by backend = %v, want 200 split between a and c", seen)
			}
			threshold := tc.threshold
			if threshold == 0 {
				threshold = DefaultFailThreshold
			}
			// Concurrent clients may pick the dead backend before the
			// back-off applies; each client at most once more.
			if n := dials.Count(dead); n < threshold || n > threshold+3 {
				t.Errorf("dead backend dialed %d times, want %d (+ up to 3 races)", n, threshold)
			}
			st, _ := statsFor(p.Stats(), dead)
			if st.Failures != uint64(dials.Count(dead)) || st.Total != 0 {
				t.Errorf("dead backend stats = %+v, want %d failures, 0 total", st, dials.Count(dead))
			}
		})
	}
}

func TestTCPBackedOffBackendUsedWhenNothingElseLeft(t *testing.T) {
	checkGoroutines(t)
	a := newLineServer(t, "a")
	clock := newFakeClock()
	// The only backend refuses its first two dials, then works.
	dials := &dialRecorder{fail: func(_ context.Context, _ string, n int) error {
		if n <= 2 {
			return syscall.ECONNREFUSED
		}
		return nil
	}}
	p := startTCP(t, TCPConfig{Config: Config{
		Scheduler: &fakeSched{}, Dial: dials.Dial, Now: clock.Now, MaxAttempts: 1,
	}}, backendsOf(a.Addr()))

	for i := range 2 {
		if _, err := ask(p.Addr()); err == nil {
			t.Fatalf("request %d succeeded, want a reset while the backend refuses", i)
		}
	}
	// Now in back-off, but it is the only backend: it must still be tried.
	if name, err := ask(p.Addr()); err != nil || name != "a" {
		t.Fatalf("request after back-off = %q, %v; want a", name, err)
	}
	st := p.Stats()
	if st.Dropped != 2 {
		t.Errorf("Dropped = %d, want 2", st.Dropped)
	}
	if b, _ := statsFor(st, a.Addr()); b.Failures != 2 || b.Total != 1 {
		t.Errorf("stats = %+v, want 2 failures, 1 total", b)
	}
}

func TestTCPConnectTimeout(t *testing.T) {
	for _, tc := range []struct {
		name string
		// slow returns a backend address whose connects hang, and a dial
		// hook (nil: dial for real).
		slow func(t *testing.T) (netip.AddrPort, func(context.Context, string, int) error)
	}{
		{"listener with full backlog", func(t *testing.T) (netip.AddrPort, func(context.Context, string, int) error) {
			return fullBacklogListener(t), nil
		}},
		{"injected dialer that hangs", func(t *testing.T) (netip.AddrPort, func(context.Context, string, int) error) {
			slow := netip.MustParseAddrPort("127.0.0.1:9") // never dialed for real
			return slow, func(ctx context.Context, addr string, _ int) error {
				if addr != slow.String() {
					return nil
				}
				<-ctx.Done()
				return fmt.Errorf("dial %s: %w", addr, ctx.Err())
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			good := newLineServer(t, "good")
			slow, hook := tc.slow(t)
			dials := &dialRecorder{fail: hook}
			const timeout = 200 * time.Millisecond
			p := startTCP(t, TCPConfig{Config: Config{
				Scheduler: &fakeSched{}, Dial: dials.Dial, ConnectTimeout: timeout,
			}}, backendsOf(slow, good.Addr()))

			start := time.Now()
			name, err := ask(p.Addr())
			elapsed := time.Since(start)
			if err != nil || name != "good" {
				t.Fatalf("ask = %q, %v; want good", name, err)
			}
			if elapsed < timeout || elapsed > 10*timeout {
				t.Errorf("request took %v, want about the connect timeout %v", elapsed, timeout)
			}
			if n := dials.Count(slow); n != 1 {
				t.Errorf("slow backend dialed %d times, want 1", n)
			}
			if st, _ := statsFor(p.Stats(), slow); st.Failures != 1 || st.Active != 0 {
				t.Errorf("slow backend stats = %+v, want 1 failure, 0 active", st)
			}
		})
	}
}

func TestTCPHalfClose(t *testing.T) {
	checkGoroutines(t)
	a := newLineServer(t, "a")
	p := startTCP(t, TCPConfig{Config: Config{Scheduler: &fakeSched{}}}, backendsOf(a.Addr()))

	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "one\ntwo\n"); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// The server answers after it has seen our FIN, and only then closes.
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := "a one\na two\nbye a\n"; string(got) != want {
		t.Errorf("read %q, want %q", got, want)
	}
}

func TestTCPServerCloseReachesClient(t *testing.T) {
	checkGoroutines(t)
	// A backend that sends a greeting and closes at once, before the
	// client says anything.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "hello and goodbye")
			c.Close()
		}
	}()
	p := startTCP(t, TCPConfig{Config: Config{Scheduler: &fakeSched{}}}, backendsOf(addrPortOf(ln.Addr())))
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "hello and goodbye" {
		t.Errorf("ReadAll = %q, %v", got, err)
	}
}

func TestTCPSetBackendsRemovalIsGraceful(t *testing.T) {
	checkGoroutines(t)
	a, b := newLineServer(t, "a"), newLineServer(t, "b")
	p := startTCP(t, TCPConfig{Config: Config{Scheduler: &fakeSched{}}}, backendsOf(a.Addr(), b.Addr()))

	// An established connection to a.
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	exchange := func(msg string) string {
		t.Helper()
		if _, err := io.WriteString(c, msg+"\n"); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(line)
	}
	if got := exchange("before"); got != "a before" {
		t.Fatalf("first answer %q, want from a", got)
	}

	p.SetBackends(backendsOf(b.Addr()))
	for i := range 5 {
		if name, err := ask(p.Addr()); err != nil || name != "b" {
			t.Fatalf("new request %d after removal = %q, %v; want b", i, name, err)
		}
	}
	if got := exchange("after"); got != "a after" {
		t.Errorf("established connection answer %q, want a after", got)
	}
	if st, ok := statsFor(p.Stats(), a.Addr()); !ok || st.InSet || st.Active != 1 {
		t.Errorf("removed backend stats = %+v (listed %v), want listed, not in set, 1 active", st, ok)
	}
	c.Close()
	eventually(t, "removed backend to be forgotten", func() bool {
		_, ok := statsFor(p.Stats(), a.Addr())
		return !ok
	})
}

func TestTCPAffinity(t *testing.T) {
	const timeout = 10 * time.Second
	for _, tc := range []struct {
		name string
		// between runs between the first request (which goes to a) and
		// the second.
		between func(t *testing.T, p *TCPProxy, clock *fakeClock, a, b, c netip.AddrPort)
		want    string
	}{
		{"pinned within timeout", func(_ *testing.T, _ *TCPProxy, clock *fakeClock, _, _, _ netip.AddrPort) {
			clock.Advance(timeout - time.Second)
		}, "a"},
		{"timeout refreshed by each new connection", func(t *testing.T, p *TCPProxy, clock *fakeClock, _, _, _ netip.AddrPort) {
			for range 3 {
				clock.Advance(timeout - time.Second)
				if name, err := ask(p.Addr()); err != nil || name != "a" {
					t.Fatalf("refresh request got %q, %v", name, err)
				}
			}
			clock.Advance(timeout - time.Second)
		}, "a"},
		{"expires after timeout", func(_ *testing.T, _ *TCPProxy, clock *fakeClock, _, _, _ netip.AddrPort) {
			clock.Advance(timeout)
		}, "b"},
		{"backend removed", func(_ *testing.T, p *TCPProxy, _ *fakeClock, _, b, c netip.AddrPort) {
			p.SetBackends(backendsOf(b, c))
		}, "b"},
		{"backend quiesced (weight 0)", func(_ *testing.T, p *TCPProxy, _ *fakeClock, a, b, c netip.AddrPort) {
			p.SetBackends([]sched.Backend{{Addr: a, Weight: 0}, {Addr: b, Weight: 1}, {Addr: c, Weight: 1}})
		}, "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			a, b, c := newLineServer(t, "a"), newLineServer(t, "b"), newLineServer(t, "c")
			clock := newFakeClock()
			p := startTCP(t, TCPConfig{Config: Config{
				Scheduler: &fakeSched{}, AffinityTimeout: timeout, Now: clock.Now,
			}}, backendsOf(a.Addr(), b.Addr(), c.Addr()))
			if name, err := ask(p.Addr()); err != nil || name != "a" {
				t.Fatalf("first request = %q, %v; want a", name, err)
			}
			tc.between(t, p, clock, a.Addr(), b.Addr(), c.Addr())
			for i := range 3 {
				if name, err := ask(p.Addr()); err != nil || name != tc.want {
					t.Fatalf("request %d = %q, %v; want %s", i, name, err, tc.want)
				}
			}
		})
	}
}

func TestTCPShutdown(t *testing.T) {
	for _, tc := range []struct {
		name     string
		grace    time.Duration
		finish   bool // client finishes its exchange during the grace
		wantErr  error
		wantRead string
	}{
		{"Close ends open connections", 0, false, nil, ""},
		{"grace lets a connection finish", 5 * time.Second, true, nil, "a last\nbye a\n"},
		{"grace runs out", 100 * time.Millisecond, false, context.DeadlineExceeded, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			a := newLineServer(t, "a")
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			p, err := NewTCPProxy(ln, TCPConfig{Config: Config{Scheduler: &fakeSched{}}})
			if err != nil {
				t.Fatal(err)
			}
			p.SetBackends(backendsOf(a.Addr()))
			served := make(chan error, 1)
			go func() { served <- p.Serve(context.Background()) }()

			c, err := net.Dial("tcp", p.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "first\n")
			r := bufio.NewReader(c)
			if line, err := r.ReadString('\n'); err != nil || line != "a first\n" {
				t.Fatalf("first exchange %q, %v", line, err)
			}

			ctx := context.Background()
			var cancel context.CancelFunc = func() {}
			if tc.grace > 0 {
				ctx, cancel = context.WithTimeout(ctx, tc.grace)
			}
			defer cancel()
			shut := make(chan error, 1)
			go func() {
				if tc.grace == 0 {
					shut <- p.Close()
				} else {
					shut <- p.Shutdown(ctx)
				}
			}()
			// The listener goes away at once.
			eventually(t, "listener to close", func() bool {
				c2, err := net.Dial("tcp", p.Addr().String())
				if err == nil {
					c2.Close()
				}
				return err != nil
			})
			if tc.finish {
				io.WriteString(c, "last\n")
				c.(*net.TCPConn).CloseWrite()
			}
			rest, _ := io.ReadAll(r)
			if string(rest) != tc.wantRead {
				t.Errorf("client read %q after shutdown began, want %q", rest, tc.wantRead)
			}
			if err := <-shut; !errors.Is(err, tc.wantErr) {
				t.Errorf("shutdown error = %v, want %v", err, tc.wantErr)
			}
			if err := <-served; err != nil {
				t.Errorf("Serve = %v", err)
			}
		})
	}
}

func TestTCPServeStopsWithContext(t *testing.T) {
	checkGoroutines(t)
	a := newLineServer(t, "a")
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewTCPProxy(ln, TCPConfig{Config: Config{Scheduler: &fakeSched{}}})
	if err != nil {
		t.Fatal(err)
	}
	p.SetBackends(backendsOf(a.Addr()))
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx) }()
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "x\n")
	bufio.NewReader(c).ReadString('\n')
	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve = %v", err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("client connection still open after Serve returned")
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close after Serve = %v", err)
	}
}

type destRecorder struct {
	*fakeSched
	mu           sync.Mutex
	client, dest netip.AddrPort
}

func (d *destRecorder) Pick(c sched.Conn, usable func(netip.AddrPort) bool, active func(netip.AddrPort) int) (netip.AddrPort, bool) {
	d.mu.Lock()
	d.client, d.dest = c.Client, c.Dest
	d.mu.Unlock()
	return d.fakeSched.Pick(c, usable, active)
}

func TestTCPSetBackendsConcurrentWithTraffic(t *testing.T) {
	checkGoroutines(t)
	a, b, c := newLineServer(t, "a"), newLineServer(t, "b"), newLineServer(t, "c")
	p := startTCP(t, TCPConfig{Config: Config{Scheduler: &fakeSched{}}}, backendsOf(a.Addr(), b.Addr(), c.Addr()))
	sets := [][]sched.Backend{
		backendsOf(a.Addr(), b.Addr()),
		backendsOf(b.Addr(), c.Addr()),
		backendsOf(c.Addr(), a.Addr(), b.Addr()),
	}
	stop := make(chan struct{})
	churned := make(chan struct{})
	go func() {
		defer close(churned)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			p.SetBackends(sets[i%len(sets)])
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				if _, err := ask(p.Addr()); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-churned
	close(errs)
	for err := range errs {
		t.Errorf("request failed during backend churn: %v", err)
	}
}
