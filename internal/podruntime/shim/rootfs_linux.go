package shim

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/portal-net/portal/internal/podruntime"
)

// enterRoot gives the container its own root filesystem, built on cfg.Root
// (an empty host directory), and makes it the process's root.
//
// The container sees the host's files copy-on-write, as it would see an
// image's: each top-level directory of the host is an overlay whose upper
// layer lives on a tmpfs of this container attempt, so what the container
// writes, moves or deletes (even "mv /localhost.crt /tmp/") stays in it
// and is gone with it. /proc is the pod's, /dev and /sys (read-only) the
// host's. The image's files, the pod's /etc files and the volumes come
// last, resolved inside the new root, so a symlink in a container path
// can never lead a mount out of it.
//
// Everything happens in init's own mount namespace: the host sees only
// the empty directory, and nothing needs cleaning up when the container
// ends.
func enterRoot(cfg *initConfig) error {
	if err := unix.Mount("tmpfs", cfg.Root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("root tmpfs: %w", err)
	}
	root := filepath.Join(cfg.Root, "root")
	layers := filepath.Join(cfg.Root, "layers")
	for _, d := range []string{root, layers} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	// pivot_root needs the new root to be a mount point.
	if err := unix.Mount(root, root, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("root bind: %w", err)
	}
	if err := populateRoot(root, layers); err != nil {
		return err
	}

	// Host files the container gets are opened before the pivot and
	// mounted from their descriptors after it (the host's tree is still
	// attached then, at oldRoot; a bind from a detached tree fails).
	var sources []int
	defer func() {
		for _, fd := range sources {
			unix.Close(fd)
		}
	}()
	open := func(p string) (string, error) {
		fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", &os.PathError{Op: "open", Path: p, Err: err}
		}
		sources = append(sources, fd)
		return "/proc/self/fd/" + strconv.Itoa(fd), nil
	}
	type bind struct {
		src, dst string
		readOnly bool
		// create replaces a symlink or nothing at dst with an empty
		// file (the pod's /etc files).
		create bool
	}
	var binds []bind
	var data []podruntime.File
	for _, f := range cfg.Files {
		if f.HostPath == "" {
			data = append(data, f)
			continue
		}
		src, err := open(f.HostPath)
		if err != nil {
			return err
		}
		binds = append(binds, bind{src: src, dst: f.Path, readOnly: true})
	}
	for name, hostPath := range cfg.EtcFiles {
		src, err := open(hostPath)
		if err != nil {
			return err
		}
		binds = append(binds, bind{src: src, dst: filepath.Join("/etc", name), create: true})
	}
	for _, m := range cfg.Mounts {
		src, err := open(m.HostPath)
		if err != nil {
			return fmt.Errorf("volume %s at %s: %w", m.HostPath, m.ContainerPath, err)
		}
		binds = append(binds, bind{src: src, dst: m.ContainerPath, readOnly: m.ReadOnly})
	}

	if err := pivot(root); err != nil {
		return err
	}

	for _, f := range data {
		if err := writeFile(f); err != nil {
			return fmt.Errorf("image file %s: %w", f.Path, err)
		}
	}
	for _, b := range binds {
		if b.create {
			if err := replaceWithFile(b.dst); err != nil {
				return fmt.Errorf("%s: %w", b.dst, err)
			}
		}
		if err := bindMount(b.src, b.dst, b.readOnly); err != nil {
			return fmt.Errorf("mount at %s: %w", b.dst, err)
		}
	}
	return detachHost()
}

// populateRoot fills root with the host's top level: symlinks copied,
// directories as overlays (upper and work directories in layers), /proc,
// /dev and /sys mounted.
func populateRoot(root, layers string) error {
	entries, err := os.ReadDir("/")
	if err != nil {
		return err
	}
	for i, e := range entries {
		name := e.Name()
		src, dst := "/"+name, filepath.Join(root, name)
		if e.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(src)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, dst); err != nil {
				return err
			}
			continue
		}
		if !e.IsDir() {
			continue
		}
		if err := os.Mkdir(dst, 0o755); err != nil {
			return err
		}
		switch name {
		case "proc":
			if err := unix.Mount("proc", dst, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
				return fmt.Errorf("mount /proc: %w", err)
			}
		case "dev":
			if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
				return fmt.Errorf("mount /dev: %w", err)
			}
		case "sys":
			if err := bindMount(src, dst, true); err != nil {
				return fmt.Errorf("mount /sys: %w", err)
			}
		default:
			if err := overlay(src, dst, layers, i); err != nil {
				// A file system overlayfs cannot stack on is shared
				// as it is, as before containers had their own root.
				if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
					return fmt.Errorf("mount %s: %w", src, err)
				}
			}
		}
	}
	return nil
}

// overlay mounts lower copy-on-write at dst, with its upper and work
// directories number i in layers.
func overlay(lower, dst, layers string, i int) error {
	upper := filepath.Join(layers, "u"+strconv.Itoa(i))
	work := filepath.Join(layers, "w"+strconv.Itoa(i))
	for _, p := range []string{lower, upper} {
		if strings.ContainsAny(p, ",:\\") {
			return fmt.Errorf("overlay: %q cannot be an option value", p)
		}
	}
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	return unix.Mount("overlay", dst, "overlay", 0,
		"lowerdir="+lower+",upperdir="+upper+",workdir="+work)
}

// oldRoot is where the host's tree hangs in the new root until the
// container's mounts are made from it.
const oldRoot = "/.portal-host"

// pivot makes root the root of this mount namespace, with the host's tree
// at oldRoot.
func pivot(root string) error {
	if err := os.Mkdir(filepath.Join(root, oldRoot), 0o700); err != nil {
		return err
	}
	if err := unix.PivotRoot(root, filepath.Join(root, oldRoot)); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	return unix.Chdir("/")
}

// detachHost removes the host's tree from the container's view.
func detachHost() error {
	if err := unix.Unmount(oldRoot, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach host root: %w", err)
	}
	return os.Remove(oldRoot)
}

// writeFile writes an image file into the container's root.
func writeFile(f podruntime.File) error {
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
		return err
	}
	mode := f.Mode.Perm()
	if mode == 0 {
		mode = 0o644
	}
	_ = os.Remove(f.Path)
	return os.WriteFile(f.Path, f.Data, mode)
}

// replaceWithFile makes p a regular file (empty if it was not one), so a
// file can be bound on it: the host's /etc/resolv.conf may be a symlink
// into a directory the container does not have.
func replaceWithFile(p string) error {
	fi, err := os.Lstat(p)
	if err == nil && fi.Mode().IsRegular() {
		return nil
	}
	if err == nil {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}
