package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/portal-net/portal/internal/podruntime"
)

// Names of the files in a pod directory.
const (
	SocketFile     = "shim.sock"
	LogFile        = "shim.log"
	StateFile      = "state.json"
	ResolvConfFile = "resolv.conf"
	HostsFile      = "hosts"
	HostnameFile   = "hostname"
	ContainersDir  = "containers"
)

// LogPath is the log file of one container attempt in pod directory dir.
func LogPath(dir, container string, attempt int) string {
	return filepath.Join(dir, ContainersDir, container, strconv.Itoa(attempt)+".log")
}

// StartRequest starts one container attempt.
type StartRequest struct {
	Name string
	// Argv is the resolved command line; Argv[0] is a path or a name
	// looked up in Env's PATH.
	Argv       []string
	Env        []string
	WorkingDir string
	Mounts     []podruntime.Mount
	// Files are the image's own files in the container's root.
	Files   []podruntime.File `json:",omitempty"`
	Attempt int
	Stdin   bool
	TTY     bool
	// MemoryLimitBytes and CPULimitMillis: 0 is no limit.
	MemoryLimitBytes int64
	CPULimitMillis   int64
	// SharePID: see podruntime.ContainerConfig.
	SharePID bool `json:",omitempty"`
}

// StopRequest stops a container: Signal (default SIGTERM) to its process
// group, SIGKILL after Grace.
type StopRequest struct {
	Name   string
	Grace  time.Duration
	Signal int `json:",omitempty"`
}

// Container is the state of a container's latest attempt.
type Container struct {
	podruntime.ContainerStatus
	// Message explains a failed start.
	Message string `json:",omitempty"`
	// Spec is what was started; exec reuses its Env and WorkingDir.
	Spec StartRequest
}

// State is everything the shim knows. Generation grows on every change.
type State struct {
	Generation uint64
	// Pid of the shim in the agent's PID namespace.
	Pid        int
	Containers []Container
}

// Container returns the named container's state.
func (s *State) Container(name string) (*Container, bool) {
	for i := range s.Containers {
		if s.Containers[i].Name == name {
			return &s.Containers[i], true
		}
	}
	return nil, false
}

// ReadState reads state.json of pod directory dir, as the shim last wrote it.
func ReadState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("shim state %s: %w", dir, err)
	}
	return &s, nil
}

// Error is an error the shim answered with.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("shim: %s (%d)", e.Message, e.Status) }

// Client talks to the shim of one pod directory.
type Client struct {
	http *http.Client
}

// NewClient returns a client for the shim whose socket is in dir. It does
// not connect until used.
func NewClient(dir string) *Client {
	return &Client{http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialUnix(ctx, dir)
		},
		DisableKeepAlives: true,
	}}}
}

// State returns the shim's current state.
func (c *Client) State(ctx context.Context) (*State, error) {
	var s State
	return &s, c.do(ctx, http.MethodGet, "/state", nil, &s)
}

// Wait returns the state once its generation is past after, or the current
// state when the shim's long-poll times out (about 30s).
func (c *Client) Wait(ctx context.Context, after uint64) (*State, error) {
	var s State
	return &s, c.do(ctx, http.MethodGet, "/state?after="+url.QueryEscape(strconv.FormatUint(after, 10)), nil, &s)
}

// Start starts a container attempt; it returns once the process runs its
// command (or failed to).
func (c *Client) Start(ctx context.Context, req StartRequest) (*Container, error) {
	var ct Container
	return &ct, c.do(ctx, http.MethodPost, "/start", req, &ct)
}

// Stop stops a container and returns once it has exited.
func (c *Client) Stop(ctx context.Context, req StopRequest) error {
	return c.do(ctx, http.MethodPost, "/stop", req, nil)
}

// Shutdown kills every container; the shim exits after answering.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/shutdown", nil, nil)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://shim"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("shim %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return &Error{Status: resp.StatusCode, Message: e.Error}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("shim %s: decode: %w", path, err)
	}
	return nil
}

// IsNotFound reports whether err is the shim saying the container is unknown.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}
