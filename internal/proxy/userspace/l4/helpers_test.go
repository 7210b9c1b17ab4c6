package l4

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portal-net/portal/internal/proxy/userspace/sched"
)

// fakeSched is round robin over the usable backends, in the order given.
type fakeSched struct {
	mu    sync.Mutex
	set   []sched.Backend
	next  int
	picks int
}

func (f *fakeSched) Update(bs []sched.Backend) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set = append([]sched.Backend(nil), bs...)
	f.next = 0
}

func (f *fakeSched) Pick(_ sched.Conn, usable func(netip.AddrPort) bool, _ func(netip.AddrPort) int) (netip.AddrPort, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.picks++
	for i := range f.set {
		b := f.set[(f.next+i)%len(f.set)]
		if b.Weight > 0 && usable(b.Addr) {
			f.next = (f.next + i + 1) % len(f.set)
			return b.Addr, true
		}
	}
	return netip.AddrPort{}, false
}

// fakeClock is a settable clock for back-off and affinity.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// dialRecorder counts dial attempts per address and can make some fail.
type dialRecorder struct {
	mu    sync.Mutex
	count map[string]int
	// fail, if set, is consulted before dialing; a non-nil error is
	// returned as the dial's result.
	fail func(ctx context.Context, addr string, attempt int) error
}

func (d *dialRecorder) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	if d.count == nil {
		d.count = map[string]int{}
	}
	d.count[addr]++
	n := d.count[addr]
	d.mu.Unlock()
	if d.fail != nil {
		if err := d.fail(ctx, addr, n); err != nil {
			return nil, err
		}
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

func (d *dialRecorder) Count(addr netip.AddrPort) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.count[addr.String()]
}

// checkGoroutines fails the test if, once every later cleanup has run,
// more goroutines are left than when it was called.
func checkGoroutines(t *testing.T) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= base {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutines: %d at start, %d after cleanup\n%s", base, n, buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// lineServer is a TCP backend on 127.0.0.1 that answers each line with
// "<name> <line>" and, when the client half-closes, "bye <name>".
type lineServer struct {
	name string
	ln   net.Listener
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func newLineServer(t *testing.T, name string) *lineServer {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &lineServer{name: name, ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

func (s *lineServer) Addr() netip.AddrPort { return addrPortOf(s.ln.Addr()) }

func (s *lineServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					if errors.Is(err, io.EOF) {
						fmt.Fprintf(c, "bye %s\n", s.name)
					}
					return
				}
				fmt.Fprintf(c, "%s %s", s.name, line)
			}
		}()
	}
}

func (s *lineServer) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// deadAddr returns a loopback port with nothing listening on it.
func deadAddr(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := addrPortOf(ln.Addr())
	ln.Close()
	return a
}

func backendsOf(addrs ...netip.AddrPort) []sched.Backend {
	out := make([]sched.Backend, len(addrs))
	for i, a := range addrs {
		out[i] = sched.Backend{Addr: a, Weight: 1}
	}
	return out
}

// startTCP starts a TCPProxy on 127.0.0.1 and closes it at cleanup.
func startTCP(t *testing.T, cfg TCPConfig, backends []sched.Backend) *TCPProxy {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewTCPProxy(ln, cfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	serve(t, p, backends)
	return p
}

// serve gives p its backends and serves it until the test ends, then
// closes it and checks that both Close and Serve were clean.
func serve(t *testing.T, p interface {
	SetBackends([]sched.Backend)
	Serve(context.Context) error
	Close() error
}, backends []sched.Backend) {
	t.Helper()
	p.SetBackends(backends)
	done := make(chan error, 1)
	go func() { done <- p.Serve(context.Background()) }()
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// ask opens a connection to addr, sends one line and returns the name of
// the backend that answered.
func ask(addr net.Addr) (string, error) {
	c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "hi\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	name, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
	if rest != "hi" {
		return "", fmt.Errorf("unexpected answer %q", line)
	}
	return name, nil
}

func statsFor(st Stats, a netip.AddrPort) (BackendStats, bool) {
	for _, b := range st.Backends {
		if b.Addr == a {
			return b, true
		}
	}
	return BackendStats{}, false
}

// eventually polls cond for up to 3s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
