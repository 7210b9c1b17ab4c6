package nginx

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

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

type server struct {
	base   string
	stdout *syncBuffer
	cancel context.CancelFunc
	done   chan int
}

// start runs nginx in-process on an ephemeral loopback port.
func start(t *testing.T, args ...string) *server {
	t.Helper()
	s := &server{stdout: &syncBuffer{}, done: make(chan int, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	addrc := make(chan net.Addr, 1)
	args = append([]string{"--listen", "127.0.0.1:0"}, args...)
	stderr := &syncBuffer{}
	go func() { s.done <- run(ctx, args, s.stdout, stderr, func(a net.Addr) { addrc <- a }) }()
	select {
	case a := <-addrc:
		s.base = "http://" + a.String()
	case code := <-s.done:
		t.Fatalf("nginx exited %d: %s", code, stderr)
	case <-time.After(5 * time.Second):
		t.Fatal("nginx did not listen")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			t.Error("nginx did not stop")
		}
	})
	return s
}

func (s *server) get(t *testing.T, method, p string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, s.base+p, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestBuiltinPages(t *testing.T) {
	s := start(t, "--root", filepath.Join(t.TempDir(), "absent"))
	tests := []struct {
		method, path string
		code         int
		body         string
		location     string
	}{
		{"GET", "/", 200, "<title>Welcome to nginx!</title>", ""},
		{"GET", "/index.html", 200, "<h1>Welcome to nginx!</h1>", ""},
		{"GET", "/50x.html", 200, "An error occurred.", ""},
		{"GET", "/nope", 404, "<title>404 Not Found</title>", ""},
		{"GET", "/../../etc/passwd", 404, "404 Not Found", ""},
		{"POST", "/", 405, "405 Method Not Allowed", ""},
	}
	for _, tc := range tests {
		resp, body := s.get(t, tc.method, tc.path)
		if resp.StatusCode != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("%s %s: %d %q, want %d containing %q", tc.method, tc.path, resp.StatusCode, body, tc.code, tc.body)
		}
		if got := resp.Header.Get("Server"); got != "nginx" {
			t.Errorf("%s %s: Server %q", tc.method, tc.path, got)
		}
	}
	resp, body := s.get(t, "HEAD", "/")
	if resp.StatusCode != 200 || body != "" || resp.ContentLength <= 0 {
		t.Errorf("HEAD /: %d %q len %d", resp.StatusCode, body, resp.ContentLength)
	}
}

func TestMountedRoot(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "index.html"), []byte("mine"), 0o644)
	os.MkdirAll(filepath.Join(root, "sub"), 0o755)
	os.MkdirAll(filepath.Join(root, "empty"), 0o755)
	os.WriteFile(filepath.Join(root, "sub", "index.html"), []byte("sub page"), 0o644)
	os.WriteFile(filepath.Join(root, "data.txt"), []byte("0123456789"), 0o644)
	s := start(t, "--root", root)
	tests := []struct {
		path     string
		hdr      []string
		code     int
		body     string
		location string
	}{
		{path: "/", code: 200, body: "mine"},
		{path: "/data.txt", code: 200, body: "0123456789"},
		{path: "/data.txt", hdr: []string{"Range", "bytes=2-4"}, code: 206, body: "234"},
		{path: "/sub/", code: 200, body: "sub page"},
		{path: "/sub", code: 301, location: "/sub/"},
		{path: "/empty/", code: 403, body: "403 Forbidden"},
		{path: "/missing.html", code: 404, body: "404 Not Found"},
	}
	for _, tc := range tests {
		resp, body := s.get(t, "GET", tc.path, tc.hdr...)
		if resp.StatusCode != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("%s: %d %q, want %d containing %q", tc.path, resp.StatusCode, body, tc.code, tc.body)
		}
		if tc.location != "" && resp.Header.Get("Location") != tc.location {
			t.Errorf("%s: Location %q", tc.path, resp.Header.Get("Location"))
		}
	}
}

func TestAccessLog(t *testing.T) {
	s := start(t, "--root", filepath.Join(t.TempDir(), "absent"))
	s.get(t, "GET", "/nope?x=1", "User-Agent", "curl/8.5.0", "Referer", "http://r/")
	s.get(t, "GET", "/")
	lines := strings.Split(strings.TrimSpace(s.stdout.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log lines: %q", lines)
	}
	combined := regexp.MustCompile(`^127\.0\.0\.1 - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "GET /nope\?x=1 HTTP/1\.1" 404 \d+ "http://r/" "curl/8\.5\.0"$`)
	if !combined.MatchString(lines[0]) {
		t.Errorf("not combined format: %q", lines[0])
	}
	if !regexp.MustCompile(`"GET / HTTP/1\.1" 200 [1-9]\d* "-" "Go-http-client/1\.1"$`).MatchString(lines[1]) {
		t.Errorf("line 2: %q", lines[1])
	}
}

func TestGracefulStop(t *testing.T) {
	s := start(t)
	s.cancel()
	select {
	case code := <-s.done:
		s.done <- code
		if code != 0 {
			t.Fatalf("exit %d, want 0", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not stop")
	}
}

func TestArgs(t *testing.T) {
	tests := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"-v"}, 0, "nginx version: nginx/"},
		{[]string{"-t"}, 0, "test is successful"},
		{[]string{"--bogus"}, 1, ""},
		{[]string{"-g"}, 1, ""},
		{[]string{"--listen", "256.0.0.1:80"}, 1, ""},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		if code := run(context.Background(), tc.args, &out, &errb, nil); code != tc.code || !strings.Contains(out.String(), tc.out) {
			t.Errorf("%v: exit %d stdout %q, want %d containing %q", tc.args, code, out.String(), tc.code, tc.out)
		}
	}
	// "nginx -g 'daemon off;'" as in the image's cmd: accepted, serves.
	s := start(t, "-g", "daemon off;")
	if resp, _ := s.get(t, "GET", "/index.html"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
