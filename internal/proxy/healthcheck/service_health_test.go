package healthcheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// loopback opens every requested health check port on an ephemeral
// 127.0.0.1 port and remembers where, so tests probe "port 30001" without
// needing it free. Ports in refuse fail to bind.
type loopback struct {
	t       *testing.T
	mu      sync.Mutex
	addrs   map[uint16]string // requested port → real address
	asked   []string
	refuse  map[uint16]bool
	listens int
}

func newLoopback(t *testing.T) *loopback {
	return &loopback{t: t, addrs: map[uint16]string{}, refuse: map[uint16]bool{}}
}

func (l *loopback) listen(network, address string) (net.Listener, error) {
	_, p, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, _ := strconv.Atoi(p)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = append(l.asked, address)
	if l.refuse[uint16(port)] {
		return nil, fmt.Errorf("listen %s: %w", address, errors.New("address already in use"))
	}
	ln, err := net.Listen(network, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l.listens++
	l.addrs[uint16(port)] = ln.Addr().String()
	return ln, nil
}

func (l *loopback) url(port uint16) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return "http://" + l.addrs[port] + "/"
}

type probe struct {
	code    int
	body    serviceHealthBody
	raw     string
	headers http.Header
	err     error
}

func get(url string) probe {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return probe{err: err}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	p := probe{code: resp.StatusCode, raw: string(raw), headers: resp.Header}
	p.err = json.Unmarshal(raw, &p.body)
	return p
}

var (
	web = types.NamespacedName{Namespace: "shop", Name: "web"}
	api = types.NamespacedName{Namespace: "shop", Name: "api"}
)

type fixedHealth bool

func (f *fixedHealth) IsHealthy() bool { return bool(*f) }

// A load balancer probing the health check port sees 200 and the local
// endpoint count while this node has endpoints, 503 when it has none or
// the proxy is unhealthy; any path answers.
func TestServiceHealthStatusAndBody(t *testing.T) {
	lb := newLoopback(t)
	proxyOK := fixedHealth(true)
	s := NewServiceHealthServer(ServiceHealthConfig{Listen: lb.listen, Proxy: &proxyOK})
	defer s.Close()
	if err := s.SyncServices(map[types.NamespacedName]uint16{web: 30001}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		counts  map[types.NamespacedName]int
		proxyOK bool
		path    string
		code    int
		local   int
	}{
		{"no endpoints known yet", nil, true, "/", 503, 0},
		{"two local endpoints", map[types.NamespacedName]int{web: 2}, true, "/", 200, 2},
		{"any path", map[types.NamespacedName]int{web: 2}, true, "/healthz/anything", 200, 2},
		{"local endpoints gone", map[types.NamespacedName]int{api: 3}, true, "/", 503, 0},
		{"explicit zero", map[types.NamespacedName]int{web: 0}, true, "/", 503, 0},
		{"proxy unhealthy", map[types.NamespacedName]int{web: 1}, false, "/", 503, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxyOK = fixedHealth(tc.proxyOK)
			if tc.counts != nil {
				s.SyncEndpoints(tc.counts)
			}
			p := get(lb.url(30001)[:len(lb.url(30001))-1] + tc.path)
			if p.err != nil {
				t.Fatalf("probe: %v (body %q)", p.err, p.raw)
			}
			if p.code != tc.code {
				t.Errorf("status %d, want %d", p.code, tc.code)
			}
			b := p.body
			if b.Service.Namespace != "shop" || b.Service.Name != "web" || b.LocalEndpoints != tc.local || b.ServiceProxyHealthy != tc.proxyOK {
				t.Errorf("body %s", p.raw)
			}
			if ct := p.headers.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if n := p.headers.Get("X-Content-Type-Options"); n != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", n)
			}
		})
	}
}

// Ports open as services appear, move when the port changes, and close
// when services go; a port that cannot be bound is retried at the next
// sync without stopping the others.
func TestServiceHealthListenersFollowServices(t *testing.T) {
	lb := newLoopback(t)
	s := NewServiceHealthServer(ServiceHealthConfig{Listen: lb.listen})
	defer s.Close()
	s.SyncEndpoints(map[types.NamespacedName]int{web: 1, api: 1})

	lb.refuse[30002] = true
	err := s.SyncServices(map[types.NamespacedName]uint16{web: 30001, api: 30002})
	if err == nil {
		t.Error("a port that could not be bound was not reported")
	}
	if p := get(lb.url(30001)); p.code != 200 {
		t.Fatalf("web not served while api's port is taken: %+v", p)
	}

	lb.mu.Lock()
	lb.refuse[30002] = false
	lb.mu.Unlock()
	if err := s.SyncServices(map[types.NamespacedName]uint16{web: 30001, api: 30002}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if p := get(lb.url(30002)); p.code != 200 || p.body.Service.Name != "api" {
		t.Fatalf("api after retry: %+v", p)
	}
	if lb.listens != 2 {
		t.Errorf("%d listeners opened, want 2 (an unchanged service must keep its listener)", lb.listens)
	}

	oldWeb := lb.url(30001)
	if err := s.SyncServices(map[types.NamespacedName]uint16{web: 30011}); err != nil {
		t.Fatal(err)
	}
	if p := get(oldWeb); p.err == nil {
		t.Errorf("old web port still answers: %d", p.code)
	}
	if p := get(lb.url(30002)); p.err == nil {
		t.Errorf("deleted api's port still answers: %d", p.code)
	}
	if p := get(lb.url(30011)); p.code != 200 || p.body.Service.Name != "web" {
		t.Errorf("web on its new port: %+v", p)
	}

	s.Close()
	if p := get(lb.url(30011)); p.err == nil {
		t.Errorf("port answers after Close: %d", p.code)
	}
}

// Health check ports listen on the node IPs given, or on every address.
func TestServiceHealthBindAddresses(t *testing.T) {
	for _, tc := range []struct {
		ips  []netip.Addr
		want []string
	}{
		{nil, []string{":30001"}},
		{[]netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::1")}, []string{"192.0.2.10:30001", "[2001:db8::1]:30001"}},
	} {
		lb := newLoopback(t)
		s := NewServiceHealthServer(ServiceHealthConfig{Listen: lb.listen, NodeIPs: tc.ips})
		if err := s.SyncServices(map[types.NamespacedName]uint16{web: 30001}); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if fmt.Sprint(lb.asked) != fmt.Sprint(tc.want) {
			t.Errorf("NodeIPs %v: listened on %v, want %v", tc.ips, lb.asked, tc.want)
		}
	}
}
