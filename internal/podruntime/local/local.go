package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/portal-net/portal/internal/podruntime"
	"github.com/portal-net/portal/internal/podruntime/images"
	"github.com/portal-net/portal/internal/podruntime/logs"
	"github.com/portal-net/portal/internal/podruntime/network"
	"github.com/portal-net/portal/internal/podruntime/shim"
)

// Config configures a local Runtime.
type Config struct {
	// RootDir holds the pods, in RootDir/pods/<uid>.
	RootDir string
	// ShimBinary is the absolute path of the binary whose first argument
	// selects shim, init or a built-in image (cmd/portal-shim).
	ShimBinary string
	// Network attaches non-hostNetwork pods.
	Network network.Manager
	// Resolve maps image, command and args to the argv to run
	// (default images.Resolve).
	Resolve func(image string, command, args []string, shim string) ([]string, error)
	// Log receives notable events (default: discarded).
	Log func(format string, args ...any)
}

// Runtime runs pods as local processes under per-pod supervisors.
type Runtime struct {
	cfg Config

	ctx    context.Context // ends with Close; scopes the watchers
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// pods serialises sandbox creation and removal per pod; different
	// pods are set up in parallel (the network manager is safe for that).
	pods     podLocks
	wmu      sync.Mutex
	watchers map[types.UID]*watcher

	smu  sync.Mutex
	subs map[chan types.UID]context.Context

	noLimits sync.Once
}

var _ podruntime.Runtime = (*Runtime)(nil)

// sandboxFile is sandbox.json: what the agent needs about a pod after a
// restart.
type sandboxFile struct {
	Config    sandboxConfig
	IP        net.IP
	NetnsPath string
	CreatedAt time.Time
	ShimPid   int
}

// sandboxConfig is the part of podruntime.SandboxConfig kept on disk.
type sandboxConfig struct {
	UID         types.UID
	Namespace   string
	Name        string
	Hostname    string
	HostNetwork bool
	HostIPC     bool `json:",omitempty"`
}

const sandboxFileName = "sandbox.json"

// shimStartTimeout bounds how long RunSandbox waits for the shim socket.
const shimStartTimeout = 10 * time.Second

// New opens (creating) RootDir and re-adopts the pods whose shims are
// alive. Close stops its background work; pods keep running.
func New(cfg Config) (*Runtime, error) {
	if cfg.RootDir == "" {
		return nil, errors.New("local runtime: RootDir is required")
	}
	if !filepath.IsAbs(cfg.ShimBinary) {
		return nil, fmt.Errorf("local runtime: ShimBinary %q must be an absolute path", cfg.ShimBinary)
	}
	if cfg.Resolve == nil {
		cfg.Resolve = images.Resolve
	}
	if cfg.Log == nil {
		cfg.Log = func(string, ...any) {}
	}
	if err := os.MkdirAll(filepath.Join(cfg.RootDir, "pods"), 0o700); err != nil {
		return nil, fmt.Errorf("local runtime: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runtime{
		cfg:      cfg,
		ctx:      ctx,
		cancel:   cancel,
		watchers: map[types.UID]*watcher{},
		subs:     map[chan types.UID]context.Context{},
	}
	if _, err := r.List(ctx); err != nil {
		cancel()
		return nil, err
	}
	return r, nil
}

// Close stops watching the shims. The pods and their shims keep running
// and a later New re-adopts them.
func (r *Runtime) Close() {
	r.cancel()
	r.wg.Wait()
}

func (r *Runtime) podDir(uid types.UID) (string, error) {
	s := string(uid)
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
		return "", fmt.Errorf("invalid pod uid %q", s)
	}
	return filepath.Join(r.cfg.RootDir, "pods", s), nil
}

func readSandbox(dir string) (*sandboxFile, error) {
	b, err := os.ReadFile(filepath.Join(dir, sandboxFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, podruntime.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var sb sandboxFile
	if err := json.Unmarshal(b, &sb); err != nil {
		return nil, fmt.Errorf("%s: %w", sandboxFileName, err)
	}
	return &sb, nil
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func writeSandbox(dir string, sb *sandboxFile) error {
	b, err := json.Marshal(sb)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, sandboxFileName), b, 0o600)
}

// liveState asks the pod's shim for its state; ok is false when the shim
// does not answer (gone, or not started).
func liveState(ctx context.Context, dir string) (*shim.State, bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := shim.NewClient(dir).State(ctx)
	return st, err == nil
}

// RunSandbox implements podruntime.Runtime.
func (r *Runtime) RunSandbox(ctx context.Context, cfg podruntime.SandboxConfig) (*podruntime.SandboxStatus, error) {
	dir, err := r.podDir(cfg.UID)
	if err != nil {
		return nil, err
	}
	defer r.pods.lock(cfg.UID)()
	if _, err := readSandbox(dir); err == nil {
		if _, ok := liveState(ctx, dir); ok {
			r.ensureWatcher(cfg.UID, dir)
			return r.Status(ctx, cfg.UID)
		}
		// The shim is gone and with it every container: start afresh.
		r.cfg.Log("pod %s: shim gone, recreating the sandbox", cfg.UID)
		if err := r.teardown(ctx, cfg.UID, dir, false); err != nil {
			return nil, err
		}
	}
	if err := r.create(ctx, dir, cfg); err != nil {
		if terr := r.teardown(context.WithoutCancel(ctx), cfg.UID, dir, false); terr != nil {
			r.cfg.Log("pod %s: clean up failed sandbox: %v", cfg.UID, terr)
		}
		return nil, err
	}
	r.ensureWatcher(cfg.UID, dir)
	return r.Status(ctx, cfg.UID)
}

func (r *Runtime) create(ctx context.Context, dir string, cfg podruntime.SandboxConfig) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// Containers run as root but the pod's files must be readable by
	// any user a container switches to.
	if err := os.Chmod(dir, 0o711); err != nil {
		return err
	}
	sb := &sandboxFile{CreatedAt: time.Now(), Config: sandboxConfig{
		UID:         cfg.UID,
		Namespace:   cfg.Namespace,
		Name:        cfg.Name,
		Hostname:    cfg.Hostname,
		HostNetwork: cfg.HostNetwork,
		HostIPC:     cfg.HostIPC,
	}}
	if !cfg.HostNetwork {
		if r.cfg.Network == nil {
			return errors.New("no pod network configured")
		}
		att, err := r.cfg.Network.Add(ctx, string(cfg.UID))
		if err != nil {
			return fmt.Errorf("pod network: %w", err)
		}
		sb.IP, sb.NetnsPath = att.IP, att.NetnsPath
	}
	hosts := cfg.Hosts
	if cfg.HostsFor != nil {
		// nil for a hostNetwork pod: the runtime has no IP for it.
		hosts = cfg.HostsFor(sb.IP)
	}
	for name, content := range map[string][]byte{
		shim.ResolvConfFile: cfg.ResolvConf,
		shim.HostsFile:      hosts,
		shim.HostnameFile:   []byte(cfg.Hostname + "\n"),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			return err
		}
	}
	if err := writeSandbox(dir, sb); err != nil {
		return err
	}
	pid, exited, err := startShim(r.cfg.ShimBinary, dir, sb)
	if err != nil {
		return fmt.Errorf("start shim: %w", err)
	}
	sb.ShimPid = pid
	if err := writeSandbox(dir, sb); err != nil {
		return err
	}
	deadline := time.NewTimer(shimStartTimeout)
	defer deadline.Stop()
	for {
		if _, ok := liveState(ctx, dir); ok {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("shim exited at start: %s", tail(filepath.Join(dir, shim.LogFile)))
		case <-deadline.C:
			return fmt.Errorf("shim did not answer within %s: %s", shimStartTimeout, tail(filepath.Join(dir, shim.LogFile)))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// tail is the end of a log file, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 512 {
		b = b[len(b)-512:]
	}
	return strings.TrimSpace(string(b))
}

// teardown stops the shim (and so every process of the pod), detaches the
// network and removes the pod directory.
// teardown stops the pod and releases its network; keepFiles leaves its
// directory (state, logs) for a finished pod.
func (r *Runtime) teardown(ctx context.Context, uid types.UID, dir string, keepFiles bool) error {
	r.stopWatcher(uid)
	sb, sbErr := readSandbox(dir)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := shim.NewClient(dir).Shutdown(sctx)
	cancel()
	if err != nil && sb != nil && sb.ShimPid > 0 {
		// No answer: kill it; as PID 1 of the pod its death takes every
		// container with it.
		killShim(sb.ShimPid, dir)
	}
	if sb != nil {
		if sb.ShimPid > 0 {
			waitGone(sb.ShimPid, dir, 5*time.Second)
		}
		if st, err := shim.ReadState(dir); err == nil {
			for _, c := range st.Containers {
				if c.Pid > 0 && c.State == podruntime.StateRunning {
					waitGone(c.Pid, "", 5*time.Second)
				}
			}
		}
	}
	hostNetwork := sb != nil && sb.Config.HostNetwork
	if r.cfg.Network != nil && (!hostNetwork || sbErr != nil) {
		if err := r.cfg.Network.Del(ctx, string(uid)); err != nil {
			return fmt.Errorf("pod network: %w", err)
		}
	}
	if keepFiles {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return nil
}

// RemoveSandbox implements podruntime.Runtime.
func (r *Runtime) RemoveSandbox(ctx context.Context, uid types.UID) error {
	dir, err := r.podDir(uid)
	if err != nil {
		return err
	}
	defer r.pods.lock(uid)()
	return r.teardown(ctx, uid, dir, false)
}

// StopSandbox implements podruntime.Runtime.
func (r *Runtime) StopSandbox(ctx context.Context, uid types.UID) error {
	dir, err := r.podDir(uid)
	if err != nil {
		return err
	}
	defer r.pods.lock(uid)()
	if _, err := readSandbox(dir); err != nil {
		return nil // nothing here (or removed already)
	}
	return r.teardown(ctx, uid, dir, true)
}

// Status implements podruntime.Runtime.
func (r *Runtime) Status(ctx context.Context, uid types.UID) (*podruntime.SandboxStatus, error) {
	dir, err := r.podDir(uid)
	if err != nil {
		return nil, err
	}
	sb, err := readSandbox(dir)
	if err != nil {
		return nil, err
	}
	st, _ := r.state(ctx, dir)
	out := &podruntime.SandboxStatus{
		UID:       sb.Config.UID,
		Namespace: sb.Config.Namespace,
		Name:      sb.Config.Name,
		IP:        sb.IP,
		CreatedAt: sb.CreatedAt,
	}
	for _, c := range st.Containers {
		out.Containers = append(out.Containers, c.ContainerStatus)
	}
	return out, nil
}

// state is the shim's state, or, when the shim is gone, its last
// state.json with every container exited. live tells which.
func (r *Runtime) state(ctx context.Context, dir string) (st *shim.State, live bool) {
	if st, ok := liveState(ctx, dir); ok {
		return st, true
	}
	st, err := shim.ReadState(dir)
	if err != nil {
		return &shim.State{}, false
	}
	for i := range st.Containers {
		c := &st.Containers[i]
		if c.State == podruntime.StateRunning {
			c.State = podruntime.StateExited
			c.FinishedAt = time.Now()
			c.ExitCode = 255
			c.Reason = "Error"
			c.Message = "the pod's supervisor is gone"
		}
	}
	return st, false
}

// List implements podruntime.Runtime. Pods with a live shim are watched
// from here on.
func (r *Runtime) List(ctx context.Context) ([]podruntime.SandboxStatus, error) {
	ents, err := os.ReadDir(filepath.Join(r.cfg.RootDir, "pods"))
	if err != nil {
		return nil, err
	}
	var out []podruntime.SandboxStatus
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		uid := types.UID(e.Name())
		st, err := r.Status(ctx, uid)
		if errors.Is(err, podruntime.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		dir, _ := r.podDir(uid)
		if _, ok := liveState(ctx, dir); ok {
			r.ensureWatcher(uid, dir)
		}
		out = append(out, *st)
	}
	return out, nil
}

// container is one container's state, from the live shim when live.
func (r *Runtime) container(ctx context.Context, uid types.UID, name string) (*shim.Container, string, bool, error) {
	dir, err := r.podDir(uid)
	if err != nil {
		return nil, "", false, err
	}
	if _, err := readSandbox(dir); err != nil {
		return nil, dir, false, err
	}
	st, live := r.state(ctx, dir)
	c, ok := st.Container(name)
	if !ok {
		return nil, dir, live, fmt.Errorf("container %s: %w", name, podruntime.ErrNotFound)
	}
	return c, dir, live, nil
}

// StartContainer implements podruntime.Runtime.
func (r *Runtime) StartContainer(ctx context.Context, uid types.UID, cfg podruntime.ContainerConfig) error {
	dir, err := r.podDir(uid)
	if err != nil {
		return err
	}
	if _, err := readSandbox(dir); err != nil {
		return err
	}
	argv, err := r.cfg.Resolve(cfg.Image, cfg.Command, cfg.Args, r.cfg.ShimBinary)
	if err != nil {
		return err
	}
	files, err := images.Files(cfg.Image, r.cfg.ShimBinary)
	if err != nil {
		return fmt.Errorf("image %s: %w", cfg.Image, err)
	}
	if (cfg.MemoryLimitBytes > 0 || cfg.CPULimitMillis > 0) && !shim.CgroupLimitsAvailable() {
		r.noLimits.Do(func() {
			r.cfg.Log("container limits are not enforced: no cgroup v2 memory/cpu controllers on this host")
		})
	}
	_, err = shim.NewClient(dir).Start(ctx, shim.StartRequest{
		Name:             cfg.Name,
		Argv:             argv,
		Env:              cfg.Env,
		WorkingDir:       cfg.WorkingDir,
		Mounts:           cfg.Mounts,
		Files:            files,
		Attempt:          cfg.Attempt,
		Stdin:            cfg.Stdin,
		TTY:              cfg.TTY,
		MemoryLimitBytes: cfg.MemoryLimitBytes,
		CPULimitMillis:   cfg.CPULimitMillis,
		SharePID:         cfg.SharePID,
	})
	if err != nil {
		return fmt.Errorf("start container %s: %w", cfg.Name, err)
	}
	return nil
}

// StopContainer implements podruntime.Runtime.
func (r *Runtime) StopContainer(ctx context.Context, uid types.UID, name string, grace time.Duration) error {
	c, dir, live, err := r.container(ctx, uid, name)
	if errors.Is(err, podruntime.ErrNotFound) || (err == nil && (!live || c.State != podruntime.StateRunning)) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := shim.NewClient(dir).Stop(ctx, shim.StopRequest{Name: name, Grace: grace}); err != nil {
		return fmt.Errorf("stop container %s: %w", name, err)
	}
	return nil
}

// Logs implements podruntime.Runtime.
func (r *Runtime) Logs(ctx context.Context, uid types.UID, container string, opts podruntime.LogOptions, w io.Writer) error {
	c, dir, live, err := r.container(ctx, uid, container)
	if err != nil {
		return err
	}
	attempt := c.Attempt
	ended := func() bool { return true }
	if opts.Previous {
		if attempt == 0 {
			return fmt.Errorf("previous terminated container %s: %w", container, podruntime.ErrNotFound)
		}
		attempt--
	} else if live && c.State == podruntime.StateRunning {
		ended = func() bool {
			st, ok := liveState(ctx, dir)
			if !ok {
				return true
			}
			now, ok := st.Container(container)
			return !ok || now.Attempt != attempt || now.State != podruntime.StateRunning
		}
	}
	return logs.Read(ctx, shim.LogPath(dir, container, attempt), opts, w, ended)
}

// Events implements podruntime.Runtime.
func (r *Runtime) Events(ctx context.Context) <-chan types.UID {
	ch := make(chan types.UID, 64)
	r.smu.Lock()
	r.subs[ch] = ctx
	r.smu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-r.ctx.Done():
		}
		r.smu.Lock()
		delete(r.subs, ch)
		close(ch)
		r.smu.Unlock()
	}()
	return ch
}

func (r *Runtime) emit(uid types.UID) {
	r.smu.Lock()
	defer r.smu.Unlock()
	for ch, ctx := range r.subs {
		select {
		case ch <- uid:
		case <-ctx.Done():
		case <-r.ctx.Done():
		}
	}
}

func (r *Runtime) ensureWatcher(uid types.UID, dir string) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if _, ok := r.watchers[uid]; ok || r.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancel(r.ctx)
	w := &watcher{cancel: cancel}
	r.watchers[uid] = w
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.watch(ctx, uid, dir)
		r.wmu.Lock()
		if r.watchers[uid] == w {
			delete(r.watchers, uid)
		}
		r.wmu.Unlock()
	}()
}

type watcher struct{ cancel context.CancelFunc }

func (r *Runtime) stopWatcher(uid types.UID) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if w, ok := r.watchers[uid]; ok {
		w.cancel()
		delete(r.watchers, uid)
	}
}

// watch long-polls one shim and emits uid whenever a container exits; it
// emits once more and stops when the shim goes away.
func (r *Runtime) watch(ctx context.Context, uid types.UID, dir string) {
	client := shim.NewClient(dir)
	var prev *shim.State
	var gen uint64
	failures := 0
	for ctx.Err() == nil {
		var st *shim.State
		var err error
		if prev == nil {
			st, err = client.State(ctx)
		} else {
			st, err = client.Wait(ctx, gen)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			if _, statErr := os.Stat(filepath.Join(dir, shim.SocketFile)); statErr != nil || failures > 3 {
				r.cfg.Log("pod %s: shim gone: %v", uid, err)
				r.emit(uid)
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		failures = 0
		if prev != nil && exitedSince(prev, st) {
			r.emit(uid)
		}
		prev, gen = st, st.Generation
	}
}

// exitedSince reports whether some container attempt that was not already
// known as exited in prev is exited in cur.
func exitedSince(prev, cur *shim.State) bool {
	for _, c := range cur.Containers {
		if c.State != podruntime.StateExited {
			continue
		}
		p, ok := prev.Container(c.Name)
		if !ok || p.Attempt != c.Attempt || p.State != podruntime.StateExited {
			return true
		}
	}
	return false
}

// pidCmdlineHas reports whether process pid's command line contains s
// (so a recycled PID is not killed by mistake).
func pidCmdlineHas(pid int, s string) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	return s == "" || strings.Contains(string(b), s)
}

// waitGone waits until pid (whose command line contains match) is gone.
func waitGone(pid int, match string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for pidCmdlineHas(pid, match) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// podLocks are per-pod mutexes that exist while someone holds or waits
// for them.
type podLocks struct {
	mu sync.Mutex
	m  map[types.UID]*podLock
}

type podLock struct {
	sync.Mutex
	refs int
}

// lock locks uid's mutex and returns its unlock.
func (p *podLocks) lock(uid types.UID) func() {
	p.mu.Lock()
	if p.m == nil {
		p.m = map[types.UID]*podLock{}
	}
	l, ok := p.m[uid]
	if !ok {
		l = &podLock{}
		p.m[uid] = l
	}
	l.refs++
	p.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		p.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(p.m, uid)
		}
		p.mu.Unlock()
	}
}
