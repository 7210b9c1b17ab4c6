package local

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/portal-net/portal/internal/podruntime/shim"
	"github.com/portal-net/portal/internal/shimcmd"
	"github.com/portal-net/portal/internal/sys/netns"
)

// startShim starts the pod's supervisor in its own session (so it outlives
// the agent), as PID 1 of a new PID namespace, in the pod's network, IPC
// (unless hostIPC) and UTS (unless hostNetwork) namespaces. exited closes when it exits while
// this process is its parent.
func startShim(binary, dir string, sb *sandboxFile) (pid int, exited <-chan struct{}, err error) {
	logf, err := os.OpenFile(filepath.Join(dir, shim.LogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, nil, err
	}
	defer logf.Close()
	a := shimcmd.ShimArgs{Dir: dir}
	flags := uintptr(unix.CLONE_NEWPID)
	if !sb.Config.HostIPC {
		flags |= unix.CLONE_NEWIPC
	}
	if !sb.Config.HostNetwork {
		a.Hostname = sb.Config.Hostname
		flags |= unix.CLONE_NEWUTS
	}
	cmd := exec.Command(binary, a.Args()...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Cloneflags: flags}
	if sb.NetnsPath != "" {
		err = netns.StartIn(sb.NetnsPath, cmd)
	} else {
		err = cmd.Start()
	}
	if err != nil {
		return 0, nil, err
	}
	done := make(chan struct{})
	// Reap it while this process is its parent; after an agent restart
	// init does.
	go func() { _ = cmd.Wait(); close(done) }()
	return cmd.Process.Pid, done, nil
}

// killShim SIGKILLs the shim of dir if pid still is it.
func killShim(pid int, dir string) {
	if pidCmdlineHas(pid, dir) {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
}
