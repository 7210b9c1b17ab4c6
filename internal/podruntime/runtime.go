package podruntime

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Runtime is what the node agent needs from a pod runtime. Every method is
// safe for concurrent use; methods on one pod are serialised by the caller.
type Runtime interface {
	// RunSandbox creates (or, when it already exists, returns) the pod's
	// sandbox: network namespace, interface and IP, resolv.conf/hosts
	// files and its supervisor. Idempotent by UID.
	RunSandbox(ctx context.Context, cfg SandboxConfig) (*SandboxStatus, error)
	// StartContainer starts one container (a new attempt: logs go to a new
	// file, the previous attempt's file is kept for --previous). The image
	// decides what runs; an image that cannot run returns an *ImageError.
	StartContainer(ctx context.Context, uid types.UID, cfg ContainerConfig) error
	// StopContainer sends SIGTERM (or the container's stop signal), waits up
	// to grace, then SIGKILLs. It returns once the process has exited.
	// Stopping a container that is not running is not an error.
	StopContainer(ctx context.Context, uid types.UID, name string, grace time.Duration) error
	// StopSandbox is for a pod that finished: it stops every container and
	// the supervisor and gives back the network (namespace, veth, IP), but
	// keeps the pod's files, so Status reports the exited containers and
	// Logs still reads them until RemoveSandbox. Idempotent.
	StopSandbox(ctx context.Context, uid types.UID) error
	// RemoveSandbox stops every container (SIGKILL), stops the supervisor,
	// deletes the network namespace and veth, releases the IP and removes
	// the pod's files. Removing an unknown pod is not an error.
	RemoveSandbox(ctx context.Context, uid types.UID) error
	// Status reports the sandbox and its containers; ErrNotFound when the
	// pod has no sandbox on this node.
	Status(ctx context.Context, uid types.UID) (*SandboxStatus, error)
	// List reports every sandbox on this node, including those left by a
	// previous agent process (the agent re-adopts them on start).
	List(ctx context.Context) ([]SandboxStatus, error)
	// Events delivers the UID of a pod whenever one of its containers
	// changed state by itself (exited). It is closed when ctx ends.
	Events(ctx context.Context) <-chan types.UID
	// Exec runs cmd in the container's namespaces with the container's
	// environment and working directory; it returns the exit code.
	Exec(ctx context.Context, uid types.UID, container string, cmd []string, io ExecIO) (exitCode int, err error)
	// Logs writes the container's log (this attempt, or the previous one)
	// to w, following it when opts.Follow until ctx ends or the attempt
	// ends.
	Logs(ctx context.Context, uid types.UID, container string, opts LogOptions, w io.Writer) error
}

// ErrNotFound: the pod or container has no sandbox/process on this node.
var ErrNotFound = errors.New("not found on this node")

// SandboxConfig describes the pod-level environment.
type SandboxConfig struct {
	UID       types.UID
	Namespace string
	Name      string
	// Hostname is the pod's hostname (spec.hostname or the pod name,
	// truncated to 63 characters).
	Hostname string
	// HostNetwork pods share the node's network namespace: no veth, no IP
	// of their own (the node IP is the pod IP).
	HostNetwork bool
	// HostIPC pods share the node's IPC namespace; other pods have one of
	// their own that all their containers share.
	HostIPC bool
	// ResolvConf and Hosts are the contents of the pod's /etc/resolv.conf
	// and /etc/hosts, bind-mounted into every container.
	ResolvConf []byte
	Hosts      []byte
	// HostsFor, when set, makes /etc/hosts from the pod IP once the
	// runtime has allocated it (Hosts is then ignored).
	HostsFor func(podIP net.IP) []byte
}

// ContainerConfig is one container as the runtime needs it, with env vars
// and command already resolved by the agent.
type ContainerConfig struct {
	Name    string
	Image   string
	Command []string // spec.command (entrypoint override)
	Args    []string // spec.args
	// Env is the complete environment ("K=V"), in order.
	Env        []string
	WorkingDir string
	// Mounts are bind mounts from a host directory (emptyDir, configMap,
	// secret volumes the agent prepared) into the container's view.
	Mounts []Mount
	// Attempt is the restart count of this start (0 for the first).
	Attempt int
	// Stdin keeps an open (empty) stdin when the spec asks for stdin.
	Stdin bool
	TTY   bool
	// MemoryLimitBytes and CPULimitMillis are the container's limits
	// (0: none). Applied through cgroup v2 when the host has the
	// controllers; ignored (and reported once in the agent log) otherwise.
	MemoryLimitBytes int64
	CPULimitMillis   int64
	// SharePID is the pod's spec.shareProcessNamespace: the container
	// joins the pod's PID namespace. Otherwise it has its own, and its
	// first process is PID 1 there, as with any container engine (a
	// SIGTERM it has no handler for does nothing; the grace period ends
	// it with SIGKILL).
	SharePID bool
}

// Mount is one bind mount.
type Mount struct {
	HostPath      string
	ContainerPath string
	ReadOnly      bool
}

// File is a file an image puts into the container's root filesystem, as
// a layer of a real image would: either Data (written into the
// container's private copy, so the container may change or move it) or
// HostPath (a host file bound read-only, such as the built-in images'
// program).
type File struct {
	// Path is absolute, in the container.
	Path     string
	Data     []byte      `json:",omitempty"`
	Mode     os.FileMode `json:",omitempty"`
	HostPath string      `json:",omitempty"`
}

// SandboxStatus is the observed state of one pod sandbox.
type SandboxStatus struct {
	UID       types.UID
	Namespace string
	Name      string
	// IP is the pod IP (nil for a hostNetwork pod: the agent uses the node IP).
	IP         net.IP
	CreatedAt  time.Time
	Containers []ContainerStatus
}

// ContainerState is running, exited, or created-but-never-started.
type ContainerState string

const (
	StateRunning ContainerState = "running"
	StateExited  ContainerState = "exited"
)

// ContainerStatus is one container's current (latest) attempt.
type ContainerStatus struct {
	Name       string
	State      ContainerState
	Attempt    int
	Pid        int
	StartedAt  time.Time
	FinishedAt time.Time
	ExitCode   int
	// Reason for an exited container: "Completed" (exit 0), "Error",
	// "OOMKilled".
	Reason string
	// Signal is set when the process was killed by a signal.
	Signal string
}

// ImageError is returned by StartContainer when the image cannot run here
// (no registries are reachable: only built-in images, busybox, or a
// command from the host filesystem run). Reason is the waiting reason the
// pod status shows, e.g. "ImageNotRunnable".
type ImageError struct {
	Reason  string
	Message string
}

func (e *ImageError) Error() string { return e.Reason + ": " + e.Message }

// ExecIO are the streams of an exec session. Nil streams are not attached.
type ExecIO struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	TTY    bool
	// Resize delivers terminal sizes when TTY is set.
	Resize <-chan TermSize
}

// TermSize is a terminal size.
type TermSize struct{ Width, Height uint16 }

// LogOptions select what Logs writes (the kubectl logs flags).
type LogOptions struct {
	Follow     bool
	Previous   bool
	Timestamps bool
	// TailLines < 0 means all lines.
	TailLines  int64
	LimitBytes int64 // 0: no limit
	SinceTime  time.Time
}
