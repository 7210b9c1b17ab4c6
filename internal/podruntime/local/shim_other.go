//go:build !linux

package local

import (
	"context"
	"errors"

	"k8s.io/apimachinery/pkg/types"

	"github.com/portal-net/portal/internal/podruntime"
)

var errUnsupported = errors.New("local runtime: pods need linux")

func startShim(binary, dir string, sb *sandboxFile) (int, <-chan struct{}, error) {
	return 0, nil, errUnsupported
}

func killShim(pid int, dir string) {}

// Exec needs linux namespaces.
func (r *Runtime) Exec(ctx context.Context, uid types.UID, container string, cmd []string, eio podruntime.ExecIO) (int, error) {
	return 0, errUnsupported
}
