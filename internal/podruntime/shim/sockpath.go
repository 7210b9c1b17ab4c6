package shim

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// maxSockPath is what fits in sockaddr_un.sun_path with its NUL.
const maxSockPath = 107

// withSocketPath calls fn with a path to dir's socket that fits in a
// sockaddr_un: the plain path when short enough, else the same file
// reached through /proc/self/fd of an open directory handle (pod
// directories under a deep --root-dir are longer than 107 bytes).
func withSocketPath(dir string, fn func(path string) error) error {
	sock := filepath.Join(dir, SocketFile)
	if len(sock) <= maxSockPath {
		return fn(sock)
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return fn(fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), SocketFile))
}

func listenUnix(dir string) (net.Listener, error) {
	var ln net.Listener
	err := withSocketPath(dir, func(p string) error {
		var err error
		ln, err = net.Listen("unix", p)
		if l, ok := ln.(*net.UnixListener); ok && err == nil && p != filepath.Join(dir, SocketFile) {
			// The /proc/self/fd path dies with the directory handle: the
			// caller removes the socket file by its real path.
			l.SetUnlinkOnClose(false)
		}
		return err
	})
	return ln, err
}

func dialUnix(ctx context.Context, dir string) (net.Conn, error) {
	var c net.Conn
	err := withSocketPath(dir, func(p string) error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, "unix", p)
		return err
	})
	return c, err
}
