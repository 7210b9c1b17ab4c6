package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// nsfsMagic is the statfs f_type of a namespace file (NSFS_MAGIC).
const nsfsMagic = 0x6e736673

// New creates a fresh network namespace and pins it by bind-mounting it
// onto path, which must not exist yet (fs.ErrExist otherwise). The
// caller's thread is not touched: the work happens on a dedicated locked
// thread that is thrown away if its namespace cannot be restored.
func New(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("netns: create dir for %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("netns: create %s: %w", path, err)
	}
	f.Close()

	err = onLockedThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind mount %s: %w", src, err)
		}
		return nil
	})
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("netns: new %s: %w", path, err)
	}
	return nil
}

// Delete unmounts and removes the namespace file at path. The namespace
// itself goes away once no process lives in it and nobody holds it open.
// A missing or never-mounted path is not an error.
func Delete(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil &&
		!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("netns: unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("netns: remove %s: %w", path, err)
	}
	return nil
}

// IsNetns reports whether path is a pinned namespace (an nsfs mount)
// rather than a plain file left over by an interrupted New.
func IsNetns(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("netns: statfs %s: %w", path, err)
	}
	return st.Type == nsfsMagic, nil
}

// Do runs fn on a locked OS thread whose network namespace is the one at
// path. fn must not start goroutines that expect to be in that namespace:
// only the calling thread is moved.
func Do(path string, fn func() error) error {
	target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns: open %s: %w", path, err)
	}
	defer unix.Close(target)
	return onLockedThread(func() error {
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("netns: enter %s: %w", path, err)
		}
		return fn()
	})
}

// StartIn starts cmd so that the child process lives in the network
// namespace at path. The fork happens from a thread that is inside the
// namespace; the calling goroutine's thread is never moved.
func StartIn(path string, cmd *exec.Cmd) error {
	return Do(path, cmd.Start)
}

// onLockedThread runs fn on a fresh goroutine locked to its OS thread and
// puts the thread back into the namespace it started in. If that fails
// the thread stays locked, so the runtime destroys it when the goroutine
// exits instead of reusing a thread in the wrong namespace.
func onLockedThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: open current namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it dies with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("netns: restore namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
