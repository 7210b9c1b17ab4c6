package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/types"

	"github.com/portal-net/portal/internal/podruntime"
)

// Exec implements podruntime.Runtime with nsenter: the command joins the
// container's mount, UTS, IPC, network and PID namespaces, starts in its
// working directory and gets exactly the container's environment.
func (r *Runtime) Exec(ctx context.Context, uid types.UID, container string, cmd []string, eio podruntime.ExecIO) (int, error) {
	if len(cmd) == 0 {
		return 0, errors.New("exec: empty command")
	}
	c, _, live, err := r.container(ctx, uid, container)
	if err != nil {
		return 0, err
	}
	if !live || c.State != podruntime.StateRunning || c.Pid == 0 {
		return 0, fmt.Errorf("exec: container %s is not running: %w", container, podruntime.ErrNotFound)
	}
	args := []string{"--target", strconv.Itoa(c.Pid), "--mount", "--uts", "--ipc", "--net", "--pid", "--wd", "--", "env", "-i"}
	args = append(args, c.Spec.Env...)
	args = append(args, cmd...)
	x := exec.CommandContext(ctx, "nsenter", args...)
	x.Dir = "/"
	// nsenter forks the command into the pod's PID namespace; both share
	// the process group (session with a TTY) that a cancel kills.
	x.Cancel = func() error { return unix.Kill(-x.Process.Pid, unix.SIGKILL) }
	// Something the command left in the background may hold its output
	// open; that must not hold up the exec.
	x.WaitDelay = 2 * time.Second
	if eio.TTY {
		return runTTY(x, eio)
	}
	x.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	x.Stdin, x.Stdout, x.Stderr = eio.Stdin, eio.Stdout, eio.Stderr
	return exitCode(x.Run())
}

func exitCode(err error) (int, error) {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ee.ExitCode() >= 0 {
			return ee.ExitCode(), nil
		}
		return 128 + 9, nil
	}
	if err != nil {
		return 0, fmt.Errorf("exec: %w", err)
	}
	return 0, nil
}

func runTTY(x *exec.Cmd, eio podruntime.ExecIO) (int, error) {
	// A size already waiting is the terminal's initial one, so the
	// command never sees a 0x0 terminal.
	var size *pty.Winsize
	if eio.Resize != nil {
		select {
		case sz, ok := <-eio.Resize:
			if ok {
				size = &pty.Winsize{Cols: sz.Width, Rows: sz.Height}
			}
		default:
		}
	}
	ptmx, err := pty.StartWithSize(x, size)
	if err != nil {
		return 0, fmt.Errorf("exec: %w", err)
	}
	defer ptmx.Close()
	done := make(chan struct{})
	defer close(done)
	if eio.Resize != nil {
		go func() {
			for {
				select {
				case <-done:
					return
				case sz, ok := <-eio.Resize:
					if !ok {
						return
					}
					_ = pty.Setsize(ptmx, &pty.Winsize{Cols: sz.Width, Rows: sz.Height})
				}
			}
		}()
	}
	if eio.Stdin != nil {
		go func() { _, _ = io.Copy(ptmx, eio.Stdin) }()
	}
	out := eio.Stdout
	if out == nil {
		out = io.Discard
	}
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(out, ptmx); close(copied) }()
	code, err := exitCode(x.Wait())
	// The output still buffered in the pty ends with EIO once read.
	select {
	case <-copied:
	case <-time.After(2 * time.Second):
	}
	return code, err
}
