package network

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

const (
	// DefaultBridgeName is the bridge pods are attached to.
	DefaultBridgeName = "portal0"
	// DefaultMTU is used when Config.MTU is 0.
	DefaultMTU = 1500
	// RouteProtocol marks the routes SyncRoutes installs (rtm_protocol),
	// so that it can find its own stale routes and never touches others.
	RouteProtocol = 0x50
	// PodInterface is the pod end of the veth, inside the pod's namespace.
	PodInterface = "eth0"
)

var (
	// ErrNotSetUp is returned (wrapped) by operations that need Setup first.
	ErrNotSetUp = errors.New("pod network not set up")
	// ErrInvalidID is returned (wrapped) for pod ids that cannot name a
	// namespace file.
	ErrInvalidID = errors.New("invalid pod id")
)

// Config is the netlink Manager's configuration.
type Config struct {
	// BridgeName defaults to DefaultBridgeName.
	BridgeName string
	// StateDir holds the IPAM state (StateDir/ipam).
	StateDir string
	// NetnsDir holds the pod namespace files (NetnsDir/<id>).
	NetnsDir string
	// MTU of the bridge and both veth ends; 0 means DefaultMTU.
	MTU int
	// HostNetns is the path of the namespace that plays the node: every
	// host-side operation (bridge, host veth, routes, forwarding) happens
	// there. Empty means the namespace of the calling process.
	HostNetns string
}

func (c Config) withDefaults() Config {
	if c.BridgeName == "" {
		c.BridgeName = DefaultBridgeName
	}
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
	return c
}

func (c Config) ipamDir() string { return filepath.Join(c.StateDir, "ipam") }

func (c Config) netnsPath(id string) string { return filepath.Join(c.NetnsDir, id) }

// HostVethName is the bridge-side interface name of pod id: stable across
// restarts and within IFNAMSIZ.
func HostVethName(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "veth" + hex.EncodeToString(sum[:])[:8]
}

func validID(id string) error {
	if id == "" || id == "." || id == ".." || len(id) > 253 ||
		strings.ContainsAny(id, "/\x00\n\r") || strings.TrimSpace(id) != id {
		return fmt.Errorf("%q: %w", id, ErrInvalidID)
	}
	return nil
}
