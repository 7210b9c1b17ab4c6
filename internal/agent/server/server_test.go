package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/util/exec"

	"github.com/portal-net/portal/internal/agent/server"
	"github.com/portal-net/portal/internal/pki"
	"github.com/portal-net/portal/internal/podruntime"
)

// fakeRuntime serves logs and exec for pod default/web (uid "uid-web",
// container "app"); everything else is ErrNotFound.
type fakeRuntime struct {
	podruntime.Runtime
	current, previous []string
	// follow delivers lines appended while a follower is attached.
	follow chan string
}

func (f *fakeRuntime) Logs(ctx context.Context, uid types.UID, container string, opts podruntime.LogOptions, w io.Writer) error {
	if uid != "uid-web" || container != "app" {
		return podruntime.ErrNotFound
	}
	lines := f.current
	if opts.Previous {
		if f.previous == nil {
			return fmt.Errorf("previous terminated container %q not found: %w", container, podruntime.ErrNotFound)
		}
		lines = f.previous
	}
	if opts.TailLines >= 0 && int(opts.TailLines) < len(lines) {
		lines = lines[len(lines)-int(opts.TailLines):]
	}
	for _, l := range lines {
		if _, err := io.WriteString(w, l+"\n"); err != nil {
			return err
		}
	}
	if !opts.Follow {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case l, ok := <-f.follow:
			if !ok {
				return nil
			}
			if _, err := io.WriteString(w, l+"\n"); err != nil {
				return err
			}
		}
	}
}

// Exec understands a few commands: echo, fail <code> (to stderr), cat
// (stdin to stdout), and size (prints the first terminal size).
func (f *fakeRuntime) Exec(ctx context.Context, uid types.UID, container string, cmd []string, eio podruntime.ExecIO) (int, error) {
	if uid != "uid-web" || container != "app" {
		return 0, podruntime.ErrNotFound
	}
	switch cmd[0] {
	case "echo":
		fmt.Fprintln(eio.Stdout, strings.Join(cmd[1:], " "))
		return 0, nil
	case "fail":
		fmt.Fprintln(eio.Stderr, "failing on purpose")
		var code int
		fmt.Sscan(cmd[1], &code)
		return code, nil
	case "cat":
		_, err := io.Copy(eio.Stdout, eio.Stdin)
		return 0, err
	case "size":
		if !eio.TTY {
			return 0, errors.New("not a terminal")
		}
		select {
		case s := <-eio.Resize:
			fmt.Fprintf(eio.Stdout, "%dx%d\n", s.Width, s.Height)
			return 0, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return 127, nil
}

type env struct {
	url     string
	serving []byte // PEM of the agent's self-signed cert
	bundle  *pki.Bundle
	rt      *fakeRuntime
}

func start(t *testing.T) *env {
	t.Helper()
	bundle, err := pki.Ensure(pki.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := server.SelfSignedCert("node-a", []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	rt := &fakeRuntime{current: []string{"one", "two", "three"}, previous: []string{"old"}, follow: make(chan string)}
	srv := server.New(server.Config{
		Runtime: rt,
		Lookup: func(ns, pod string) (types.UID, bool) {
			return "uid-web", ns == "default" && pod == "web"
		},
		ClientCA: bundle.CAPool,
		TLSCert:  cert,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &env{
		url:     "https://" + ln.Addr().String(),
		serving: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}),
		bundle:  bundle, rt: rt,
	}
}

// restConfig is a client of the agent as user cn in groups.
func (e *env) restConfig(t *testing.T, b *pki.Bundle, cn string, groups ...string) *rest.Config {
	t.Helper()
	c := &rest.Config{Host: e.url, TLSClientConfig: rest.TLSClientConfig{CAData: e.serving}}
	if b != nil {
		certPEM, keyPEM, err := b.IssueClientCertificate(cn, groups, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		c.CertData, c.KeyData = certPEM, keyPEM
	}
	return c
}

func (e *env) apiClient(t *testing.T) *http.Client {
	t.Helper()
	hc, err := rest.HTTPClientFor(e.restConfig(t, e.bundle, server.APIServerClientName))
	if err != nil {
		t.Fatal(err)
	}
	return hc
}

func get(t *testing.T, hc *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestLogs(t *testing.T) {
	e := start(t)
	hc := e.apiClient(t)
	cases := []struct {
		name, query string
		code        int
		body        string
	}{
		{"all", "", 200, "one\ntwo\nthree\n"},
		{"tail", "?tailLines=2", 200, "two\nthree\n"},
		{"previous", "?previous=true", 200, "old\n"},
		{"bad tail", "?tailLines=x", 400, `invalid tailLines`},
		{"unknown container", "", 404, `container \"nope\"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			container := "app"
			if c.name == "unknown container" {
				container = "nope"
			}
			code, body := get(t, hc, e.url+"/containerLogs/default/web/"+container+c.query)
			if code != c.code || !strings.Contains(body, c.body) {
				t.Errorf("got %d %q, want %d containing %q", code, body, c.code, c.body)
			}
			if code != 200 {
				var st metav1.Status
				if err := json.Unmarshal([]byte(body), &st); err != nil || int(st.Code) != code {
					t.Errorf("error body is not a Status with code %d: %q", code, body)
				}
			}
		})
	}
	if code, body := get(t, hc, e.url+"/containerLogs/default/other/app"); code != 404 || !strings.Contains(body, "default/other is not running on this node") {
		t.Errorf("unknown pod: %d %q", code, body)
	}
}

func TestLogsFollowStreams(t *testing.T) {
	e := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/containerLogs/default/web/app?follow=true&tailLines=1", nil)
	resp, err := e.apiClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	readLine := func() string {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading followed log: %v", err)
		}
		return l
	}
	if l := readLine(); l != "three\n" {
		t.Fatalf("first line %q", l)
	}
	// Each new line arrives while the stream is still open: it is flushed,
	// not buffered until the end.
	for _, want := range []string{"four", "five"} {
		select {
		case e.rt.follow <- want:
		case <-ctx.Done():
			t.Fatal("follower gone")
		}
		if l := readLine(); l != want+"\n" {
			t.Fatalf("got %q, want %q", l, want)
		}
	}
	close(e.rt.follow)
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Errorf("after the attempt ended: %q %v", rest, err)
	}
}

func execURL(t *testing.T, base string, cmd []string, stdin, stdout, stderr, tty bool) *url.URL {
	t.Helper()
	q := url.Values{"command": cmd}
	for k, v := range map[string]bool{"stdin": stdin, "stdout": stdout, "stderr": stderr, "tty": tty} {
		if v {
			q.Set(k, "true")
		}
	}
	u, err := url.Parse(base + "/exec/default/web/app?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// sizeQueue hands out one terminal size.
type sizeQueue struct{ once sync.Once }

func (q *sizeQueue) Next() *remotecommand.TerminalSize {
	var s *remotecommand.TerminalSize
	q.once.Do(func() { s = &remotecommand.TerminalSize{Width: 132, Height: 43} })
	if s == nil {
		time.Sleep(time.Hour) // no more resizes; the session ends first
	}
	return s
}

func TestExec(t *testing.T) {
	e := start(t)
	cfg := e.restConfig(t, e.bundle, server.APIServerClientName)
	cases := []struct {
		name                       string
		cmd                        []string
		stdin                      string
		tty                        bool
		wantOut, wantErr, wantFail string
		wantCode                   int
	}{
		{name: "stdout", cmd: []string{"echo", "hello", "world"}, wantOut: "hello world\n"},
		{name: "exit code and stderr", cmd: []string{"fail", "3"}, wantErr: "failing on purpose\n", wantCode: 3},
		{name: "stdin", cmd: []string{"cat"}, stdin: "typed input\n", wantOut: "typed input\n"},
		{name: "tty resize", cmd: []string{"size"}, tty: true, wantOut: "132x43\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := execURL(t, e.url, c.cmd, c.stdin != "", true, !c.tty, c.tty)
			ex, err := remotecommand.NewWebSocketExecutor(cfg, "GET", u.String())
			if err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			opts := remotecommand.StreamOptions{Stdout: &stdout, Tty: c.tty}
			if !c.tty {
				opts.Stderr = &stderr
			}
			if c.stdin != "" {
				opts.Stdin = strings.NewReader(c.stdin)
			}
			if c.tty {
				opts.TerminalSizeQueue = &sizeQueue{}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = ex.StreamWithContext(ctx, opts)
			var exitErr exec.ExitError
			switch {
			case c.wantCode != 0:
				if !errors.As(err, &exitErr) || exitErr.ExitStatus() != c.wantCode {
					t.Errorf("err %v, want exit code %d", err, c.wantCode)
				}
			case err != nil:
				t.Errorf("exec: %v", err)
			}
			if stdout.String() != c.wantOut || stderr.String() != c.wantErr {
				t.Errorf("stdout %q stderr %q, want %q %q", stdout.String(), stderr.String(), c.wantOut, c.wantErr)
			}
		})
	}

	t.Run("unknown container", func(t *testing.T) {
		u, _ := url.Parse(strings.Replace(execURL(t, e.url, []string{"echo"}, false, true, false, false).String(), "/app?", "/nope?", 1))
		ex, err := remotecommand.NewWebSocketExecutor(cfg, "GET", u.String())
		if err != nil {
			t.Fatal(err)
		}
		err = ex.StreamWithContext(context.Background(), remotecommand.StreamOptions{Stdout: io.Discard})
		if err == nil || !strings.Contains(err.Error(), `container "nope"`) {
			t.Errorf("err %v", err)
		}
	})
}

func TestAttachNotSupported(t *testing.T) {
	e := start(t)
	code, body := get(t, e.apiClient(t), e.url+"/attach/default/web/app?stdout=true")
	if code != http.StatusNotImplemented || !strings.Contains(body, "attach is not supported by this runtime yet") {
		t.Errorf("attach: %d %q", code, body)
	}
}

func TestAuthentication(t *testing.T) {
	e := start(t)
	other, err := pki.Ensure(pki.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	client := func(c *rest.Config) *http.Client {
		hc, err := rest.HTTPClientFor(c)
		if err != nil {
			t.Fatal(err)
		}
		return hc
	}
	logs := e.url + "/containerLogs/default/web/app"

	if code, body := get(t, client(e.restConfig(t, nil, "")), e.url+"/healthz"); code != 200 || body != "ok" {
		t.Errorf("healthz without a client cert: %d %q", code, body)
	}
	if code, _ := get(t, client(e.restConfig(t, nil, "")), logs); code != http.StatusUnauthorized {
		t.Errorf("no client cert: %d, want 401", code)
	}
	if _, err := client(e.restConfig(t, other, server.APIServerClientName)).Get(logs); err == nil {
		t.Error("a certificate from another CA was accepted")
	} else if !strings.Contains(err.Error(), "certificate") {
		// The server aborts the handshake with a bad-certificate alert.
		t.Errorf("wrong CA: %v", err)
	}
	if code, body := get(t, client(e.restConfig(t, e.bundle, "system:node:node-b", "system:nodes")), logs); code != http.StatusForbidden || !strings.Contains(body, "system:node:node-b") {
		t.Errorf("unauthorized user: %d %q", code, body)
	}
	if code, _ := get(t, client(e.restConfig(t, e.bundle, "alice", "system:masters")), logs); code != 200 {
		t.Errorf("cluster admin: %d", code)
	}
}
