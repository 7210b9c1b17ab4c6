//go:build !linux

package shim

import (
	"context"
	"errors"
	"log"
)

// Config is one shim's configuration.
type Config struct {
	Dir      string
	Hostname string
	InitArgv []string
	Logger   *log.Logger
}

var errUnsupported = errors.New("shim: pods need linux namespaces")

// Run fails: the supervisor needs linux.
func Run(ctx context.Context, cfg Config) error { return errUnsupported }

// Init fails: containers need linux.
func Init() int { return 128 }

// CgroupLimitsAvailable is false: limits need linux cgroups.
func CgroupLimitsAvailable() bool { return false }
