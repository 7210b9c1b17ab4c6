package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/klog/v2"

	"github.com/portal-net/portal/internal/config"
	"github.com/portal-net/portal/internal/podruntime"
	"github.com/portal-net/portal/internal/podruntime/local"
	"github.com/portal-net/portal/internal/podruntime/network"
)

// ShimName is the per-pod supervisor binary, built beside portal.
const ShimName = "portal-shim"

// shimBinary is --shim, else portal-shim next to this executable.
func shimBinary(c config.Agent) (string, error) {
	if c.ShimBinary != "" {
		return c.ShimBinary, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	p := filepath.Join(filepath.Dir(self), ShimName)
	if _, err := os.Stat(p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("the pod supervisor %s is not next to %s (make build builds both; or pass --shim)", ShimName, self)
		}
		return "", err
	}
	return p, nil
}

func newLocalRuntime(c config.Agent, nm network.Manager) (podruntime.Runtime, error) {
	shim, err := shimBinary(c)
	if err != nil {
		return nil, err
	}
	return local.New(local.Config{
		RootDir:    c.RootDir,
		ShimBinary: shim,
		Network:    nm,
		Log: func(format string, args ...any) {
			klog.InfoS(fmt.Sprintf(format, args...), "component", "runtime")
		},
	})
}
