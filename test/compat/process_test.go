package compat

// Child processes, after bench/internal/portalproc (which test/ cannot
// import: it is internal to bench/).

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// process is one child in its own process group (Stop reaches anything it
// spawns) with Pdeathsig (a crashed test leaves nothing behind).
type process struct {
	bin  string
	log  syncBuffer
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *process) start(args ...string) error {
	p.cmd = exec.Command(p.bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.log, &p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", p.bin, err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(p.cmd, p.done)
	return nil
}

// exited is closed when the process has exited (nil, so never, before start).
func (p *process) exited() <-chan struct{} { return p.done }

// stop sends SIGTERM to the process group, SIGKILL after 10 s.
func (p *process) stop() {
	if p.cmd == nil || p.cmd.Process == nil || p.done == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(10 * time.Second):
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

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

// serviceCIDR is the API server's service range (larger than its default /24
// only to be unambiguous in reverse names).
var serviceCIDR = netip.MustParsePrefix("10.0.0.0/16")

// apiServer is a `portal server` child on loopback ports.
type apiServer struct {
	process
	dir              string
	port, etcd, peer int
}

func (s *apiServer) kubeconfig() string { return filepath.Join(s.dir, "kubeconfig") }

// start execs the server and waits for /readyz and the kubeconfig.
func (s *apiServer) start(ctx context.Context, limit time.Duration) error {
	err := s.process.start("server", "--data-dir", s.dir, "--bind-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(s.port),
		"--etcd-client-port", strconv.Itoa(s.etcd), "--etcd-peer-port", strconv.Itoa(s.peer),
		"--service-cidr", serviceCIDR.String())
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // readiness probe of our own child on loopback
		DisableKeepAlives: true,
	}}
	url := fmt.Sprintf("https://127.0.0.1:%d/readyz", s.port)
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-s.done:
			return fmt.Errorf("server exited before ready:\n%s", lastLines(s.log.String(), 20))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := hc.Get(url)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			continue
		}
		if _, err := os.Stat(s.kubeconfig()); err == nil {
			return nil
		}
	}
	return fmt.Errorf("server not ready within %s:\n%s", limit, lastLines(s.log.String(), 20))
}

func (s *apiServer) client() (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig())
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	cfg.Timeout = 30 * time.Second
	return kubernetes.NewForConfig(cfg)
}
