package portalproc

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Server is one `portal server` child process on fixed loopback ports, so
// that a restart finds the same data dir and ports.
type Server struct {
	Process
	Dir              string
	Port, Etcd, Peer int
}

func (s *Server) args() []string {
	return []string{"server", "--data-dir", s.Dir, "--bind-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(s.Port),
		"--etcd-client-port", strconv.Itoa(s.Etcd), "--etcd-peer-port", strconv.Itoa(s.Peer),
		// Thousands of services do not fit the default /24.
		"--service-cidr", "10.0.0.0/16"}
}

// Start execs the server and returns the time from exec to the first 200
// on /readyz, then waits (briefly) for the kubeconfig that follows
// readiness.
func (s *Server) Start(ctx context.Context, limit time.Duration) (time.Duration, error) {
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // readiness probe of our own child on loopback
		DisableKeepAlives: true,
	}}
	url := fmt.Sprintf("https://127.0.0.1:%d/readyz", s.Port)
	t0 := time.Now()
	if err := s.Process.Start(append(s.args(), s.Args...)...); err != nil {
		return 0, err
	}
	for time.Since(t0) < limit {
		select {
		case <-s.done:
			return 0, fmt.Errorf("server exited before ready:\n%s", LastLines(s.Log.String(), 20))
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
	return 0, fmt.Errorf("server not ready within %s:\n%s", limit, LastLines(s.Log.String(), 20))
}

// Kubeconfig is the admin kubeconfig the server writes.
func (s *Server) Kubeconfig() string { return filepath.Join(s.Dir, "kubeconfig") }

func (s *Server) waitKubeconfig(limit time.Duration) error {
	for t0 := time.Now(); time.Since(t0) < limit; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(s.Kubeconfig()); err == nil {
			return nil
		}
	}
	return fmt.Errorf("no kubeconfig %s within %s of ready", s.Kubeconfig(), limit)
}

// ParseVmRSS returns the VmRSS line of /proc/PID/status in kB.
func ParseVmRSS(status string) (int64, error) { return ParseStatusKB(status, "VmRSS") }

// ParseStatusKB returns a "Field:  N kB" line of /proc/PID/status in kB.
func ParseStatusKB(status, field string) (int64, error) {
	for _, l := range strings.Split(status, "\n") {
		rest, ok := strings.CutPrefix(l, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("unexpected %s line %q", field, l)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s line %q: %w", field, l, err)
		}
		return kb, nil
	}
	return 0, fmt.Errorf("no %s line in status", field)
}

func (s *Server) Client(timeout time.Duration) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig())
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

func (s *Server) EtcdClient() (*clientv3.Client, error) {
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{fmt.Sprintf("http://127.0.0.1:%d", s.Etcd)},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	return c, nil
}

// KubectlApply runs `portal kubectl apply -f file` against the server and
// returns its wall time.
func (s *Server) KubectlApply(ctx context.Context, file string, limit time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.Bin, "kubectl", "apply", "-f", file)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.Kubeconfig())
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(t0)
	if err != nil {
		return 0, fmt.Errorf("kubectl apply -f %s (after %s): %w\n%s", filepath.Base(file), d.Round(time.Millisecond), err, LastLines(string(out), 5))
	}
	return d, nil
}

func LastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
