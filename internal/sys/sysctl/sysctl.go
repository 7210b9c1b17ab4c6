package sysctl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Names the node agent and the proxy check or set.
const (
	IPForward             = "net.ipv4.ip_forward"
	IPv6Forward           = "net.ipv6.conf.all.forwarding"
	RouteLocalnet         = "net.ipv4.conf.all.route_localnet"
	BridgeNFCallIPTables  = "net.bridge.bridge-nf-call-iptables"
	BridgeNFCallIP6Tables = "net.bridge.bridge-nf-call-ip6tables"
	ConntrackTCPBeLiberal = "net.netfilter.nf_conntrack_tcp_be_liberal"
	// TCPTimestamps 2 keeps TCP timestamps but without per-connection
	// offsets. With offsets (1, the default), a new connection from a
	// source port just used to the same pod through another service
	// address carries an older-looking timestamp; the pod's TIME_WAIT
	// socket rejects its SYN (PAWS) and the client stalls on a SYN
	// retransmit.
	TCPTimestamps = "net.ipv4.tcp_timestamps"
)

// DefaultRoot is where the kernel exposes its parameters.
const DefaultRoot = "/proc/sys"

// ErrInvalidName is returned for a name that is empty or would leave the
// sysctl tree.
var ErrInvalidName = errors.New("sysctl: invalid name")

// ErrInvalidValue is returned for a value the kernel would not take as one
// parameter value (empty, or with a newline inside).
var ErrInvalidValue = errors.New("sysctl: invalid value")

// Interface reads and writes kernel parameters. Names are in sysctl's
// dotted form ("net.ipv4.ip_forward") or in slash form
// ("net/ipv4/conf/eth0.100/rp_filter") when a component itself holds a dot.
// A parameter the kernel does not have (a module not loaded) gives an error
// that matches fs.ErrNotExist.
type Interface interface {
	Get(name string) (string, error)
	Set(name, value string) error
}

// GetInt reads a parameter holding one integer.
func GetInt(s Interface, name string) (int, error) {
	v, err := s.Get(name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("sysctl: %s: not an integer %q: %w", name, v, err)
	}
	return n, nil
}

// SetInt writes an integer parameter.
func SetInt(s Interface, name string, value int) error {
	return s.Set(name, strconv.Itoa(value))
}

// Ensure sets name to value unless it already holds it, so a check-only
// caller never rewrites a parameter (writes to some need privileges the
// reads do not). It reports whether it wrote.
func Ensure(s Interface, name, value string) (bool, error) {
	cur, err := s.Get(name)
	if err != nil {
		return false, err
	}
	if cur == value {
		return false, nil
	}
	if err := s.Set(name, value); err != nil {
		return false, err
	}
	return true, nil
}

// FS is Interface over a directory tree laid out as /proc/sys.
type FS struct {
	Root string
}

// New returns an Interface on the running kernel's /proc/sys.
func New() *FS { return &FS{Root: DefaultRoot} }

var _ Interface = (*FS)(nil)

// Get returns the parameter's value without its trailing newline.
func (f *FS) Get(name string) (string, error) {
	rel, err := relPath(name)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(f.Root, rel))
	if err != nil {
		return "", fmt.Errorf("sysctl: get %s: %w", name, err)
	}
	return strings.TrimRight(string(b), "\n"), nil
}

// Set writes value to an existing parameter; it never creates files, as
// /proc/sys cannot either.
func (f *FS) Set(name, value string) error {
	rel, err := relPath(name)
	if err != nil {
		return err
	}
	if err := checkValue(value); err != nil {
		return fmt.Errorf("%w: %s=%q", err, name, value)
	}
	fl, err := os.OpenFile(filepath.Join(f.Root, rel), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("sysctl: set %s: %w", name, err)
	}
	_, werr := fl.WriteString(value + "\n")
	cerr := fl.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("sysctl: set %s: %w", name, err)
	}
	return nil
}

// relPath turns a sysctl name into a path below the root.
func relPath(name string) (string, error) {
	p := name
	if !strings.Contains(name, "/") {
		p = strings.ReplaceAll(name, ".", "/")
	}
	if p == "" || strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." {
			return "", fmt.Errorf("%w: %q", ErrInvalidName, name)
		}
	}
	return p, nil
}

func checkValue(v string) error {
	if v == "" || strings.ContainsAny(v, "\n\x00") {
		return ErrInvalidValue
	}
	return nil
}

// notExist builds the error FS gives for a missing parameter.
func notExist(op, name string) error {
	return fmt.Errorf("sysctl: %s %s: %w", op, name, fs.ErrNotExist)
}
