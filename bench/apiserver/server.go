package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// server is one `portal server` child process on fixed loopback ports, so
// that a restart finds the same data dir and ports.
type server struct {
	bin              string
	dir              string
	port, etcd, peer int

	cmd  *exec.Cmd
	done chan struct{}
	log  syncBuffer
}

// syncBuffer collects the child's output; exec copies stdout and stderr
// from separate goroutines.
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

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

func (s *server) args() []string {
	return []string{"server", "--data-dir", s.dir, "--bind-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(s.port),
		"--etcd-client-port", strconv.Itoa(s.etcd), "--etcd-peer-port", strconv.Itoa(s.peer),
		// Thousands of services do not fit the default /24.
		"--service-cidr", "10.0.0.0/16"}
}

// start execs the server and returns the time from exec to the first 200
// on /readyz, then waits (briefly) for the kubeconfig that follows
// readiness.
func (s *server) start(ctx context.Context, limit time.Duration) (time.Duration, error) {
	s.log.Reset()
	s.cmd = exec.Command(s.bin, s.args()...)
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	// Own process group so stop reaches anything it spawns; Pdeathsig so
	// a crashed benchmark does not leave a server behind.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // readiness probe of our own child on loopback
		DisableKeepAlives: true,
	}}
	url := fmt.Sprintf("https://127.0.0.1:%d/readyz", s.port)
	t0 := time.Now()
	if err := s.cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting %s: %w", s.bin, err)
	}
	s.done = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	for time.Since(t0) < limit {
		select {
		case <-s.done:
			return 0, fmt.Errorf("server exited before ready:\n%s", lastLines(s.log.String(), 20))
		case <-ctx.Done():
			return 0, ctx.Err()
		default:
		}
		if resp, err := hc.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				d := time.Since(t0)
				return d, s.waitKubeconfig(5 * time.Second)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, fmt.Errorf("server not ready within %s:\n%s", limit, lastLines(s.log.String(), 20))
}

func (s *server) kubeconfig() string { return filepath.Join(s.dir, "kubeconfig") }

func (s *server) waitKubeconfig(limit time.Duration) error {
	for t0 := time.Now(); time.Since(t0) < limit; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(s.kubeconfig()); err == nil {
			return nil
		}
	}
	return fmt.Errorf("no kubeconfig %s within %s of ready", s.kubeconfig(), limit)
}

// stop sends SIGTERM to the server's process group and SIGKILL if it has
// not exited within 20 s. Safe to call when not running.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil || s.done == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

func (s *server) rssMB() (float64, error) {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0, errors.New("server not running")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("reading server status: %w", err)
	}
	kb, err := parseVmRSS(string(b))
	if err != nil {
		return 0, err
	}
	return float64(kb) / 1024, nil
}

// parseVmRSS returns the VmRSS line of /proc/PID/status in kB.
func parseVmRSS(status string) (int64, error) {
	for _, l := range strings.Split(status, "\n") {
		rest, ok := strings.CutPrefix(l, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("unexpected VmRSS line %q", l)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS line %q: %w", l, err)
		}
		return kb, nil
	}
	return 0, errors.New("no VmRSS line in status")
}

func (s *server) client(timeout time.Duration) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig())
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	// Client-side rate limiting would measure client-go, not the server.
	cfg.QPS, cfg.Burst = 1e6, 1e6
	cfg.Timeout = timeout
	// Protobuf, as Kubernetes' own controllers talk to the API.
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	return kubernetes.NewForConfig(cfg)
}

func (s *server) etcdClient() (*clientv3.Client, error) {
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{fmt.Sprintf("http://127.0.0.1:%d", s.etcd)},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	return c, nil
}

// kubectlApply runs `portal kubectl apply -f file` against the server and
// returns its wall time.
func (s *server) kubectlApply(ctx context.Context, file string, limit time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, "kubectl", "apply", "-f", file)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.kubeconfig())
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(t0)
	if err != nil {
		return 0, fmt.Errorf("kubectl apply -f %s (after %s): %w\n%s", filepath.Base(file), d.Round(time.Millisecond), err, lastLines(string(out), 5))
	}
	return d, nil
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
