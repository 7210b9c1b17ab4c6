package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Seed 001 on a real node: the Deployment of 3 behind the NodePort
// service runs as 3 × 1/1 Running pods, each answering on its pod IP.
func TestAgentSeed001Deployment(t *testing.T) {
	s := startUp(t)
	c := s.client()
	waitNodeReady(t, c, "node-1", s.log.String)
	s.mustKubectl("apply", "-f", examples("seed001-services.yaml"))
	s.mustKubectl("apply", "-f", examples("seed001-deployment.yaml"))
	if out, errOut, err := s.kubectl("rollout", "status", "deployment/example-app-deployment", "--timeout=60s"); err != nil {
		t.Fatalf("rollout status: %v\n%s%s\nportal up log:\n%s", err, out, errOut, s.log.String())
	}
	po := s.mustKubectl("get", "po")
	lines := strings.Split(strings.TrimSpace(po), "\n")
	if len(lines) != 4 {
		t.Fatalf("kubectl get po:\n%s", po)
	}
	for _, l := range lines[1:] {
		if f := fields(l); len(f) != 5 || f[1] != "1/1" || f[2] != "Running" || f[3] != "0" {
			t.Errorf("pod row %q", l)
		}
	}
	for _, p := range runningPods(t, c, "default", "app=example-app") {
		got, err := httpGet(podURL(&p, 3000, "/hostname"))
		if err != nil || got != p.Name {
			t.Errorf("pod %s at %s: /hostname = %q, %v", p.Name, p.Status.PodIP, got, err)
		}
		if p.Status.HostIP == "" || p.Status.PodIP == "" || len(p.Status.Conditions) < 4 {
			t.Errorf("pod %s status incomplete: %+v", p.Name, p.Status)
		}
	}
	waitFor(t, 10*time.Second, "3 ready endpoints", func() bool {
		out, _, _ := s.kubectl("get", "endpoints", "example-app", "-o", "jsonpath={.subsets[*].addresses[*].ip}")
		return len(strings.Fields(out)) == 3
	})
}

const probesManifest = `apiVersion: v1
kind: Service
metadata:
  name: probed
spec:
  selector: {app: probed}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata:
  name: unready
  labels: {app: probed}
spec:
  containers:
  - name: web
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: ["netexec", "--http-port=8080"]
    readinessProbe:
      tcpSocket: {port: 9999}
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: ready
  labels: {app: probed}
spec:
  containers:
  - name: web
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: ["netexec", "--http-port=8080"]
    readinessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: unlive
spec:
  containers:
  - name: web
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: ["netexec", "--http-port=8080"]
    livenessProbe:
      tcpSocket: {port: 9999}
      periodSeconds: 1
      failureThreshold: 1
`

// A failing readiness probe keeps a pod out of the endpoints; a failing
// liveness probe restarts the container, RESTARTS counting up.
func TestAgentProbes(t *testing.T) {
	s := startServer(t)
	a := startAgent(t, s, "node-1", "")
	c := s.client()
	waitNodeReady(t, c, "node-1", a.log.String)
	s.mustKubectl("apply", "-f", writeFile(t, probesManifest))
	if _, _, err := s.kubectl("wait", "--for=condition=Ready", "pod/ready", "--timeout=60s"); err != nil {
		t.Fatalf("pod ready not Ready; agent log:\n%s", a.log.String())
	}
	readyIP := strings.TrimSpace(s.mustKubectl("get", "pod", "ready", "-o", "jsonpath={.status.podIP}"))
	unreadyIP := strings.TrimSpace(s.mustKubectl("get", "pod", "unready", "-o", "jsonpath={.status.podIP}"))
	var ready, notReady string
	deadline := time.Now().Add(10 * time.Second)
	for {
		ready, _, _ = s.kubectl("get", "endpoints", "probed", "-o", "jsonpath={.subsets[*].addresses[*].ip}")
		notReady, _, _ = s.kubectl("get", "endpoints", "probed", "-o", "jsonpath={.subsets[*].notReadyAddresses[*].ip}")
		if strings.TrimSpace(ready) == readyIP && strings.TrimSpace(notReady) == unreadyIP {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoints: ready %q (want %s), not ready %q (want %s)\n%s", ready, readyIP, notReady, unreadyIP, s.mustKubectl("get", "po", "-o", "wide"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if row := row(s.mustKubectl("get", "po", "unready"), "unready"); len(row) < 3 || row[1] != "0/1" || row[2] != "Running" {
		t.Errorf("unready pod row %v", row)
	}
	var restarts int32
	waitFor(t, 60*time.Second, "liveness restarts ≥ 2", func() bool {
		p, err := c.CoreV1().Pods("default").Get(context.Background(), "unlive", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return false
		}
		restarts = p.Status.ContainerStatuses[0].RestartCount
		return restarts >= 2
	})
	ev := s.mustKubectl("get", "events", "--field-selector", "involvedObject.name=unlive")
	for _, want := range []string{"Unhealthy", "Liveness probe failed", "Killing", "failed liveness probe, will be restarted"} {
		if !strings.Contains(ev, want) {
			t.Errorf("events of unlive lack %q:\n%s", want, ev)
		}
	}
}

// Bad input gives a clear reason and an event; the agent keeps running.
func TestAgentBadInput(t *testing.T) {
	s := startServer(t)
	a := startAgent(t, s, "node-1", "")
	c := s.client()
	waitNodeReady(t, c, "node-1", a.log.String)
	s.mustKubectl("run", "unknown-image", "--image=example/example:v1.0-SNAPSHOT")
	s.mustKubectl("run", "missing-cm", "--image=busybox", "--overrides",
		`{"spec":{"containers":[{"name":"missing-cm","image":"busybox","command":["sleep","3600"],"env":[{"name":"X","valueFrom":{"configMapKeyRef":{"name":"nope","key":"k"}}}]}]}}`)
	s.mustKubectl("run", "bad-probe", "--image=registry.k8s.io/e2e-test-images/agnhost:2.53", "--overrides",
		`{"spec":{"containers":[{"name":"bad-probe","image":"registry.k8s.io/e2e-test-images/agnhost:2.53","args":["netexec"],"readinessProbe":{"periodSeconds":1,"httpGet":{"port":"nope"}}}]}}`)
	s.mustKubectl("run", "too-big", "--image=busybox", "--overrides",
		`{"spec":{"containers":[{"name":"too-big","image":"busybox","command":["sleep","3600"],"resources":{"requests":{"cpu":"1000"}}}]}}`)
	waiting := func(pod string) string {
		p, err := c.CoreV1().Pods("default").Get(context.Background(), pod, metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil {
			return ""
		}
		return p.Status.ContainerStatuses[0].State.Waiting.Reason
	}
	waitFor(t, 30*time.Second, "ImageNotRunnable", func() bool { return waiting("unknown-image") == "ImageNotRunnable" })
	waitFor(t, 30*time.Second, "CreateContainerConfigError", func() bool { return waiting("missing-cm") == "CreateContainerConfigError" })
	if r := row(s.mustKubectl("get", "po", "unknown-image"), "unknown-image"); len(r) < 3 || r[2] != "ImageNotRunnable" {
		t.Errorf("kubectl get po unknown-image: %v", r)
	}
	desc := s.mustKubectl("describe", "po", "unknown-image")
	if !strings.Contains(desc, "cannot run") && !strings.Contains(desc, "not built in") {
		t.Errorf("describe unknown-image lacks the message:\n%s", desc)
	}
	desc = s.mustKubectl("describe", "po", "missing-cm")
	if !strings.Contains(desc, `configmap "nope" not found`) {
		t.Errorf("describe missing-cm:\n%s", desc)
	}
	waitFor(t, 30*time.Second, "bad probe port event", func() bool {
		out, _, _ := s.kubectl("get", "events", "--field-selector", "involvedObject.name=bad-probe")
		return strings.Contains(out, "Unhealthy") && strings.Contains(out, `port "nope" not found`)
	})
	if r := row(s.mustKubectl("get", "po", "bad-probe"), "bad-probe"); len(r) < 3 || r[1] != "0/1" || r[2] != "Running" {
		t.Errorf("bad-probe: %v", r)
	}
	waitFor(t, 30*time.Second, "too-big unschedulable", func() bool {
		out, _, _ := s.kubectl("get", "events", "--field-selector", "involvedObject.name=too-big")
		return strings.Contains(out, "FailedScheduling") && strings.Contains(out, "Insufficient cpu")
	})
	select {
	case <-a.done:
		t.Fatalf("agent exited:\n%s", a.log.String())
	default:
	}
}

// kill -9 of the agent: pods keep serving (an open TCP connection
// survives) and the restarted agent re-adopts them without restarts.
func TestAgentKill9KeepsPods(t *testing.T) {
	s := startServer(t)
	a := startAgent(t, s, "node-1", "")
	c := s.client()
	waitNodeReady(t, c, "node-1", a.log.String)
	s.mustKubectl("run", "web", "--image=registry.k8s.io/e2e-test-images/agnhost:2.53", "--", "netexec", "--http-port=8080")
	if _, _, err := s.kubectl("wait", "--for=condition=Ready", "pod/web", "--timeout=60s"); err != nil {
		t.Fatalf("web not Ready; agent log:\n%s", a.log.String())
	}
	before, _ := c.CoreV1().Pods("default").Get(context.Background(), "web", metav1.GetOptions{})
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(before.Status.PodIP, "8080"), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	ask := func() error {
		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
		req, _ := http.NewRequest(http.MethodGet, "http://web/hostname", nil)
		if err := req.Write(conn); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if string(b) != "web" {
			return fmt.Errorf("answer %q", b)
		}
		return nil
	}
	if err := ask(); err != nil {
		t.Fatal(err)
	}
	a.stop(syscall.SIGKILL)
	if err := ask(); err != nil {
		t.Fatalf("connection broken while the agent is down: %v", err)
	}
	a.start()
	time.Sleep(3 * time.Second) // let the new agent adopt and sync
	if err := ask(); err != nil {
		t.Fatalf("connection broken after the agent restarted: %v\n%s", err, a.log.String())
	}
	after, _ := c.CoreV1().Pods("default").Get(context.Background(), "web", metav1.GetOptions{})
	bs, as := before.Status.ContainerStatuses[0], after.Status.ContainerStatuses[0]
	if as.RestartCount != 0 || as.State.Running == nil || !as.State.Running.StartedAt.Equal(&bs.State.Running.StartedAt) || after.Status.PodIP != before.Status.PodIP {
		t.Errorf("pod changed across the agent restart: before %+v after %+v", bs, as)
	}
	if after.Status.Phase != corev1.PodRunning {
		t.Errorf("phase %s", after.Status.Phase)
	}

	// Seed 001: "master down → pods keep running". The control plane goes
	// away (kill -9); the pod keeps serving, the agent keeps running and
	// picks up again when the server is back.
	s.kill9()
	for i := 0; i < 3; i++ {
		time.Sleep(time.Second)
		if err := ask(); err != nil {
			t.Fatalf("pod stopped serving while the control plane is down: %v", err)
		}
	}
	select {
	case <-a.done:
		t.Fatalf("agent exited while the control plane was down:\n%s", a.log.String())
	default:
	}
	s.restart()
	s.mustKubectl("run", "after-outage", "--image=registry.k8s.io/e2e-test-images/pause:3.10")
	if _, _, err := s.kubectl("wait", "--for=condition=Ready", "pod/after-outage", "--timeout=60s"); err != nil {
		t.Fatalf("agent does not run pods after the server came back:\n%s", a.log.String())
	}
	if err := ask(); err != nil {
		t.Fatal(err)
	}
}

// Deleting a pod runs its preStop hook, sends SIGTERM, SIGKILLs after the
// grace period, and removes its namespace, IP and processes.
func TestAgentGracefulDelete(t *testing.T) {
	s := startServer(t)
	a := startAgent(t, s, "node-1", "")
	c := s.client()
	waitNodeReady(t, c, "node-1", a.log.String)
	dir := t.TempDir()
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 2
  volumes: [{name: out, hostPath: {path: %q}}]
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "trap 'echo got TERM >> /out/log' TERM; while true; do sleep 0.1; done"]
    volumeMounts: [{name: out, mountPath: /out}]
    lifecycle:
      preStop:
        exec: {command: ["sh", "-c", "echo prestop >> /out/log"]}
`, dir)
	s.mustKubectl("apply", "-f", writeFile(t, manifest))
	if _, _, err := s.kubectl("wait", "--for=condition=Ready", "pod/stubborn", "--timeout=60s"); err != nil {
		t.Fatalf("stubborn not Ready; agent log:\n%s", a.log.String())
	}
	ip := strings.TrimSpace(s.mustKubectl("get", "pod", "stubborn", "-o", "jsonpath={.status.podIP}"))
	start := time.Now()
	s.mustKubectl("delete", "pod", "stubborn", "--wait=true", "--timeout=30s")
	took := time.Since(start)
	if took < 2*time.Second || took > 10*time.Second {
		t.Errorf("deletion took %v; want the 2 s grace period and little more", took)
	}
	log, _ := readFile(dir + "/log")
	if !strings.Contains(log, "prestop\n") || !strings.Contains(log, "got TERM\n") || strings.Index(log, "prestop") > strings.Index(log, "got TERM") {
		t.Errorf("want preStop, then SIGTERM; log:\n%s", log)
	}
	waitFor(t, 5*time.Second, "pod network gone", func() bool {
		nss, _ := os.ReadDir(filepath.Join(filepath.Dir(a.rootDir), "run", "netns"))
		ipam, _ := os.ReadDir(filepath.Join(a.rootDir, "network", "ipam"))
		for _, e := range ipam {
			if e.Name() == ip {
				return false
			}
		}
		return len(nss) == 0
	})
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		cmdline, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if strings.Contains(string(cmdline), a.rootDir) && p.Name() != fmt.Sprint(a.cmd.Process.Pid) {
			t.Errorf("process left: %s %q", p.Name(), cmdline)
		}
	}
}

// A pod that ran to completion shows Completed, gives back its IP and
// keeps its logs until it is deleted.
func TestAgentCompletedPod(t *testing.T) {
	s := startServer(t)
	a := startAgent(t, s, "node-1", "")
	c := s.client()
	waitNodeReady(t, c, "node-1", a.log.String)
	s.mustKubectl("run", "once", "--image=busybox", "--restart=Never", "--", "sh", "-c", "echo done")
	waitFor(t, 60*time.Second, "pod once Succeeded", func() bool {
		p, err := c.CoreV1().Pods("default").Get(context.Background(), "once", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodSucceeded
	})
	if r := row(s.mustKubectl("get", "po", "once"), "once"); len(r) < 3 || r[1] != "0/1" || r[2] != "Completed" {
		t.Errorf("kubectl get po once: %v", r)
	}
	ip := strings.TrimSpace(s.mustKubectl("get", "pod", "once", "-o", "jsonpath={.status.podIP}"))
	waitFor(t, 15*time.Second, "IP of the finished pod released", func() bool {
		_, err := os.Stat(filepath.Join(a.rootDir, "network", "ipam", ip))
		nss, _ := os.ReadDir(filepath.Join(filepath.Dir(a.rootDir), "run", "netns"))
		return os.IsNotExist(err) && len(nss) == 0
	})
	if got := strings.TrimSpace(s.mustKubectl("logs", "once")); got != "done" {
		t.Errorf("logs of the finished pod: %q", got)
	}
}
