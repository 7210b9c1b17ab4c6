package netnstest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/portal-net/portal/internal/sys/netns"
)

// Main is for TestMain. As root and outside a test namespace it re-runs
// the test binary under `unshare --net --mount` and exits with the child's
// status; inside one it brings loopback up and runs the tests. Without
// root (or without unshare) it just runs the tests, and those that need
// isolation skip through Require.
func Main(m *testing.M) {
	if Isolated() {
		if err := loopbackUp(); err != nil {
			fmt.Fprintf(os.Stderr, "netnstest: %v\n", err)
			os.Exit(1)
		}
		os.Exit(m.Run())
	}
	unshare, err := exec.LookPath("unshare")
	if os.Geteuid() != 0 || err != nil {
		os.Exit(m.Run())
	}
	// A new mount namespace from unshare has private propagation, so the
	// namespaces tests pin with bind mounts never show up on the host.
	args := append([]string{"--net", "--mount", "--", os.Args[0]}, os.Args[1:]...)
	cmd := exec.Command(unshare, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), EnvIsolated+"=1")
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) && exitErr.ExitCode() > 0 {
			os.Exit(exitErr.ExitCode())
		}
		fmt.Fprintf(os.Stderr, "netnstest: run tests under unshare: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// NewNetns creates a named network namespace with loopback up under a
// temporary directory of t and deletes it when the test ends. It calls
// Require first.
func NewNetns(t testing.TB, name string) string {
	t.Helper()
	Require(t)
	path := filepath.Join(t.TempDir(), name)
	if err := netns.New(path); err != nil {
		t.Fatalf("netnstest: %v", err)
	}
	t.Cleanup(func() {
		if err := netns.Delete(path); err != nil {
			t.Errorf("netnstest: %v", err)
		}
	})
	if err := netns.Do(path, loopbackUp); err != nil {
		t.Fatalf("netnstest: namespace %s: %v", name, err)
	}
	return path
}

func loopbackUp() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find loopback: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	return nil
}
