package agnhost

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a concurrency-safe stdout/stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness runs one agnhost command in-process. Every port the command
// asks for is bound on 127.0.0.1 with an ephemeral port instead.
type harness struct {
	t              *testing.T
	stdout, stderr *syncBuffer
	env            env
	cancel         context.CancelFunc
	done           chan int

	mu    sync.Mutex
	addrs map[string]string // "tcp:8080" -> "127.0.0.1:41234"
}

func newHarness(t *testing.T, environ ...string) *harness {
	h := &harness{t: t, stdout: &syncBuffer{}, stderr: &syncBuffer{}, addrs: map[string]string{}}
	loopback := func(network, addr string) (string, string) {
		_, port, _ := net.SplitHostPort(addr)
		return network + ":" + port, "127.0.0.1:0"
	}
	h.env = env{
		stdout: h.stdout, stderr: h.stderr,
		getenv: func(k string) string {
			for _, kv := range environ {
				if n, v, _ := strings.Cut(kv, "="); n == k {
					return v
				}
			}
			return ""
		},
		environ:  func() []string { return environ },
		hostname: func() (string, error) { return "pod-a", nil },
		now:      time.Now,
		listen: func(network, addr string) (net.Listener, error) {
			key, a := loopback(network, addr)
			ln, err := net.Listen(network, a)
			if err == nil {
				h.mu.Lock()
				h.addrs[key] = ln.Addr().String()
				h.mu.Unlock()
			}
			return ln, err
		},
		listenPacket: func(network, addr string) (net.PacketConn, error) {
			key, a := loopback(network, addr)
			pc, err := net.ListenPacket(network, a)
			if err == nil {
				h.mu.Lock()
				h.addrs[key] = pc.LocalAddr().String()
				h.mu.Unlock()
			}
			return pc, err
		},
	}
	return h
}

func (h *harness) start(args ...string) {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan int, 1)
	go func() { h.done <- run(ctx, args, h.env) }()
	h.t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			h.t.Errorf("agnhost %v did not stop", args)
		}
	})
}

// addr waits until the command bound the port it was asked for.
func (h *harness) addr(key string) string {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		a := h.addrs[key]
		h.mu.Unlock()
		if a != "" {
			return a
		}
		select {
		case code := <-h.done:
			h.t.Fatalf("command exited with %d before listening on %s; stderr: %s", code, key, h.stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
	h.t.Fatalf("nothing listening on %s; stderr: %s", key, h.stderr)
	return ""
}

// wait returns the exit code of the command once it ends.
func (h *harness) wait() int {
	h.t.Helper()
	select {
	case code := <-h.done:
		h.done <- code // for Cleanup
		return code
	case <-time.After(10 * time.Second):
		h.t.Fatal("command did not exit")
		return -1
	}
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func udpAsk(t *testing.T, addr, msg string) (reply, local string) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("udp %q: %v", msg, err)
	}
	return string(buf[:n]), c.LocalAddr().String()
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"nettest-nope"}} {
		var out, errb bytes.Buffer
		e := osEnv()
		e.stdout, e.stderr = &out, &errb
		if code := run(context.Background(), args, e); code != 1 {
			t.Errorf("%v: exit %d, want 1", args, code)
		}
		if !strings.Contains(errb.String(), "Usage:") || !strings.Contains(errb.String(), "netexec") {
			t.Errorf("%v: stderr %q lacks usage", args, errb.String())
		}
	}
}

func TestNetexecHTTP(t *testing.T) {
	h := newHarness(t)
	h.start("netexec", "--http-port=8080", "--udp-port=8081")
	base := "http://" + h.addr("tcp:8080")

	tests := []struct {
		path     string
		code     int
		body     string // exact, unless prefix is set
		prefix   bool
		location string
	}{
		{path: "/", code: 200, body: "NOW: ", prefix: true},
		{path: "/echo?msg=hello%20world", code: 200, body: "hello world"},
		{path: "/echo?msg=teapot&code=418", code: 418, body: "teapot"},
		{path: "/hostname", code: 200, body: "pod-a"},
		{path: "/hostName", code: 200, body: "pod-a"},
		{path: "/clientip", code: 200, body: "127.0.0.1:", prefix: true},
		{path: "/healthz", code: 200},
		{path: "/readyz", code: 200},
		{path: "/redirect?location=/echo%3Fmsg%3Dx&code=307", code: 307, location: "/echo?msg=x"},
		{path: "/shell?cmd=id", code: 403, body: "/shell is disabled", prefix: true},
		{path: "/dial?host=127.0.0.1&port=1", code: 400, body: "request parameter not specified", prefix: true},
		{path: "/dial?request=x&host=127.0.0.1&port=1&protocol=sctp", code: 400, body: "unsupported protocol", prefix: true},
	}
	for _, tc := range tests {
		code, body, hdr := get(t, base+tc.path)
		if code != tc.code {
			t.Errorf("%s: status %d, want %d (%q)", tc.path, code, tc.code, body)
		}
		if tc.prefix && !strings.HasPrefix(body, tc.body) || !tc.prefix && tc.body != "" && body != tc.body {
			t.Errorf("%s: body %q, want %q", tc.path, body, tc.body)
		}
		if tc.location != "" && hdr.Get("Location") != tc.location {
			t.Errorf("%s: Location %q, want %q", tc.path, hdr.Get("Location"), tc.location)
		}
	}
	if out := h.stdout.String(); !strings.Contains(out, "GET /echo?msg=hello world&code=") || !strings.Contains(out, "GET /hostname") {
		t.Errorf("requests not logged:\n%s", out)
	}
}

func TestNetexecShellEnabled(t *testing.T) {
	h := newHarness(t, "AGNHOST_ENABLE_SHELL=1")
	h.start("netexec", "--udp-port=-1")
	_, body, _ := get(t, "http://"+h.addr("tcp:8080")+"/shell?cmd=echo%20hi")
	var res map[string]string
	if err := json.Unmarshal([]byte(body), &res); err != nil || res["output"] != "hi\n" {
		t.Fatalf("shell: %q, %v", body, err)
	}
}

func TestNetexecUDP(t *testing.T) {
	h := newHarness(t)
	h.start("netexec", "--http-port=8080", "--udp-port=8081")
	addr := h.addr("udp:8081")
	if got, _ := udpAsk(t, addr, "hostname"); got != "pod-a" {
		t.Errorf("hostname: %q", got)
	}
	if got, _ := udpAsk(t, addr, "echo Hello There\n"); got != "hello there" {
		t.Errorf("echo: %q", got)
	}
	if got, local := udpAsk(t, addr, "clientip"); got != local {
		t.Errorf("clientip: %q, want %q", got, local)
	}
}

func TestNetexecDial(t *testing.T) {
	// A local target: HTTP and UDP servers of a second netexec.
	target := newHarness(t)
	target.start("netexec", "--http-port=9000", "--udp-port=9001")
	_, httpPort, _ := net.SplitHostPort(target.addr("tcp:9000"))
	_, udpPort, _ := net.SplitHostPort(target.addr("udp:9001"))
	// A closed port for errors.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	_, closedPort, _ := net.SplitHostPort(l.Addr().String())
	l.Close()

	h := newHarness(t)
	h.start("netexec", "--udp-port=-1")
	base := "http://" + h.addr("tcp:8080")
	type result struct {
		Responses []string `json:"responses"`
		Errors    []string `json:"errors"`
	}
	tests := []struct {
		query      string
		responses  []string
		wantErrors int
	}{
		{fmt.Sprintf("request=hostname&host=127.0.0.1&port=%s&protocol=http&tries=2", httpPort), []string{"pod-a", "pod-a"}, 0},
		{fmt.Sprintf("request=echo?msg=x&host=127.0.0.1&port=%s", httpPort), []string{"x"}, 0},
		{fmt.Sprintf("request=hostname&host=127.0.0.1&port=%s&protocol=udp&tries=3", udpPort), []string{"pod-a", "pod-a", "pod-a"}, 0},
		{fmt.Sprintf("request=echo%%20hi&host=127.0.0.1&port=%s&protocol=udp", udpPort), []string{"hi"}, 0},
		{fmt.Sprintf("request=hostname&host=127.0.0.1&port=%s&tries=2", closedPort), nil, 2},
	}
	for _, tc := range tests {
		code, body, _ := get(t, base+"/dial?"+tc.query)
		var res result
		if err := json.Unmarshal([]byte(body), &res); err != nil || code != 200 {
			t.Fatalf("%s: %d %q %v", tc.query, code, body, err)
		}
		if fmt.Sprint(res.Responses) != fmt.Sprint(tc.responses) || len(res.Errors) != tc.wantErrors {
			t.Errorf("%s: got %+v, want responses %v and %d errors", tc.query, res, tc.responses, tc.wantErrors)
		}
	}
}

func TestNetexecExit(t *testing.T) {
	for _, tc := range []struct {
		query string
		code  int
	}{{"code=3&timeout=1s", 3}, {"code=0", 0}, {"code=42&timeout=0", 42}} {
		h := newHarness(t)
		h.start("netexec", "--udp-port=-1")
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
		if resp, err := c.Get("http://" + h.addr("tcp:8080") + "/exit?" + tc.query); err == nil {
			resp.Body.Close()
		}
		if code := h.wait(); code != tc.code {
			t.Errorf("/exit?%s: exit %d, want %d", tc.query, code, tc.code)
		}
	}
}

func TestNetexecHTTPOverride(t *testing.T) {
	h := newHarness(t)
	h.start("netexec", "--udp-port=-1", "--http-override=/echo?msg=overridden")
	_, body, _ := get(t, "http://"+h.addr("tcp:8080")+"/hostname")
	if body != "overridden" {
		t.Fatalf("body %q", body)
	}
}

func TestNetexecSIGTERM(t *testing.T) {
	h := newHarness(t)
	h.start("netexec", "--delay-shutdown=1")
	base := "http://" + h.addr("tcp:8080")
	start := time.Now()
	h.cancel()
	// During the delay the server still answers but is not ready.
	time.Sleep(100 * time.Millisecond)
	if code, _, _ := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz while terminating: %d, want 503", code)
	}
	if code, _, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("healthz while terminating: %d, want 200", code)
	}
	if code := h.wait(); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("exited after %v, before the 1s delay", d)
	}
}

func TestNetexecBadFlags(t *testing.T) {
	for _, args := range [][]string{{"netexec", "--bogus"}, {"netexec", "extra"}, {"netexec", "--udp-listen-addresses=nope"}} {
		h := newHarness(t)
		if code := run(context.Background(), args, h.env); code != 1 {
			t.Errorf("%v: exit %d, want 1", args, code)
		}
	}
}

func TestServeHostname(t *testing.T) {
	t.Run("http", func(t *testing.T) {
		h := newHarness(t)
		h.start("serve-hostname", "--close")
		resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}).Get("http://" + h.addr("tcp:9376") + "/anything")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// --close: the server ends the connection after each response.
		if resp.StatusCode != 200 || string(body) != "pod-a" || !resp.Close {
			t.Fatalf("got %d %q close=%v", resp.StatusCode, body, resp.Close)
		}
	})
	t.Run("tcp and udp", func(t *testing.T) {
		h := newHarness(t)
		h.start("serve-hostname", "--port=7000", "--tcp", "--udp", "--http=false")
		c, err := net.DialTimeout("tcp", h.addr("tcp:7000"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(b) != "pod-a" {
			t.Fatalf("tcp: %q %v", b, err)
		}
		if got, _ := udpAsk(t, h.addr("udp:7000"), "anything"); got != "pod-a" {
			t.Fatalf("udp: %q", got)
		}
	})
	t.Run("sigterm", func(t *testing.T) {
		h := newHarness(t)
		h.start("serve-hostname")
		h.addr("tcp:9376")
		h.cancel()
		if code := h.wait(); code != 0 {
			t.Fatalf("exit %d", code)
		}
	})
	t.Run("tcp with http", func(t *testing.T) {
		h := newHarness(t)
		if code := run(context.Background(), []string{"serve-hostname", "--tcp"}, h.env); code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
	})
}

func TestPause(t *testing.T) {
	h := newHarness(t)
	h.start("pause")
	select {
	case code := <-h.done:
		t.Fatalf("pause exited (%d) before SIGTERM", code)
	case <-time.After(200 * time.Millisecond):
	}
	h.cancel()
	if code := h.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(h.stdout.String(), "Paused") {
		t.Fatalf("stdout %q", h.stdout)
	}
}

func TestLiveness(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	now := time.Now()
	h.env.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h.start("liveness")
	url := "http://" + h.addr("tcp:8080") + "/healthz"
	if code, body, _ := get(t, url); code != 200 || body != "ok" {
		t.Fatalf("fresh: %d %q", code, body)
	}
	mu.Lock()
	now = now.Add(11 * time.Second)
	mu.Unlock()
	if code, body, _ := get(t, url); code != 500 || !strings.HasPrefix(body, "error: ") {
		t.Fatalf("after 11s: %d %q", code, body)
	}
}

func TestPorter(t *testing.T) {
	h := newHarness(t, "SERVE_PORT_8001=foo", "SERVE_TCP_PORT_8002=bar", "OTHER=x")
	h.start("porter")
	for key, want := range map[string]string{"tcp:8001": "foo", "tcp:8002": "bar"} {
		if _, body, _ := get(t, "http://"+h.addr(key)+"/"); body != want {
			t.Errorf("%s: %q, want %q", key, body, want)
		}
	}
}

// SERVE_TLS_PORT_<port> answers over TLS with a certificate for 127.0.0.1.
func TestPorterTLS(t *testing.T) {
	h := newHarness(t, "SERVE_TLS_PORT_8443=secret")
	h.start("porter")
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed, checked below
	resp, err := c.Get("https://" + h.addr("tcp:8443") + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "secret" {
		t.Errorf("TLS port answered %q", b)
	}
	cert := resp.TLS.PeerCertificates[0]
	if err := cert.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("certificate: %v", err)
	}
}

// --json-response, as the upstream proxy specs run it.
func TestPorterJSON(t *testing.T) {
	h := newHarness(t, "SERVE_PORT_8001=foo")
	h.start("porter", "--json-response")
	if _, body, _ := get(t, "http://"+h.addr("tcp:8001")+"/some/path"); body != `{"Method":"GET","Body":"foo"}` {
		t.Errorf("json response %q", body)
	}
}

func TestTestWebserver(t *testing.T) {
	h := newHarness(t)
	h.env.root = t.TempDir()
	if err := os.MkdirAll(filepath.Join(h.env.root, "results"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.env.root, "results", "wheezy_udp@kubernetes.default"), []byte("OK"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.start("test-webserver")
	base := "http://" + h.addr("tcp:80")
	if code, body, _ := get(t, base+"/results/wheezy_udp@kubernetes.default"); code != 200 || body != "OK" {
		t.Errorf("file: %d %q", code, body)
	}
	if code, _, _ := get(t, base+"/results/missing"); code != 404 {
		t.Errorf("missing file: %d", code)
	}
	if code, _, _ := get(t, base+"/../../etc/passwd"); code != 404 {
		t.Errorf("a path above the root: %d", code)
	}
}

func TestDNSSuffixAndServerList(t *testing.T) {
	h := newHarness(t)
	h.env.root = t.TempDir()
	if err := os.MkdirAll(filepath.Join(h.env.root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := "# generated\nnameserver 1.1.1.1\nnameserver 10.96.0.10\nsearch old.example\nsearch resolv.conf.local ns.svc.cluster.local\noptions ndots:5\n"
	if err := os.WriteFile(filepath.Join(h.env.root, "etc", "resolv.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	for cmd, want := range map[string]string{
		"dns-suffix":      "resolv.conf.local,ns.svc.cluster.local\n",
		"dns-server-list": "1.1.1.1,10.96.0.10\n",
	} {
		var out bytes.Buffer
		e := h.env
		e.stdout = &out
		if code := run(context.Background(), []string{cmd}, e); code != 0 || out.String() != want {
			t.Errorf("%s: exit %d, %q, want %q", cmd, code, out.String(), want)
		}
	}
}
