package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/portal-net/portal/internal/testutil/portalproc"
)

// agent is the `portal agent` child with its own root and run dirs.
type agent struct {
	portalproc.Process
	node, kubeconfig string
	port             int
	rootDir, runDir  string
}

// start execs the agent and waits for its node to be Ready with a pod
// CIDR.
func (a *agent) start(ctx context.Context, kc kubernetes.Interface, limit time.Duration) error {
	if err := a.Process.Start("agent", "--node-name", a.node, "--kubeconfig", a.kubeconfig,
		"--root-dir", a.rootDir, "--run-dir", a.runDir, "--agent-port", strconv.Itoa(a.port)); err != nil {
		return err
	}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-a.Exited():
			return fmt.Errorf("agent exited:\n%s", portalproc.LastLines(a.Log.String(), 20))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		n, err := kc.CoreV1().Nodes().Get(ctx, a.node, metav1.GetOptions{})
		if err == nil && n.Spec.PodCIDR != "" && nodeReady(n) {
			return nil
		}
	}
	return fmt.Errorf("node %s not Ready with a pod CIDR within %s:\n%s", a.node, limit, portalproc.LastLines(a.Log.String(), 20))
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// isAgent says whether p is this agent: our child, with its root dir on
// the command line (so that it is not counted as a pod's process).
func isAgent(p proc, rootDir string) bool {
	return isChildWith(p, rootDir)
}

// isChildWith says whether p is a child of this process with s in its
// command line.
func isChildWith(p proc, s string) bool {
	return p.ppid == os.Getpid() && containsArg(p.cmdline, s)
}

// cleanUp stops the agent and then removes what pods outlive it by
// design: their supervisors (own sessions, so not in the agent's process
// group) and their network namespace mounts.
func (a *agent) cleanUp() {
	a.Stop()
	procs, _ := readProcs()
	for _, p := range procs {
		if containsArg(p.cmdline, a.rootDir) {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
	nss, _ := filepath.Glob(filepath.Join(a.runDir, "netns", "*"))
	for _, ns := range nss {
		_ = syscall.Unmount(ns, syscall.MNT_DETACH)
	}
	if len(nss) > 0 {
		fmt.Fprintf(os.Stderr, "clean up: unmounted %d pod network namespaces the agent left\n", len(nss))
	}
}
