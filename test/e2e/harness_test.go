package e2e

import (
	"github.com/portal-net/portal/internal/netutil"

	"bytes"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

var portalBin = flag.String("portal", "", "path to the portal binary (make e2e passes it); without it the e2e tests skip")

func requirePortal(t *testing.T) {
	t.Helper()
	if *portalBin == "" {
		t.Skip("e2e: run through `make e2e` (needs -portal and a private network namespace)")
	}
	if os.Geteuid() != 0 {
		t.Skip("e2e: needs root")
	}
}

// server is one `portal server` process on loopback.
type server struct {
	t                        *testing.T
	dir                      string
	port, etcdPort, peerPort int
	extra                    []string
	mode                     string // "server" (default) or "up"
	cmd                      *exec.Cmd
	log                      *logBuffer
	done                     chan struct{}
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	p, err := netutil.FreeLoopbackPorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func startServer(t *testing.T, extra ...string) *server {
	t.Helper()
	requirePortal(t)
	p := freePorts(t, 3)
	s := &server{t: t, dir: t.TempDir(), port: p[0], etcdPort: p[1], peerPort: p[2], extra: extra}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *server) start() {
	s.t.Helper()
	mode := s.mode
	if mode == "" {
		mode = "server"
	}
	args := append([]string{mode, "--data-dir", s.dir, "--bind-address", "127.0.0.1",
		"--secure-port", fmt.Sprint(s.port), "--etcd-client-port", fmt.Sprint(s.etcdPort),
		"--etcd-peer-port", fmt.Sprint(s.peerPort)}, s.extra...)
	s.log = &logBuffer{}
	s.cmd = exec.Command(*portalBin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
	s.waitReady()
}

func (s *server) waitReady() {
	s.t.Helper()
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // readiness probe only
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			s.t.Fatalf("portal server exited:\n%s", s.log.String())
		default:
		}
		if _, err := os.Stat(s.kubeconfig()); err == nil {
			if resp, err := hc.Get(fmt.Sprintf("https://127.0.0.1:%d/readyz", s.port)); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("portal server not ready in 60s:\n%s", s.log.String())
}

func (s *server) kubeconfig() string { return filepath.Join(s.dir, "kubeconfig") }

// signal stops the server with sig and waits for it.
func (s *server) signal(sig syscall.Signal) {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, sig)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

func (s *server) stop()  { s.signal(syscall.SIGTERM) }
func (s *server) kill9() { s.signal(syscall.SIGKILL) }

func (s *server) restart() {
	s.t.Helper()
	s.start()
}

// kubectl runs `portal kubectl args...` against this server.
func (s *server) kubectl(args ...string) (stdout, stderr string, err error) {
	return s.kubectlIn("", args...)
}

func (s *server) kubectlIn(stdin string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, *portalBin, append([]string{"kubectl"}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.kubeconfig())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// mustKubectl fails the test when kubectl fails.
func (s *server) mustKubectl(args ...string) string {
	s.t.Helper()
	out, errOut, err := s.kubectl(args...)
	if err != nil {
		s.t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func (s *server) restConfig() *rest.Config {
	s.t.Helper()
	c, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig())
	if err != nil {
		s.t.Fatal(err)
	}
	c.QPS, c.Burst = 2000, 2000
	return c
}

func (s *server) client() kubernetes.Interface {
	return kubernetes.NewForConfigOrDie(s.restConfig())
}

// fields splits a table line on runs of spaces.
func fields(line string) []string { return strings.Fields(line) }

// row returns the fields of the line whose first field is name.
func row(table, name string) []string {
	for _, l := range strings.Split(table, "\n") {
		f := fields(l)
		if len(f) > 0 && f[0] == name {
			return f
		}
	}
	return nil
}
