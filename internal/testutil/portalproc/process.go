package portalproc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Process is one child process of a benchmark: its own process group (so
// Stop reaches anything it spawns) and Pdeathsig (so a crashed benchmark
// leaves nothing behind).
type Process struct {
	Bin string
	// Args are appended to the role's own arguments.
	Args []string
	// Log holds the child's stdout and stderr.
	Log syncBuffer

	cmd  *exec.Cmd
	done chan struct{}
}

// Start execs Bin with args.
func (p *Process) Start(args ...string) error {
	p.Log.Reset()
	p.cmd = exec.Command(p.Bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.Log, &p.Log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", p.Bin, err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(p.cmd, p.done)
	return nil
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Stop sends SIGTERM to the process group and SIGKILL if it has not exited
// within 20 s. Safe to call when not running.
func (p *Process) Stop() { p.signal(syscall.SIGTERM, 20*time.Second) }

// Kill sends SIGKILL to the process group and waits for the exit.
func (p *Process) Kill() { p.signal(syscall.SIGKILL, 0) }

func (p *Process) signal(sig syscall.Signal, grace time.Duration) {
	if p.cmd == nil || p.cmd.Process == nil || p.done == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	if grace > 0 {
		select {
		case <-p.done:
			return
		case <-time.After(grace):
		}
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func (p *Process) procFile(name string) (string, error) {
	if p.cmd == nil || p.cmd.Process == nil {
		return "", errors.New("process not running")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", p.cmd.Process.Pid, name))
	if err != nil {
		return "", fmt.Errorf("reading process %s: %w", name, err)
	}
	return string(b), nil
}

// RSSMB is the resident set size in MiB.
func (p *Process) RSSMB() (float64, error) {
	st, err := p.procFile("status")
	if err != nil {
		return 0, err
	}
	kb, err := ParseVmRSS(st)
	if err != nil {
		return 0, err
	}
	return float64(kb) / 1024, nil
}

// RSSParts splits the resident set in MiB: anonymous memory (the heap,
// stacks) and file pages (the binary's code and data that were touched;
// shared with every process running the same file).
func (p *Process) RSSParts() (anon, file float64, err error) {
	st, err := p.procFile("status")
	if err != nil {
		return 0, 0, err
	}
	a, err := ParseStatusKB(st, "RssAnon")
	if err != nil {
		return 0, 0, err
	}
	f, err := ParseStatusKB(st, "RssFile")
	if err != nil {
		return 0, 0, err
	}
	return float64(a) / 1024, float64(f) / 1024, nil
}

// CPU is the user+system CPU time the process has used so far.
func (p *Process) CPU() (time.Duration, error) {
	st, err := p.procFile("stat")
	if err != nil {
		return 0, err
	}
	return ParseStatCPU(st)
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// ParseStatCPU returns utime+stime of a /proc/PID/stat line.
func ParseStatCPU(stat string) (time.Duration, error) {
	// The command name (field 2) may contain spaces; fields after it are
	// counted from its closing parenthesis.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed stat line")
	}
	f := strings.Fields(stat[i+1:])
	// After ")": state(3) ... utime(14) stime(15) → indexes 11, 12.
	if len(f) < 13 {
		return 0, errors.New("short stat line")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("stat cpu fields: %w", err)
	}
	return time.Duration(u+s) * time.Second / clockTicks, nil
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

// DropPageCache evicts the file's pages from the page cache (those no
// process maps), as after a reboot or an install. The file part of a
// process's RSS depends on that cache's state: a binary the linker has
// just written sits in large folios, and each fault then maps a whole
// folio, so the same proxy showed 56–60 MB of file pages started from a
// fresh build and 19 MB from pages read back from disk. Benchmarks call
// it for every binary they run before starting any, so their memory
// figures do not depend on when each binary was built.
func DropPageCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	// Dirty pages (a binary built a moment ago) are not dropped: write
	// them back first.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("%s: fsync: %w", path, err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("%s: fadvise: %w", path, err)
	}
	return nil
}
