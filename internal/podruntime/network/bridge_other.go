//go:build !linux

package network

import (
	"context"
	"errors"
	"net"
)

var errUnsupported = errors.New("network: pod networking needs linux")

// NewBridge returns a Manager whose every call fails: bridges, veths and
// namespaces exist only on Linux.
func NewBridge(Config) Manager { return unsupported{} }

type unsupported struct{}

func (unsupported) Setup(context.Context, *net.IPNet) error          { return errUnsupported }
func (unsupported) Add(context.Context, string) (*Attachment, error) { return nil, errUnsupported }
func (unsupported) Del(context.Context, string) error                { return errUnsupported }
func (unsupported) List(context.Context) ([]string, error)           { return nil, errUnsupported }
func (unsupported) SyncRoutes(context.Context, []Route) error        { return errUnsupported }
