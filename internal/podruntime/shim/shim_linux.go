package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/portal-net/portal/internal/podruntime"
	"github.com/portal-net/portal/internal/podruntime/logs"
)

// Config is one shim's configuration.
type Config struct {
	// Dir is the pod directory (its base name is the pod UID).
	Dir string
	// Hostname is set in the shim's UTS namespace; empty for hostNetwork
	// pods, which share the node's.
	Hostname string
	// InitArgv runs this binary's "init" subcommand.
	InitArgv []string
	// Logger writes to shim.log (the shim's stderr).
	Logger *log.Logger
}

// drainTimeout bounds how long an exited container's output is read
// (a grandchild may hold the pipe open despite the SIGKILL).
const drainTimeout = 2 * time.Second

type server struct {
	cfg Config

	mu      sync.Mutex
	state   State
	changed chan struct{} // closed and replaced on every change
	procs   map[int]*proc // by PID in the pod's namespace
	byName  map[string]*proc
	cgNoted bool

	shutdown chan struct{}
	once     sync.Once
}

type proc struct {
	name    string
	pid     int // in the pod's PID namespace; also the process group
	hostPid int
	cgroup  string
	stdin   *os.File // kept open while the container runs
	syncR   *os.File // init's report
	logFile *os.File
	copiers sync.WaitGroup
	exited  chan struct{}
	status  unix.WaitStatus
	// startErr is set when init could not exec the command.
	startErr string
	stopped  bool
}

// Run is the supervisor: it serves the API on Dir/shim.sock until ctx
// ends, SIGTERM arrives or a shutdown request is answered. Returning ends
// the PID namespace, and with it every process of the pod.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = log.New(os.Stderr, "", log.LstdFlags|log.Lmicroseconds)
	}
	s := &server{
		cfg:      cfg,
		changed:  make(chan struct{}),
		procs:    map[int]*proc{},
		byName:   map[string]*proc{},
		shutdown: make(chan struct{}),
	}
	if cfg.Hostname != "" {
		if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
			return fmt.Errorf("set hostname: %w", err)
		}
	}
	// /proc is still the agent's mount, so /proc/self names this process
	// by the PID the agent sees.
	if self, err := os.Readlink("/proc/self"); err == nil {
		s.state.Pid, _ = strconv.Atoi(self)
	}
	// A restarted shim in an existing directory starts with no containers:
	// the processes died with the previous one.
	s.mu.Lock()
	err := s.persistLocked()
	s.mu.Unlock()
	if err != nil {
		return err
	}

	sigchld := make(chan os.Signal, 16)
	signal.Notify(sigchld, unix.SIGCHLD)
	term := make(chan os.Signal, 1)
	signal.Notify(term, unix.SIGTERM, unix.SIGINT)
	go s.reap(sigchld)

	sock := filepath.Join(cfg.Dir, SocketFile)
	_ = os.Remove(sock)
	ln, err := listenUnix(cfg.Dir)
	if err != nil {
		return err
	}
	defer os.Remove(sock)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /state", s.handleState)
	mux.HandleFunc("POST /start", s.handleStart)
	mux.HandleFunc("POST /stop", s.handleStop)
	mux.HandleFunc("POST /shutdown", s.handleShutdown)
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	cfg.Logger.Printf("shim: serving %s (pid %d)", sock, s.state.Pid)

	select {
	case <-ctx.Done():
		s.killAll()
	case <-term:
		cfg.Logger.Printf("shim: terminated")
		s.killAll()
	case <-s.shutdown:
	}
	_ = os.Remove(sock)
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}

// reap collects every child, the containers and any orphan reparented to
// this PID 1.
func (s *server) reap(sigchld <-chan os.Signal) {
	for range sigchld {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if pid <= 0 || err != nil {
				break
			}
			s.mu.Lock()
			p := s.procs[pid]
			delete(s.procs, pid)
			s.mu.Unlock()
			if p != nil {
				p.status = ws
				go s.finish(p)
			}
		}
	}
}

// finish records a container's exit once its output is drained.
func (s *server) finish(p *proc) {
	// What the container's main process left behind goes with it.
	_ = unix.Kill(-p.pid, unix.SIGKILL)
	drained := make(chan struct{})
	go func() { p.copiers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
	}
	if p.stdin != nil {
		p.stdin.Close()
	}
	p.logFile.Close()
	oom := p.cgroup != "" && cgroupOOMKilled(p.cgroup)
	if p.cgroup != "" {
		removeCgroup(p.cgroup)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byName[p.name] == p {
		c, _ := s.state.Container(p.name)
		c.State = podruntime.StateExited
		c.FinishedAt = time.Now()
		ws := p.status
		switch {
		case ws.Signaled():
			c.ExitCode = 128 + int(ws.Signal())
			c.Signal = unix.SignalName(ws.Signal())
		default:
			c.ExitCode = ws.ExitStatus()
		}
		switch {
		case oom:
			c.Reason = "OOMKilled"
		case p.startErr != "":
			c.Reason = "StartError"
			c.Message = p.startErr
		case c.ExitCode == 0:
			c.Reason = "Completed"
		default:
			c.Reason = "Error"
		}
		s.cfg.Logger.Printf("shim: container %s attempt %d exited: code %d %s %s", p.name, c.Attempt, c.ExitCode, c.Reason, c.Signal)
		s.changedLocked()
	}
	close(p.exited)
}

func (s *server) changedLocked() {
	s.state.Generation++
	if err := s.persistLocked(); err != nil {
		s.cfg.Logger.Printf("shim: %v", err)
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// persistLocked writes state.json atomically, for an agent that finds the
// shim gone.
func (s *server) persistLocked() error {
	b, err := json.Marshal(&s.state)
	if err != nil {
		return err
	}
	path := filepath.Join(s.cfg.Dir, StateFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

func (s *server) handleState(w http.ResponseWriter, r *http.Request) {
	after, waitFor := uint64(0), false
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			httpError(w, http.StatusBadRequest, "bad after: %v", err)
			return
		}
		after, waitFor = n, true
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		if !waitFor || s.state.Generation > after {
			b, err := json.Marshal(&s.state)
			s.mu.Unlock()
			if err != nil {
				httpError(w, http.StatusInternalServerError, "%v", err)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(b)
			return
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-timeout.C:
			waitFor = false
		case <-r.Context().Done():
			return
		}
	}
}

func (s *server) handleStart(w http.ResponseWriter, r *http.Request) {
	var req StartRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, "decode: %v", err)
		return
	}
	if req.Name == "" || len(req.Argv) == 0 || strings.ContainsAny(req.Name, "/\x00") || req.Name == "." || req.Name == ".." {
		httpError(w, http.StatusBadRequest, "start needs a valid name and argv")
		return
	}
	c, status, err := s.start(req)
	if err != nil {
		httpError(w, status, "%v", err)
		return
	}
	writeJSON(w, c)
}

func (s *server) start(req StartRequest) (*Container, int, error) {
	s.mu.Lock()
	if old := s.byName[req.Name]; old != nil {
		select {
		case <-old.exited:
		default:
			s.mu.Unlock()
			return nil, http.StatusConflict, fmt.Errorf("container %s is running", req.Name)
		}
	}
	p, err := s.forkLocked(req)
	s.mu.Unlock()
	if err != nil {
		return nil, http.StatusInternalServerError, err
	}
	return s.awaitExec(p)
}

// initConfig is what a container's init process does before exec.
type initConfig struct {
	Argv       []string
	Env        []string
	WorkingDir string
	Mounts     []podruntime.Mount
	Files      []podruntime.File
	// Files bind-mounted over /etc/<name>.
	EtcFiles map[string]string
	Cgroup   string
	// Root is an empty host directory on which init builds the
	// container's root filesystem (see rootfs_linux.go).
	Root string
	// Self is the path of the binary init runs from: an argv[0] naming
	// it is executed through /proc/self/exe, which the container's root
	// need not show.
	Self string
}

// InitEnv carries the initConfig (JSON) to the init process.
const InitEnv = "PORTAL_SHIM_INIT"

// forkLocked starts init for req and registers the process before the
// reaper can see it exit.
func (s *server) forkLocked(req StartRequest) (p *proc, err error) {
	logPath := LogPath(s.cfg.Dir, req.Name, req.Attempt)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	var closeAfter, closeOnErr []*os.File
	defer func() {
		for _, f := range closeAfter {
			f.Close()
		}
		if err != nil {
			for _, f := range closeOnErr {
				f.Close()
			}
			logFile.Close()
		}
	}()
	p = &proc{name: req.Name, logFile: logFile, exited: make(chan struct{})}

	var stdio [3]*os.File
	lw := logs.NewWriter(logFile)
	// The output copiers start once the fork succeeded.
	var copiers []func()
	if req.TTY {
		ptmx, tty, err := pty.Open()
		if err != nil {
			return nil, fmt.Errorf("open pty: %w", err)
		}
		closeAfter = append(closeAfter, tty)
		closeOnErr = append(closeOnErr, ptmx)
		stdio = [3]*os.File{tty, tty, tty}
		copiers = append(copiers, func() { go p.copy(lw.Stream(logs.Stdout), ptmx, ptmx) })
	} else {
		if req.Stdin {
			r, w, err := os.Pipe()
			if err != nil {
				return nil, err
			}
			closeAfter = append(closeAfter, r)
			closeOnErr = append(closeOnErr, w)
			stdio[0], p.stdin = r, w
		} else {
			null, err := os.Open(os.DevNull)
			if err != nil {
				return nil, err
			}
			closeAfter = append(closeAfter, null)
			stdio[0] = null
		}
		for i, stream := range []string{logs.Stdout, logs.Stderr} {
			r, w, err := os.Pipe()
			if err != nil {
				return nil, err
			}
			closeAfter = append(closeAfter, w)
			closeOnErr = append(closeOnErr, r)
			stdio[i+1] = w
			copiers = append(copiers, func() { go p.copy(lw.Stream(stream), r, r) })
		}
	}
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	closeAfter = append(closeAfter, syncW)
	p.syncR = syncR
	closeOnErr = append(closeOnErr, syncR)

	if needsCgroup(req) {
		cg, err := s.setupCgroup(req)
		if err != nil {
			s.cfg.Logger.Printf("shim: container %s: %v", req.Name, err)
		}
		p.cgroup = cg
	}

	cfg := initConfig{
		Argv:       req.Argv,
		Env:        req.Env,
		WorkingDir: req.WorkingDir,
		Mounts:     req.Mounts,
		Files:      req.Files,
		EtcFiles:   map[string]string{},
		Cgroup:     p.cgroup,
		Root:       filepath.Join(s.cfg.Dir, ContainersDir, req.Name, "rootfs"),
	}
	if err := os.MkdirAll(cfg.Root, 0o755); err != nil {
		return nil, err
	}
	if self, err := os.Executable(); err == nil {
		cfg.Self = self
	}
	for _, name := range []string{ResolvConfFile, HostsFile, HostnameFile} {
		if src := filepath.Join(s.cfg.Dir, name); exists(src) {
			cfg.EtcFiles[name] = src
		}
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	// The pod's IPC namespace is the shim's: containers share it.
	clone := uintptr(unix.CLONE_NEWNS)
	if !req.SharePID {
		clone |= unix.CLONE_NEWPID
	}
	attr := &syscall.ProcAttr{
		Env:   []string{InitEnv + "=" + string(b)},
		Files: []uintptr{stdio[0].Fd(), stdio[1].Fd(), stdio[2].Fd(), syncW.Fd()},
		Sys: &syscall.SysProcAttr{
			Cloneflags: clone,
			// Its own process group (session with a TTY), so a stop
			// reaches everything the container started.
			Setpgid: !req.TTY,
			Setsid:  req.TTY,
			Setctty: req.TTY,
		},
	}
	pid, err := syscall.ForkExec(s.cfg.InitArgv[0], s.cfg.InitArgv, attr)
	if err != nil {
		if p.cgroup != "" {
			removeCgroup(p.cgroup)
		}
		return nil, fmt.Errorf("start init: %w", err)
	}
	p.pid = pid
	p.copiers.Add(len(copiers))
	for _, start := range copiers {
		start()
	}
	s.procs[pid] = p
	s.byName[req.Name] = p
	c := Container{Spec: req}
	c.Name = req.Name
	c.State = podruntime.StateRunning
	c.Attempt = req.Attempt
	c.StartedAt = time.Now()
	if old, ok := s.state.Container(req.Name); ok {
		*old = c
	} else {
		s.state.Containers = append(s.state.Containers, c)
	}
	s.cfg.Logger.Printf("shim: container %s attempt %d: %q", req.Name, req.Attempt, req.Argv)
	return p, nil
}

// awaitExec reads init's report: its PID as the agent sees it, then EOF
// when exec succeeded (the pipe is close-on-exec) or an error message.
func (s *server) awaitExec(p *proc) (*Container, int, error) {
	defer p.syncR.Close()
	br := bufio.NewReader(p.syncR)
	first, _ := br.ReadString('\n')
	var hello struct{ HostPid int }
	_ = json.Unmarshal([]byte(first), &hello)
	rest, _ := io.ReadAll(br)
	msg := strings.TrimSpace(string(rest))

	s.mu.Lock()
	defer s.mu.Unlock()
	p.hostPid = hello.HostPid
	c, _ := s.state.Container(p.name)
	if s.byName[p.name] == p {
		c.Pid = p.hostPid
	}
	if msg == "" && hello.HostPid == 0 {
		msg = "init failed before reporting"
	}
	if msg != "" {
		p.startErr = msg
		s.changedLocked()
		return nil, http.StatusInternalServerError, fmt.Errorf("container %s: %s", p.name, msg)
	}
	s.changedLocked()
	out := *c
	return &out, 0, nil
}

// copy logs one output stream until EOF (EIO on a pty whose other side
// closed).
func (p *proc) copy(dst io.WriteCloser, src io.Reader, closer io.Closer) {
	defer p.copiers.Done()
	defer closer.Close()
	defer dst.Close()
	_, _ = io.Copy(dst, src)
}

func (s *server) handleStop(w http.ResponseWriter, r *http.Request) {
	var req StopRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, "decode: %v", err)
		return
	}
	s.mu.Lock()
	p := s.byName[req.Name]
	s.mu.Unlock()
	if p == nil {
		writeJSON(w, struct{}{})
		return
	}
	sig := unix.SIGTERM
	if req.Signal != 0 {
		sig = unix.Signal(req.Signal)
	}
	if err := s.stop(r.Context(), p, sig, req.Grace); err != nil {
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	writeJSON(w, struct{}{})
}

func (s *server) stop(ctx context.Context, p *proc, sig unix.Signal, grace time.Duration) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	s.cfg.Logger.Printf("shim: stopping %s (pid %d) with %s, grace %s", p.name, p.pid, unix.SignalName(sig), grace)
	signalGroup(p.pid, sig)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	signalGroup(p.pid, unix.SIGKILL)
	select {
	case <-p.exited:
		return nil
	case <-time.After(drainTimeout + 5*time.Second):
		return fmt.Errorf("container %s did not exit after SIGKILL", p.name)
	}
}

func signalGroup(pid int, sig unix.Signal) {
	_ = unix.Kill(-pid, sig)
	_ = unix.Kill(pid, sig)
}

func (s *server) handleShutdown(w http.ResponseWriter, r *http.Request) {
	s.killAll()
	writeJSON(w, struct{}{})
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	s.once.Do(func() { close(s.shutdown) })
}

// killAll SIGKILLs every container and waits (bounded) for their exits
// to be recorded.
func (s *server) killAll() {
	s.mu.Lock()
	var ps []*proc
	for _, p := range s.byName {
		ps = append(ps, p)
	}
	s.mu.Unlock()
	for _, p := range ps {
		select {
		case <-p.exited:
		default:
			signalGroup(p.pid, unix.SIGKILL)
		}
	}
	deadline := time.After(drainTimeout + 3*time.Second)
	for _, p := range ps {
		select {
		case <-p.exited:
		case <-deadline:
			return
		}
	}
}

func httpError(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct{ Error string }{fmt.Sprintf(format, args...)})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
