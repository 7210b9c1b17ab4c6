package local

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"k8s.io/apimachinery/pkg/types"

	"github.com/portal-net/portal/internal/podruntime"
	"github.com/portal-net/portal/internal/podruntime/network"
	"github.com/portal-net/portal/internal/podruntime/shim"
	"github.com/portal-net/portal/internal/sys/netns"
	"github.com/portal-net/portal/internal/testutil/netnstest"
)

func TestMain(m *testing.M) { netnstest.Main(m) }

// bareNetwork gives each pod a network namespace with only loopback: enough
// for the runtime, without a bridge.
type bareNetwork struct {
	dir string
	mu  sync.Mutex
	ids map[string]bool
}

func (n *bareNetwork) Setup(context.Context, *net.IPNet) error { return nil }

func (n *bareNetwork) Add(ctx context.Context, id string) (*network.Attachment, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	path := filepath.Join(n.dir, id)
	if !n.ids[id] {
		if err := netns.New(path); err != nil {
			return nil, err
		}
		err := netns.Do(path, func() error {
			lo, err := netlink.LinkByName("lo")
			if err != nil {
				return err
			}
			return netlink.LinkSetUp(lo)
		})
		if err != nil {
			return nil, err
		}
		n.ids[id] = true
	}
	return &network.Attachment{ID: id, NetnsPath: path, IP: net.IPv4(10, 244, 0, 2), PrefixLen: 24}, nil
}

func (n *bareNetwork) Del(ctx context.Context, id string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.ids, id)
	return netns.Delete(filepath.Join(n.dir, id))
}

func (n *bareNetwork) List(context.Context) ([]string, error) { return nil, nil }

func (n *bareNetwork) SyncRoutes(context.Context, []network.Route) error { return nil }

const (
	busybox = "/usr/bin/busybox"
	resolv  = "nameserver 10.96.0.10\nsearch ns1.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
)

type fixture struct {
	t    *testing.T
	cfg  Config
	rt   *Runtime
	pods []types.UID
}

// newFixture builds the shim binary and a Runtime over a fresh root; at
// cleanup every pod is removed (which also kills its processes).
func newFixture(t *testing.T) *fixture {
	t.Helper()
	netnstest.Require(t)
	if _, err := os.Stat(busybox); err != nil {
		t.Skip("needs busybox (hack/deps.sh installs it)")
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("needs nsenter")
	}
	root := t.TempDir()
	bin := filepath.Join(root, "portal-shim")
	build := exec.Command("go", "build", "-o", bin, "github.com/portal-net/portal/cmd/portal-shim")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build shim: %v\n%s", err, out)
	}
	f := &fixture{t: t, cfg: Config{
		RootDir:    filepath.Join(root, "runtime"),
		ShimBinary: bin,
		Network:    &bareNetwork{dir: filepath.Join(root, "netns"), ids: map[string]bool{}},
		Log:        t.Logf,
	}}
	f.rt = f.newRuntime()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, uid := range f.pods {
			if err := f.rt.RemoveSandbox(ctx, uid); err != nil {
				t.Errorf("cleanup: remove %s: %v", uid, err)
			}
		}
		f.rt.Close()
	})
	return f
}

func (f *fixture) newRuntime() *Runtime {
	f.t.Helper()
	rt, err := New(f.cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return rt
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (f *fixture) pod(uid types.UID, hostname string) *podruntime.SandboxStatus {
	f.t.Helper()
	f.pods = append(f.pods, uid)
	begin := time.Now()
	defer func() { f.t.Logf("RunSandbox %s took %s", uid, time.Since(begin)) }()
	st, err := f.rt.RunSandbox(ctxT(f.t), podruntime.SandboxConfig{
		UID: uid, Namespace: "ns1", Name: hostname, Hostname: hostname,
		ResolvConf: []byte(resolv),
		HostsFor: func(ip net.IP) []byte {
			return []byte("127.0.0.1\tlocalhost\n" + ip.String() + "\t" + hostname + "\n")
		},
	})
	if err != nil {
		f.t.Fatalf("RunSandbox: %v", err)
	}
	return st
}

func (f *fixture) start(uid types.UID, cfg podruntime.ContainerConfig) {
	f.t.Helper()
	if cfg.Env == nil {
		cfg.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "GREETING=hi there"}
	}
	if err := f.rt.StartContainer(ctxT(f.t), uid, cfg); err != nil {
		f.t.Fatalf("StartContainer %s: %v", cfg.Name, err)
	}
}

// wait polls the container's status until cond holds.
func (f *fixture) wait(uid types.UID, name string, what string, cond func(podruntime.ContainerStatus) bool) podruntime.ContainerStatus {
	f.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last podruntime.ContainerStatus
	for time.Now().Before(deadline) {
		st, err := f.rt.Status(ctxT(f.t), uid)
		if err != nil {
			f.t.Fatalf("Status: %v", err)
		}
		for _, c := range st.Containers {
			if c.Name == name {
				last = c
				if cond(c) {
					return c
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.t.Fatalf("container %s never became %s; last %+v", name, what, last)
	return last
}

func running(c podruntime.ContainerStatus) bool { return c.State == podruntime.StateRunning }
func exited(c podruntime.ContainerStatus) bool  { return c.State == podruntime.StateExited }

func (f *fixture) exec(uid types.UID, container string, cmd ...string) (string, int) {
	f.t.Helper()
	var out, errb bytes.Buffer
	code, err := f.rt.Exec(ctxT(f.t), uid, container, cmd, podruntime.ExecIO{Stdout: &out, Stderr: &errb})
	if err != nil {
		f.t.Fatalf("Exec %q: %v", cmd, err)
	}
	if errb.Len() > 0 {
		f.t.Logf("exec %q stderr: %s", cmd, errb.String())
	}
	return out.String(), code
}

func (f *fixture) logs(uid types.UID, container string, opts podruntime.LogOptions) string {
	f.t.Helper()
	var out bytes.Buffer
	if err := f.rt.Logs(ctxT(f.t), uid, container, opts, &out); err != nil {
		f.t.Fatalf("Logs: %v", err)
	}
	return out.String()
}

func busyboxSh(name, script string) podruntime.ContainerConfig {
	return podruntime.ContainerConfig{Name: name, Image: "busybox:1.36", Args: []string{"sh", "-c", script}}
}

func agnhostNetexec() podruntime.ContainerConfig {
	return podruntime.ContainerConfig{Name: "web", Image: "registry.k8s.io/e2e-test-images/agnhost:2.53",
		Args: []string{"netexec", "--http-port=8080", "--udp-port=-1"}}
}

// waitHTTP retries an exec'd wget until the server answers.
func (f *fixture) waitHTTP(uid types.UID, container, url string) string {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, code := f.exec(uid, container, busybox, "wget", "-qO-", url)
		if code == 0 {
			return out
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("wget %s: exit %d", url, code)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPodWithTwoContainers(t *testing.T) {
	f := newFixture(t)
	uid := types.UID("pod-two")
	f.pod(uid, "two-pod")
	f.start(uid, busyboxSh("sh", "echo hello; echo oops >&2; sleep 1000"))
	f.start(uid, agnhostNetexec())
	sh := f.wait(uid, "sh", "running", running)
	f.wait(uid, "web", "running", running)
	// RunSandbox again is a no-op that reports the pod.
	again, err := f.rt.RunSandbox(ctxT(t), podruntime.SandboxConfig{UID: uid, Hostname: "other"})
	if err != nil || again.Name != "two-pod" || len(again.Containers) != 2 {
		t.Fatalf("second RunSandbox = %+v, %v", again, err)
	}
	for _, c := range again.Containers {
		if c.Name == "sh" && (c.Pid != sh.Pid || c.State != podruntime.StateRunning) {
			t.Errorf("second RunSandbox disturbed sh: %+v", c)
		}
	}

	// The log file is in CRI format.
	logPath := shim.LogPath(filepath.Join(f.cfg.RootDir, "pods", string(uid)), "sh", 0)
	deadline := time.Now().Add(5 * time.Second)
	var raw []byte
	for !bytes.Contains(raw, []byte("oops")) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		raw, _ = os.ReadFile(logPath)
	}
	for _, re := range []string{`(?m)^\d{4}-\d\d-\d\dT\S+Z stdout F hello$`, `(?m)^\S+ stderr F oops$`} {
		if !regexp.MustCompile(re).Match(raw) {
			t.Errorf("log file does not match %s:\n%s", re, raw)
		}
	}
	// stdout and stderr are separate pipes: their order is not kept.
	if got := f.logs(uid, "sh", podruntime.LogOptions{TailLines: -1}); got != "hello\noops\n" && got != "oops\nhello\n" {
		t.Errorf("Logs = %q", got)
	}

	if out, _ := f.exec(uid, "sh", busybox, "hostname"); out != "two-pod\n" {
		t.Errorf("hostname inside = %q", out)
	}
	if out, _ := f.exec(uid, "sh", busybox, "cat", "/etc/resolv.conf"); out != resolv {
		t.Errorf("resolv.conf inside = %q", out)
	}
	if out, _ := f.exec(uid, "sh", busybox, "cat", "/etc/hosts"); !strings.Contains(out, "10.244.0.2\ttwo-pod\n") {
		t.Errorf("/etc/hosts inside = %q", out)
	}
	// The container's environment, and a /proc of its own PID namespace,
	// where its command is PID 1.
	if out, _ := f.exec(uid, "sh", busybox, "sh", "-c", `echo "$GREETING"; cat /proc/1/cmdline | tr '\0' ' '`); !strings.HasPrefix(out, "hi there\n") || !strings.Contains(out, "sleep 1000") {
		t.Errorf("env / pid 1 inside = %q", out)
	}
	if got := f.waitHTTP(uid, "sh", "http://127.0.0.1:8080/hostname"); got != "two-pod" {
		t.Errorf("agnhost /hostname = %q", got)
	}
	// A cancelled exec ends, with what it started.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	begin := time.Now()
	code, err := f.rt.Exec(ctx, uid, "sh", []string{busybox, "sh", "-c", "sleep 555"}, podruntime.ExecIO{})
	if time.Since(begin) > 5*time.Second {
		t.Errorf("cancelled exec returned after %s (%d, %v)", time.Since(begin), code, err)
	}
	waitNoProcess(t, "sleep 555")

	if out, code := f.exec(uid, "sh", "echo", "hi"); out != "hi\n" || code != 0 {
		t.Errorf("exec echo hi = %q, %d", out, code)
	}
	if _, code := f.exec(uid, "sh", busybox, "sh", "-c", "exit 7"); code != 7 {
		t.Errorf("exec exit 7 = %d", code)
	}
	var out bytes.Buffer
	code, err = f.rt.Exec(ctxT(t), uid, "sh", []string{busybox, "sh", "-c", "read x; echo got $x"},
		podruntime.ExecIO{Stdin: strings.NewReader("line\n"), Stdout: &out})
	if err != nil || code != 0 || out.String() != "got line\n" {
		t.Errorf("exec with stdin = %q, %d, %v", out.String(), code, err)
	}
	out.Reset()
	code, err = f.rt.Exec(ctxT(t), uid, "sh", []string{busybox, "stty", "size"}, podruntime.ExecIO{Stdout: &out, TTY: true,
		Resize: sizes(podruntime.TermSize{Width: 100, Height: 40})})
	if err != nil || code != 0 || strings.TrimSpace(out.String()) != "40 100" {
		t.Errorf("tty exec = %q, %d, %v", out.String(), code, err)
	}
}

func sizes(s ...podruntime.TermSize) <-chan podruntime.TermSize {
	ch := make(chan podruntime.TermSize, len(s))
	for _, x := range s {
		ch <- x
	}
	return ch
}

func TestExitCodesEventsAndRestart(t *testing.T) {
	f := newFixture(t)
	uid := types.UID("pod-exit")
	f.pod(uid, "exit")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := f.rt.Events(ctx)

	f.start(uid, busyboxSh("c", "echo first; exit 3"))
	select {
	case got := <-events:
		if got != uid {
			t.Errorf("event for %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event after the container exited")
	}
	c := f.wait(uid, "c", "exited", exited)
	if c.ExitCode != 3 || c.Reason != "Error" || c.Attempt != 0 || c.FinishedAt.Before(c.StartedAt) {
		t.Errorf("exit 3: %+v", c)
	}

	cfg := busyboxSh("c", "echo second; exit 0")
	cfg.Attempt = 1
	f.start(uid, cfg)
	select {
	case <-events:
	case <-time.After(10 * time.Second):
		t.Fatal("no event after the second attempt exited")
	}
	c = f.wait(uid, "c", "exited", func(c podruntime.ContainerStatus) bool { return exited(c) && c.Attempt == 1 })
	if c.ExitCode != 0 || c.Reason != "Completed" {
		t.Errorf("exit 0: %+v", c)
	}
	if got := f.logs(uid, "c", podruntime.LogOptions{TailLines: -1}); got != "second\n" {
		t.Errorf("current log %q", got)
	}
	if got := f.logs(uid, "c", podruntime.LogOptions{TailLines: -1, Previous: true}); got != "first\n" {
		t.Errorf("previous log %q", got)
	}

	// A command that cannot run fails the start and says why (a missing
	// working directory is made, as container engines do, but not in
	// /proc).
	bad := podruntime.ContainerConfig{Name: "bad", Image: "busybox", Command: []string{"/bin/sh"}, WorkingDir: "/proc/does/not/exist"}
	if err := f.rt.StartContainer(ctxT(t), uid, bad); err == nil || !strings.Contains(err.Error(), "/proc/does/not/exist") {
		t.Errorf("start with a missing working dir: %v", err)
	}
	f.wait(uid, "bad", "exited with StartError", func(c podruntime.ContainerStatus) bool { return exited(c) && c.Reason == "StartError" })
}

func TestLogsFollow(t *testing.T) {
	f := newFixture(t)
	uid := types.UID("pod-follow")
	f.pod(uid, "follow")
	f.start(uid, busyboxSh("c", "for i in 1 2 3; do echo line $i; sleep 0.2; done"))
	start := time.Now()
	got := f.logs(uid, "c", podruntime.LogOptions{TailLines: -1, Follow: true})
	if got != "line 1\nline 2\nline 3\n" {
		t.Errorf("followed %q", got)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Errorf("follow returned after %s, before the container ended", time.Since(start))
	}
}

func TestStopContainer(t *testing.T) {
	f := newFixture(t)
	uid := types.UID("pod-stop")
	f.pod(uid, "stop")
	// The container's first process is PID 1 of its own PID namespace: a
	// SIGTERM counts only with a handler, as with any container engine.
	f.start(uid, busyboxSh("polite", `trap "exit 143" TERM; while true; do sleep 0.1; done`))
	f.start(uid, busyboxSh("stubborn", `trap "" TERM; echo ready; sleep 100`))
	f.wait(uid, "polite", "running", running)
	f.wait(uid, "stubborn", "running", running)
	for !strings.Contains(f.logs(uid, "stubborn", podruntime.LogOptions{TailLines: -1}), "ready") {
		time.Sleep(10 * time.Millisecond)
	}

	begin := time.Now()
	if err := f.rt.StopContainer(ctxT(t), uid, "polite", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("SIGTERM was not honoured: stop took %s", d)
	}
	c := f.wait(uid, "polite", "exited", exited)
	if c.ExitCode != 143 {
		t.Errorf("polite: %+v", c)
	}

	begin = time.Now()
	if err := f.rt.StopContainer(ctxT(t), uid, "stubborn", time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d < time.Second || d > 8*time.Second {
		t.Errorf("stop of a SIGTERM-ignoring container took %s, want the 1s grace", d)
	}
	c = f.wait(uid, "stubborn", "exited", exited)
	if c.Signal != "SIGKILL" || c.ExitCode != 137 {
		t.Errorf("stubborn: %+v", c)
	}
	// Stopping again is fine.
	if err := f.rt.StopContainer(ctxT(t), uid, "stubborn", time.Second); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

// Environment of the agent process TestHelperAgent plays.
const (
	envAgentRoot = "PORTAL_TEST_AGENT_ROOT"
	envAgentShim = "PORTAL_TEST_AGENT_SHIM"
	envAgentNet  = "PORTAL_TEST_AGENT_NETNS"
)

// TestHelperAgent is not a test: TestPodsSurviveAgentRestart runs the test
// binary as an agent that creates a pod, says READY and waits for its
// kill -9.
func TestHelperAgent(t *testing.T) {
	root := os.Getenv(envAgentRoot)
	if root == "" {
		t.Skip("only run as a helper process")
	}
	rt, err := New(Config{RootDir: root, ShimBinary: os.Getenv(envAgentShim),
		Network: &bareNetwork{dir: os.Getenv(envAgentNet), ids: map[string]bool{}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	uid := types.UID("pod-survive")
	if _, err := rt.RunSandbox(ctx, podruntime.SandboxConfig{UID: uid, Namespace: "ns1", Name: "survivor", Hostname: "survivor", ResolvConf: []byte(resolv)}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []podruntime.ContainerConfig{agnhostNetexec(), busyboxSh("sh", "sleep 1000")} {
		if err := rt.StartContainer(ctx, uid, c); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Println("READY")
	time.Sleep(time.Minute)
}

func TestPodsSurviveAgentRestart(t *testing.T) {
	f := newFixture(t)
	uid := types.UID("pod-survive")
	f.pods = append(f.pods, uid)

	// The first agent is another process, killed with SIGKILL.
	agent := exec.Command(os.Args[0], "-test.run=^TestHelperAgent$", "-test.count=1")
	agent.Env = append(os.Environ(), envAgentRoot+"="+f.cfg.RootDir, envAgentShim+"="+f.cfg.ShimBinary,
		envAgentNet+"="+f.cfg.Network.(*bareNetwork).dir)
	stdout, err := agent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	agent.Stderr = os.Stderr
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "READY" {
				ready <- true
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("helper agent failed")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("helper agent not ready in 30s")
	}
	if err := agent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	agent.Wait()

	// This process's Runtime was created before the pod: List adopts it.
	list, err := f.rt.List(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].UID != uid || list[0].IP == nil {
		t.Fatalf("List after the agent died = %+v", list)
	}
	st := &list[0]
	before := f.wait(uid, "web", "running", running)
	f.waitHTTP(uid, "sh", "http://127.0.0.1:8080/hostname")

	// A connection opened inside the pod's network namespace.
	sb, err := readSandbox(filepath.Join(f.cfg.RootDir, "pods", string(uid)))
	if err != nil {
		t.Fatal(err)
	}
	var conn net.Conn
	if err := netns.Do(sb.NetnsPath, func() (err error) {
		conn, err = net.DialTimeout("tcp", "127.0.0.1:8080", 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	get := func() string {
		t.Helper()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprint(conn, "GET /hostname HTTP/1.1\r\nHost: pod\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return b.String()
	}
	if got := get(); got != "survivor" {
		t.Fatalf("before restart: %q", got)
	}

	// This agent goes too; a new one starts on the same directory.
	f.rt.Close()
	f.rt = f.newRuntime()
	list, err = f.rt.List(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].UID != uid || !list[0].IP.Equal(st.IP) {
		t.Fatalf("List after restart = %+v", list)
	}
	var after podruntime.ContainerStatus
	for _, c := range list[0].Containers {
		if c.Name == "web" {
			after = c
		}
	}
	if after.State != podruntime.StateRunning || after.Pid != before.Pid || !after.StartedAt.Equal(before.StartedAt) {
		t.Errorf("after restart web = %+v, before %+v", after, before)
	}
	if got := get(); got != "survivor" {
		t.Errorf("same connection after restart: %q", got)
	}
	// The re-adopted pod delivers events to the new agent.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := f.rt.Events(ctx)
	if err := f.rt.StopContainer(ctxT(t), uid, "sh", time.Second); err != nil {
		t.Fatal(err)
	}
	// StopContainer is not "by itself", but the exit is still reported;
	// what matters is that the watcher of the adopted pod works.
	select {
	case got := <-events:
		if got != uid {
			t.Errorf("event %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Error("no event from the re-adopted pod")
	}

	// A pod whose shim died reports its containers exited.
	shimPid := sb.ShimPid
	killShim(shimPid, filepath.Join(f.cfg.RootDir, "pods", string(uid)))
	waitGone(shimPid, "", 5*time.Second)
	waitGone(before.Pid, "", 5*time.Second)
	status, err := f.rt.Status(ctxT(t), uid)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range status.Containers {
		if c.State != podruntime.StateExited {
			t.Errorf("container %s of a dead shim: %+v", c.Name, c)
		}
	}
}

func TestRemoveSandbox(t *testing.T) {
	f := newFixture(t)
	uid := types.UID("pod-remove")
	f.pod(uid, "remove")
	vol := t.TempDir()
	os.WriteFile(filepath.Join(vol, "data"), []byte("from the volume"), 0o644)
	target := filepath.Join(t.TempDir(), "mnt", "vol")
	cfg := busyboxSh("c", "sleep 1000 & sleep 1000 & wait")
	cfg.Mounts = []podruntime.Mount{{HostPath: vol, ContainerPath: target, ReadOnly: true}}
	f.start(uid, cfg)
	f.start(uid, agnhostNetexec())
	c := f.wait(uid, "c", "running", running)
	if out, _ := f.exec(uid, "c", busybox, "cat", target+"/data"); out != "from the volume" {
		t.Errorf("volume content inside = %q", out)
	}
	if _, code := f.exec(uid, "c", busybox, "touch", target+"/new"); code == 0 {
		t.Error("a read-only volume was writable")
	}
	dir := filepath.Join(f.cfg.RootDir, "pods", string(uid))
	sb, err := readSandbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Every process of the pod: the shim's descendants.
	pids := descendants(sb.ShimPid)
	pids = append(pids, sb.ShimPid)
	if len(pids) < 5 {
		t.Fatalf("expected shim, two sleeps, sh and agnhost; got pids %v", pids)
	}
	_ = c

	if err := f.rt.RemoveSandbox(ctxT(t), uid); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("pid %d still alive after RemoveSandbox", pid)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("pod dir still there: %v", err)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if bytes.Contains(mounts, []byte(f.cfg.RootDir)) || bytes.Contains(mounts, []byte(sb.NetnsPath)) {
		t.Errorf("mounts left:\n%s", mounts)
	}
	if _, err := f.rt.Status(ctxT(t), uid); !errors.Is(err, podruntime.ErrNotFound) {
		t.Errorf("Status after remove: %v", err)
	}
	if err := f.rt.RemoveSandbox(ctxT(t), uid); err != nil {
		t.Errorf("second remove: %v", err)
	}
	if err := f.rt.RemoveSandbox(ctxT(t), "never-existed"); err != nil {
		t.Errorf("remove unknown: %v", err)
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// A zombie is dead already.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func descendants(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			parent[p] = pp
		}
	}
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

func TestImageError(t *testing.T) {
	f := newFixture(t)
	uid := types.UID("pod-image")
	f.pod(uid, "image")
	err := f.rt.StartContainer(ctxT(t), uid, podruntime.ContainerConfig{Name: "c", Image: "example.com/unknown/app:1.0"})
	var ie *podruntime.ImageError
	if !errors.As(err, &ie) || ie.Reason == "" {
		t.Fatalf("StartContainer of an unknown image: %v, want an *ImageError", err)
	}
	if err := f.rt.StartContainer(ctxT(t), "no-such-pod", busyboxSh("c", "true")); !errors.Is(err, podruntime.ErrNotFound) {
		t.Errorf("StartContainer in an unknown pod: %v", err)
	}
}

func TestStdinTTYAndHostNetwork(t *testing.T) {
	f := newFixture(t)
	uid := types.UID("pod-stdin")
	f.pod(uid, "stdin")
	// Without stdin, read sees EOF at once; with it, it waits.
	f.start(uid, busyboxSh("nostdin", "read x; echo eof"))
	withStdin := busyboxSh("stdin", "read x; echo never")
	withStdin.Stdin = true
	f.start(uid, withStdin)
	tty := busyboxSh("tty", "tty; sleep 1000")
	tty.TTY = true
	f.start(uid, tty)
	f.wait(uid, "nostdin", "exited", exited)
	time.Sleep(300 * time.Millisecond)
	f.wait(uid, "stdin", "still running", running)
	deadline := time.Now().Add(5 * time.Second)
	var out string
	for time.Now().Before(deadline) && !strings.Contains(out, "/dev/pts/") {
		time.Sleep(10 * time.Millisecond)
		out = f.logs(uid, "tty", podruntime.LogOptions{TailLines: -1})
	}
	if !strings.HasPrefix(out, "/dev/pts/") {
		t.Errorf("tty container output %q", out)
	}

	// A hostNetwork pod shares the node's network and hostname.
	hn := types.UID("pod-hostnet")
	f.pods = append(f.pods, hn)
	st, err := f.rt.RunSandbox(ctxT(t), podruntime.SandboxConfig{UID: hn, Namespace: "ns1", Name: "hostnet", Hostname: "node-name", HostNetwork: true, ResolvConf: []byte(resolv)})
	if err != nil {
		t.Fatal(err)
	}
	if st.IP != nil {
		t.Errorf("hostNetwork pod IP %v", st.IP)
	}
	f.start(hn, busyboxSh("c", "sleep 1000"))
	f.wait(hn, "c", "running", running)
	host, _ := os.Hostname()
	if out, _ := f.exec(hn, "c", busybox, "hostname"); out != host+"\n" {
		t.Errorf("hostname in a hostNetwork pod = %q, node's is %q", out, host)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("from the node"))
			c.Close()
		}
	}()
	if out, _ := f.exec(hn, "c", busybox, "nc", "127.0.0.1", strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)); out != "from the node" {
		t.Errorf("hostNetwork pod reached %q on the node's loopback", out)
	}
}

// waitNoProcess fails t when a process whose command line contains s is
// still around after a few seconds.
func waitNoProcess(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		found := 0
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			if _, err := strconv.Atoi(e.Name()); err != nil {
				continue
			}
			b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if p, _ := strconv.Atoi(e.Name()); strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), s) && alive(p) {
				found = p
			}
		}
		if found == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("process %d (%q) still running", found, s)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExitedSince(t *testing.T) {
	st := func(cs ...podruntime.ContainerStatus) *shim.State {
		s := &shim.State{}
		for _, c := range cs {
			s.Containers = append(s.Containers, shim.Container{ContainerStatus: c})
		}
		return s
	}
	run := func(a int) podruntime.ContainerStatus {
		return podruntime.ContainerStatus{Name: "c", Attempt: a, State: podruntime.StateRunning}
	}
	exit := func(a int) podruntime.ContainerStatus {
		return podruntime.ContainerStatus{Name: "c", Attempt: a, State: podruntime.StateExited}
	}
	for _, tc := range []struct {
		name      string
		prev, cur *shim.State
		want      bool
	}{
		{"still running", st(run(0)), st(run(0)), false},
		{"exited", st(run(0)), st(exit(0)), true},
		{"already exited", st(exit(0)), st(exit(0)), false},
		{"restarted", st(exit(0)), st(run(1)), false},
		{"new attempt exited at once", st(exit(0)), st(exit(1)), true},
		{"new container exited at once", st(), st(exit(0)), true},
	} {
		if got := exitedSince(tc.prev, tc.cur); got != tc.want {
			t.Errorf("%s: exitedSince = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestPodIPFromNode uses the real bridge network: the node (a namespace of
// its own) reaches agnhost on the pod IP.
func TestPodIPFromNode(t *testing.T) {
	// Created first so that it is removed after the pods.
	node := netnstest.NewNetns(t, "node")
	f := newFixture(t)
	root := t.TempDir()
	nw := network.NewBridge(network.Config{StateDir: filepath.Join(root, "state"), NetnsDir: filepath.Join(root, "netns"), HostNetns: node})
	_, cidr, _ := net.ParseCIDR("10.244.7.0/24")
	if err := nw.Setup(ctxT(t), cidr); err != nil {
		t.Fatalf("network setup: %v", err)
	}
	f.rt.Close()
	f.cfg.Network = nw
	f.rt = f.newRuntime()
	uid := types.UID("pod-ip")
	st := f.pod(uid, "reachable")
	if st.IP == nil || !cidr.Contains(st.IP) {
		t.Fatalf("pod IP %v not in %v", st.IP, cidr)
	}
	f.start(uid, agnhostNetexec())
	f.wait(uid, "web", "running", running)

	addr := net.JoinHostPort(st.IP.String(), "8080")
	var conn net.Conn
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := netns.Do(node, func() (err error) {
			conn, err = net.DialTimeout("tcp", addr, 2*time.Second)
			return err
		})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect to %s from the node: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(conn, "GET /hostname HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if b.String() != "reachable" {
		t.Errorf("GET http://%s/hostname from the node = %q", addr, b.String())
	}
}

func TestMemoryLimitOOMKilled(t *testing.T) {
	f := newFixture(t)
	if !shim.CgroupLimitsAvailable() {
		t.Skip("no cgroup v2 memory/cpu controllers on this host")
	}
	uid := types.UID("pod-oom")
	f.pod(uid, "oom")
	cfg := busyboxSh("hog", `x=$(head -c 300000000 /dev/zero | tr '\0' a); echo "${#x}"`)
	cfg.MemoryLimitBytes = 32 << 20
	cfg.CPULimitMillis = 500
	f.start(uid, cfg)
	c := f.wait(uid, "hog", "exited", exited)
	if c.Reason != "OOMKilled" {
		t.Errorf("over its memory limit: %+v", c)
	}
}

// A finished pod gives back its network but keeps its logs and its
// containers' final states until it is removed.
func TestStopSandboxKeepsLogs(t *testing.T) {
	f := newFixture(t)
	uid := types.UID("pod-done")
	f.pod(uid, "done")
	f.start(uid, busyboxSh("c", "echo finished; exit 0"))
	f.wait(uid, "c", "exited", exited)
	if err := f.rt.StopSandbox(ctxT(t), uid); err != nil {
		t.Fatal(err)
	}
	net := f.cfg.Network.(*bareNetwork)
	net.mu.Lock()
	held := net.ids[string(uid)]
	net.mu.Unlock()
	if held {
		t.Error("the stopped pod still holds its network")
	}
	st, err := f.rt.Status(ctxT(t), uid)
	if err != nil || len(st.Containers) != 1 || st.Containers[0].State != podruntime.StateExited || st.Containers[0].ExitCode != 0 {
		t.Errorf("status after stop: %+v, %v", st, err)
	}
	if got := f.logs(uid, "c", podruntime.LogOptions{TailLines: -1}); got != "finished\n" {
		t.Errorf("logs after stop: %q", got)
	}
	if err := f.rt.StopSandbox(ctxT(t), uid); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

// Each container has its own root: the host's files copy-on-write, the
// image's files, volumes resolved inside it.
func TestPrivateRoot(t *testing.T) {
	f := newFixture(t)
	uid := types.UID("pod-root")
	f.pod(uid, "rooted")
	vol := t.TempDir()
	if err := os.WriteFile(filepath.Join(vol, "f"), []byte("from the volume"), 0o644); err != nil {
		t.Fatal(err)
	}
	// /var/run is a symlink to /run on Debian; the mount must follow it
	// inside the container, never on the host.
	const volPath = "/var/run/portal-test-secrets/vol"
	a := podruntime.ContainerConfig{Name: "a", Image: "registry.k8s.io/e2e-test-images/agnhost:2.53", Args: []string{"pause"},
		Mounts: []podruntime.Mount{{HostPath: vol, ContainerPath: volPath}}}
	f.start(uid, a)
	f.start(uid, podruntime.ContainerConfig{Name: "b", Image: "busybox", Args: []string{"sh", "-c", "pwd; sleep 600"}, WorkingDir: "/made/by/runtime"})
	f.wait(uid, "a", "running", running)
	f.wait(uid, "b", "running", running)

	sh := func(container, script string) (string, int) {
		t.Helper()
		return f.exec(uid, container, "sh", "-c", script)
	}
	// The image's files: the program and the certificate agnhost carries.
	if out, code := sh("a", "/agnhost pause --help >/dev/null 2>&1; test -x /agnhost && head -1 /localhost.crt"); code != 0 || out != "-----BEGIN CERTIFICATE-----\n" {
		t.Errorf("agnhost image files: exit %d, %q", code, out)
	}
	// Moving an image file (the StatefulSet specs break a readiness probe
	// so) works and stays in the container.
	if out, code := sh("a", "mv /localhost.crt /tmp/ && test ! -e /localhost.crt && ls /tmp/localhost.crt"); code != 0 || out != "/tmp/localhost.crt\n" {
		t.Errorf("mv /localhost.crt /tmp/: exit %d, %q", code, out)
	}
	// Writes anywhere stay in the container that made them.
	const probe = "/usr/portal-private-root-test"
	if _, code := sh("a", "echo private > "+probe); code != 0 {
		t.Errorf("write %s: exit %d", probe, code)
	}
	if out, _ := sh("a", "cat "+probe); out != "private\n" {
		t.Errorf("container a reads back %q", out)
	}
	if _, code := sh("b", "test -e "+probe); code == 0 {
		t.Errorf("container b sees a's %s", probe)
	}
	if _, err := os.Stat(probe); err == nil {
		t.Errorf("the host sees the container's %s", probe)
	}
	// Volumes and the pod's /etc files.
	if out, _ := sh("a", "cat "+volPath+"/f"); out != "from the volume" {
		t.Errorf("volume at %s: %q", volPath, out)
	}
	if _, err := os.Stat("/run/portal-test-secrets"); err == nil {
		t.Errorf("the volume's mount point was made on the host")
	}
	if out, _ := sh("a", "cat /etc/hostname"); strings.TrimSpace(out) != "rooted" {
		t.Errorf("/etc/hostname %q", out)
	}
	if out, _ := sh("a", "cat /etc/resolv.conf"); out != resolv {
		t.Errorf("/etc/resolv.conf %q", out)
	}
	// A missing working directory is made inside the container.
	if got := f.logs(uid, "b", podruntime.LogOptions{TailLines: -1}); got != "/made/by/runtime\n" {
		t.Errorf("working directory: %q", got)
	}
	if _, err := os.Stat("/made"); err == nil {
		t.Errorf("the working directory was made on the host")
	}
	// The pod's containers share one IPC namespace, not the host's.
	ipcA, _ := sh("a", "readlink /proc/self/ns/ipc")
	ipcB, _ := sh("b", "readlink /proc/self/ns/ipc")
	hostIPC, _ := os.Readlink("/proc/self/ns/ipc")
	if ipcA == "" || ipcA != ipcB || strings.TrimSpace(ipcA) == hostIPC {
		t.Errorf("IPC namespaces: a %q, b %q, host %q", ipcA, ipcB, hostIPC)
	}
	// The host's tree is not reachable from inside.
	if _, code := sh("a", "test -e /.portal-host"); code == 0 {
		t.Errorf("the host's root is still mounted in the container")
	}
}

// With shareProcessNamespace the containers see each other, and the pod's
// supervisor is PID 1.
func TestSharedPIDNamespace(t *testing.T) {
	f := newFixture(t)
	uid := types.UID("pod-sharepid")
	f.pod(uid, "sharepid")
	a := busyboxSh("a", "sleep 1001")
	a.SharePID = true
	b := busyboxSh("b", "sleep 1002")
	b.SharePID = true
	f.start(uid, a)
	f.start(uid, b)
	f.wait(uid, "a", "running", running)
	f.wait(uid, "b", "running", running)
	out, _ := f.exec(uid, "b", "sh", "-c", `for p in /proc/[0-9]*; do tr '\0' ' ' < $p/cmdline; echo; done`)
	if !strings.Contains(out, "sleep 1001") || !strings.Contains(out, "sleep 1002") {
		t.Errorf("container b does not see both containers' processes:\n%s", out)
	}
	if pid1, _ := f.exec(uid, "b", "sh", "-c", `tr '\0' ' ' < /proc/1/cmdline`); !strings.Contains(pid1, " shim ") {
		t.Errorf("PID 1 of a shared namespace is %q, want the pod's supervisor", pid1)
	}
}
