package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/portal-net/portal/internal/lb/speaker"
	"github.com/portal-net/portal/internal/netutil"
	"github.com/portal-net/portal/internal/testutil/portalproc"
)

// cluster is portal server in the bench namespace and one agent in each
// node namespace.
type cluster struct {
	srv    *portalproc.Server
	kc     kubernetes.Interface
	agents []*agent
	vip    netip.Addr // the service's address, won by node-1
}

// agent is one `portal agent` process, entered into its node namespace
// with nsenter.
type agent struct {
	portalproc.Process
	root, runDir string
}

// pickPool returns the first address from poolFrom on that node-1 wins
// among the three nodes, so the benchmark knows whom to cut off.
func pickPool() netip.Addr {
	nodes := []string{nodeName(1), nodeName(2), nodeName(3)}
	a := poolFrom
	for speaker.Winner(a, nodes) != nodeName(1) {
		a = a.Next()
	}
	return a
}

func startCluster(ctx context.Context, portal, dir string, l *lab) (*cluster, error) {
	c := &cluster{vip: pickPool()}
	p, err := netutil.FreeLoopbackPorts(3)
	if err != nil {
		return c, err
	}
	c.srv = &portalproc.Server{Process: portalproc.Process{Bin: portal, Args: []string{
		"--bind-address", "0.0.0.0", "--tls-san", serverIP.String(),
		"--lb-pool", c.vip.String() + "-" + c.vip.Next().String()}},
		Dir: filepath.Join(dir, "data"), Port: p[0], Etcd: p[1], Peer: p[2]}
	fmt.Fprintf(os.Stderr, "starting portal server (pool %s-%s)\n", c.vip, c.vip.Next())
	if _, err := c.srv.Start(ctx, time.Minute); err != nil {
		return c, fmt.Errorf("portal server: %w", err)
	}
	if c.kc, err = c.srv.Client(30 * time.Second); err != nil {
		return c, err
	}
	tok, err := os.ReadFile(filepath.Join(c.srv.Dir, "join-token"))
	if err != nil {
		return c, err
	}
	url := fmt.Sprintf("https://%s:%d", serverIP, c.srv.Port)
	for i := 1; i <= nodeCount; i++ {
		d := filepath.Join(dir, nodeName(i))
		a := &agent{Process: portalproc.Process{Bin: "nsenter"}, root: filepath.Join(d, "root"), runDir: filepath.Join(d, "run")}
		c.agents = append(c.agents, a)
		err := a.Start("--net="+l.nodes[i-1], "--", portal, "agent", "--node-name", nodeName(i),
			"--server", url, "--token", strings.TrimSpace(string(tok)), "--node-ip", nodeIP(i).String(),
			"--root-dir", a.root, "--run-dir", a.runDir)
		if err != nil {
			return c, err
		}
	}
	fmt.Fprintln(os.Stderr, "waiting for 3 Ready nodes")
	for i := 1; i <= nodeCount; i++ {
		if err := waitUntil(ctx, time.Minute, func() bool { return nodeReady(ctx, c.kc, nodeName(i)) }); err != nil {
			return c, fmt.Errorf("%s not Ready: %w\n%s", nodeName(i), err, portalproc.LastLines(c.agents[i-1].Log.String(), 20))
		}
	}
	f := filepath.Join(dir, "web.yaml")
	if err := os.WriteFile(f, []byte(manifests()), 0o644); err != nil {
		return c, err
	}
	if _, err := c.srv.KubectlApply(ctx, f, time.Minute); err != nil {
		return c, err
	}
	fmt.Fprintf(os.Stderr, "waiting for the service to get %s and its 2 pods to be Ready\n", c.vip)
	err = waitUntil(ctx, time.Minute, func() bool {
		s, err := c.kc.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && len(s.Status.LoadBalancer.Ingress) > 0 && s.Status.LoadBalancer.Ingress[0].IP == c.vip.String()
	})
	if err != nil {
		return c, fmt.Errorf("service web did not get %s: %w", c.vip, err)
	}
	err = waitUntil(ctx, 2*time.Minute, func() bool {
		pods, err := c.kc.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		ready := 0
		for _, p := range pods.Items {
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return err == nil && ready == 2
	})
	if err != nil {
		return c, fmt.Errorf("pods not Ready: %w\nnode-2:\n%s", err, portalproc.LastLines(c.agents[1].Log.String(), 20))
	}
	return c, nil
}

// manifests: two agnhost netexec pods, pinned to node-2 and node-3 (node-1
// is the one that fails, so its loss never takes an endpoint away), and a
// LoadBalancer service on them.
func manifests() string {
	var m strings.Builder
	for _, n := range []string{nodeName(2), nodeName(3)} {
		fmt.Fprintf(&m, `apiVersion: v1
kind: Pod
metadata: {name: web-%s, labels: {app: web}}
spec:
  nodeName: %s
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: ["netexec", "--http-port=8080", "--udp-port=-1"]
    readinessProbe:
      httpGet: {path: /hostname, port: 8080}
      periodSeconds: 1
---
`, n, n)
	}
	m.WriteString(`apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`)
	return m.String()
}

func nodeReady(ctx context.Context, kc kubernetes.Interface, name string) bool {
	n, err := kc.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil || n.Spec.PodCIDR == "" {
		return false
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// waitUntil polls cond every 100 ms until it holds, ctx ends or limit
// passes.
func waitUntil(ctx context.Context, limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// stop stops the agents and the server, then kills the pod processes the
// agents leave behind by design and unmounts their namespaces.
func (c *cluster) stop() {
	for _, a := range c.agents {
		a.Stop()
	}
	for _, a := range c.agents {
		removePods(a.root, a.runDir)
	}
	if c.srv != nil {
		c.srv.Stop()
	}
}

func removePods(dirs ...string) {
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		for _, d := range dirs {
			if strings.Contains(string(cmdline), d) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				break
			}
		}
	}
	for _, d := range dirs {
		nss, _ := filepath.Glob(filepath.Join(d, "netns", "*"))
		for _, ns := range nss {
			_ = syscall.Unmount(ns, syscall.MNT_DETACH)
		}
	}
}
