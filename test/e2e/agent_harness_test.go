package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// agentProc is one `portal agent` process (optionally inside a network
// namespace, entered with nsenter so its pods' namespaces stay reachable).
type agentProc struct {
	t       *testing.T
	netns   string
	args    []string
	cmd     *exec.Cmd
	log     *logBuffer
	done    chan struct{}
	rootDir string
}

// startAgent runs `portal agent` for node against s (through its
// kubeconfig, or extra args such as --server/--token).
func startAgent(t *testing.T, s *server, node, netns string, extra ...string) *agentProc {
	t.Helper()
	dir := t.TempDir()
	port := freePorts(t, 1)[0]
	args := []string{"agent", "--node-name", node, "--root-dir", filepath.Join(dir, "root"),
		"--run-dir", filepath.Join(dir, "run"), "--agent-port", fmt.Sprint(port),
		"--crash-backoff-initial", "1s", "--crash-backoff-max", "4s"}
	if len(extra) == 0 {
		args = append(args, "--kubeconfig", s.kubeconfig())
	}
	a := &agentProc{t: t, netns: netns, args: append(args, extra...), rootDir: filepath.Join(dir, "root")}
	a.start()
	t.Cleanup(func() {
		a.stop(syscall.SIGTERM)
		a.removePods(filepath.Join(dir, "run"))
	})
	return a
}

// removePods kills the pod supervisors the agent left (pods outlive their
// agent by design) and unmounts their network namespaces, so the test's
// directories can go.
func (a *agentProc) removePods(runDir string) {
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if strings.Contains(string(cmdline), a.rootDir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	nss, _ := filepath.Glob(filepath.Join(runDir, "netns", "*"))
	for _, ns := range nss {
		_ = syscall.Unmount(ns, syscall.MNT_DETACH)
	}
}

func (a *agentProc) start() {
	a.t.Helper()
	bin, args := *portalBin, a.args
	if a.netns != "" {
		bin, args = "nsenter", append([]string{"--net=" + a.netns, "--", *portalBin}, args...)
	}
	a.log = &logBuffer{}
	a.cmd = exec.Command(bin, args...)
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := a.cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	a.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(a.cmd, a.done)
}

// stop signals the agent alone (not its process group: the pod
// supervisors it started live in their own sessions anyway).
func (a *agentProc) stop(sig syscall.Signal) {
	if a.cmd == nil || a.cmd.Process == nil {
		return
	}
	_ = a.cmd.Process.Signal(sig)
	select {
	case <-a.done:
	case <-time.After(30 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
}

// waitNodeReady waits for the node to be registered and Ready with a pod CIDR.
func waitNodeReady(t *testing.T, c kubernetes.Interface, node string, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		n, err := c.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
		if err == nil && n.Spec.PodCIDR != "" {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("node %s not Ready in 60s; agent log:\n%s", node, logs())
}

// httpGet fetches url (a pod or node address inside the test's namespaces).
func httpGet(url string) (string, error) {
	// A new connection per request: through a service each one may reach
	// another pod.
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return strings.TrimSpace(string(b)), err
}

func podURL(p *corev1.Pod, port int, path string) string {
	return "http://" + net.JoinHostPort(p.Status.PodIP, fmt.Sprint(port)) + path
}

func runningPods(t *testing.T, c kubernetes.Interface, ns, selector string) []corev1.Pod {
	t.Helper()
	l, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

// examples is the repo's examples directory.
func examples(name string) string { return filepath.Join("..", "..", "examples", name) }

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "manifest.yaml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// startUp runs `portal up`: server, controllers and this namespace as the
// node, with the agent's files under the test's directories.
func startUp(t *testing.T, extra ...string) *server {
	t.Helper()
	requirePortal(t)
	p := freePorts(t, 4)
	s := &server{t: t, dir: t.TempDir(), port: p[0], etcdPort: p[1], peerPort: p[2], mode: "up"}
	run := t.TempDir()
	s.extra = append([]string{"--agent-port", fmt.Sprint(p[3]), "--run-dir", run, "--node-name", "node-1"}, extra...)
	s.start()
	t.Cleanup(func() {
		s.stop()
		(&agentProc{rootDir: filepath.Join(s.dir, "agent")}).removePods(run)
	})
	return s
}
