package prober

import (
	"context"
	"net/http"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Kind is the kind of a container probe.
type Kind int

const (
	Liveness Kind = iota
	Readiness
	Startup
)

func (k Kind) String() string {
	switch k {
	case Liveness:
		return "Liveness"
	case Readiness:
		return "Readiness"
	case Startup:
		return "Startup"
	}
	return "Unknown"
}

// Update reports a change of a probe result of one container.
//
// Readiness updates carry the container's effective readiness (what Ready
// returns), so a container without a readiness probe reports OK=true once it
// has started. Liveness updates with OK=false and Startup updates with
// OK=false mean the failure threshold was crossed: the container must be
// restarted, and its probes stay on hold until the next ContainerStarted.
type Update struct {
	UID       types.UID
	Container string
	Kind      Kind
	OK        bool
	Message   string
}

// ExecFunc runs cmd inside the container and returns its combined output and
// exit code. It must return when ctx ends (the probe's timeout).
type ExecFunc func(ctx context.Context, uid types.UID, container string, cmd []string) (output []byte, exitCode int, err error)

// Recorder records an event about pod, e.g. Warning "Unhealthy".
type Recorder func(pod *v1.Pod, eventType, reason, message string)

// Options configures a Manager.
type Options struct {
	// Exec runs exec probes; without it exec probes fail.
	Exec ExecFunc
	// Record receives probe failure events; optional.
	Record Recorder
	// HTTPClient is used for httpGet probes; optional. Its CheckRedirect is
	// replaced so that only redirects to the same host are followed.
	HTTPClient *http.Client
	// Now is the clock used to place the initial delay relative to the
	// container's start time; optional (time.Now).
	Now func() time.Time
	// TimeScale is the real duration of one second of a probe spec
	// (initialDelaySeconds, periodSeconds, timeoutSeconds). Zero means
	// time.Second; tests shrink it to run probes quickly.
	TimeScale time.Duration
}
