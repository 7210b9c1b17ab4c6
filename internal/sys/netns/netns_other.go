//go:build !linux

package netns

import (
	"errors"
	"os/exec"
)

// ErrUnsupported is returned on platforms without network namespaces.
var ErrUnsupported = errors.New("netns: network namespaces need linux")

func New(string) error                { return ErrUnsupported }
func Delete(string) error             { return ErrUnsupported }
func IsNetns(string) (bool, error)    { return false, ErrUnsupported }
func Do(string, func() error) error   { return ErrUnsupported }
func StartIn(string, *exec.Cmd) error { return ErrUnsupported }
