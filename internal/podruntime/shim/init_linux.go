package shim

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// syncFd is the pipe to the shim: init reports its PID, then an error
// message or nothing (the pipe closes on exec).
const syncFd = 3

// defaultPath is the PATH used to find the command when Env has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Init is the container's first process (the "init" subcommand). It runs
// in a fresh mount namespace inside the pod's PID, network and UTS
// namespaces, gives the container its own root filesystem (enterRoot)
// and execs the command. It returns only on failure, with the exit code.
func Init() int {
	report := os.NewFile(syncFd, "sync")
	fail := func(format string, args ...any) int {
		msg := fmt.Sprintf(format, args...)
		fmt.Fprintln(os.Stderr, msg)
		_, _ = report.Write([]byte(msg))
		return 128
	}
	// Before /proc is replaced it still names this process by the PID the
	// agent sees.
	self, _ := os.Readlink("/proc/self")
	hostPid, _ := strconv.Atoi(self)
	b, _ := json.Marshal(struct{ HostPid int }{hostPid})
	if _, err := report.Write(append(b, '\n')); err != nil {
		return 128
	}

	var cfg initConfig
	if err := json.Unmarshal([]byte(os.Getenv(InitEnv)), &cfg); err != nil {
		return fail("init: bad config: %v", err)
	}
	if len(cfg.Argv) == 0 {
		return fail("init: no command")
	}
	if cfg.Cgroup != "" {
		if err := os.WriteFile(filepath.Join(cfg.Cgroup, "cgroup.procs"), []byte("0"), 0); err != nil {
			return fail("init: join cgroup: %v", err)
		}
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fail("init: make mounts private: %v", err)
	}
	if cfg.Root == "" {
		return fail("init: no root directory")
	}
	if err := enterRoot(&cfg); err != nil {
		return fail("init: %v", err)
	}
	if cfg.WorkingDir != "" {
		// Like a container engine, create a working directory the
		// image lacks.
		if err := os.MkdirAll(cfg.WorkingDir, 0o755); err != nil {
			return fail("init: working directory %s: %v", cfg.WorkingDir, err)
		}
		if err := os.Chdir(cfg.WorkingDir); err != nil {
			return fail("init: working directory %s: %v", cfg.WorkingDir, err)
		}
	}
	path, err := lookPath(cfg.Argv[0], cfg.Env)
	if err != nil {
		return fail("init: %v", err)
	}
	if path == cfg.Self {
		path = "/proc/self/exe"
	}
	unix.CloseOnExec(syncFd)
	err = unix.Exec(path, cfg.Argv, cfg.Env)
	return fail("init: exec %s: %v", path, err)
}

func bindMount(src, dst string, readOnly bool) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.Close()
		}
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	if readOnly {
		return unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
	}
	return nil
}

// lookPath finds name in the container environment's PATH.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := defaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: executable file not found in $PATH", name)
}
