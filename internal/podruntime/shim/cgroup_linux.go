package shim

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cgroupRoot is the cgroup v2 mount; the shim puts containers under
// portal/<pod uid>/<container>.
const cgroupRoot = "/sys/fs/cgroup"

func needsCgroup(req StartRequest) bool {
	return req.MemoryLimitBytes > 0 || req.CPULimitMillis > 0
}

// CgroupLimitsAvailable reports whether container limits are enforced on
// this host: cgroup v2 with the memory and cpu controllers.
func CgroupLimitsAvailable() bool { return cgroupControllers() }

func cgroupControllers() bool {
	b, err := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.controllers"))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	has := func(c string) bool {
		for _, x := range f {
			if x == c {
				return true
			}
		}
		return false
	}
	return has("memory") && has("cpu")
}

// setupCgroup creates the container's cgroup with its limits; "" when the
// host cannot (noted once in shim.log).
func (s *server) setupCgroup(req StartRequest) (string, error) {
	if !cgroupControllers() {
		if !s.cgNoted {
			s.cgNoted = true
			s.cfg.Logger.Printf("shim: cgroup limits not available (no cgroup v2 memory/cpu controllers); limits are not enforced")
		}
		return "", nil
	}
	pod := filepath.Join(cgroupRoot, "portal", filepath.Base(s.cfg.Dir))
	dir := filepath.Join(pod, req.Name)
	// Controllers must be enabled on each level above the leaf.
	for _, parent := range []string{cgroupRoot, filepath.Dir(pod), pod} {
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return "", err
		}
		_ = os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+memory +cpu"), 0)
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return "", err
	}
	if req.MemoryLimitBytes > 0 {
		if err := os.WriteFile(filepath.Join(dir, "memory.max"), []byte(strconv.FormatInt(req.MemoryLimitBytes, 10)), 0); err != nil {
			removeCgroup(dir)
			return "", fmt.Errorf("memory.max: %w", err)
		}
		_ = os.WriteFile(filepath.Join(dir, "memory.swap.max"), []byte("0"), 0)
	}
	if req.CPULimitMillis > 0 {
		const period = 100000
		quota := req.CPULimitMillis * period / 1000
		if quota < 1000 {
			quota = 1000
		}
		if err := os.WriteFile(filepath.Join(dir, "cpu.max"), []byte(fmt.Sprintf("%d %d", quota, period)), 0); err != nil {
			removeCgroup(dir)
			return "", fmt.Errorf("cpu.max: %w", err)
		}
	}
	return dir, nil
}

// cgroupOOMKilled reads memory.events' oom_kill counter.
func cgroupOOMKilled(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "memory.events"))
	if err != nil {
		return false
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		f := strings.Fields(string(l))
		if len(f) == 2 && f[0] == "oom_kill" {
			n, _ := strconv.Atoi(f[1])
			return n > 0
		}
	}
	return false
}

// removeCgroup removes the container's cgroup (and the pod's once empty);
// processes may take a moment to leave it after SIGKILL.
func removeCgroup(dir string) {
	for i := 0; i < 20; i++ {
		if err := os.Remove(dir); err == nil || os.IsNotExist(err) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = os.Remove(filepath.Dir(dir))
}
