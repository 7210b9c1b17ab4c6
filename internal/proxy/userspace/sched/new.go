package sched

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Default is the scheduler used when none is configured, as in IPVS.
const Default = "rr"

// Names lists the schedulers New accepts, in the order ipvsadm documents
// them, then random.
var Names = []string{"rr", "wrr", "lc", "wlc", "dh", "sh", "sed", "nq", "random"}

// ErrUnknownScheduler is wrapped by New's error for a name not in Names.
var ErrUnknownScheduler = errors.New("unknown scheduler")

// ErrInvalidWeight is wrapped by ParseWeight's error.
var ErrInvalidWeight = errors.New("invalid weight")

const (
	// DefaultWeight is a backend's weight when it has no annotation.
	DefaultWeight = 1
	// MaxWeight is the largest weight ParseWeight accepts; it is the
	// range ipvsadm accepts for -w (0 through 65535).
	MaxWeight = 65535
)

// New returns a fresh scheduler of the given name (one of Names, matched
// exactly). Each call returns an independent instance.
func New(name string) (Scheduler, error) {
	switch name {
	case "rr":
		return &RoundRobin{}, nil
	case "wrr":
		return &WeightedRoundRobin{}, nil
	case "lc":
		return &LeastConn{}, nil
	case "wlc":
		return &WeightedLeastConn{}, nil
	case "dh":
		return &DestinationHash{}, nil
	case "sh":
		return &SourceHash{}, nil
	case "sed":
		return &ShortestExpectedDelay{}, nil
	case "nq":
		return &NeverQueue{}, nil
	case "random":
		return &Random{}, nil
	}
	return nil, fmt.Errorf("%w %q: valid schedulers are %s", ErrUnknownScheduler, name, strings.Join(Names, ", "))
}

// ParseWeight parses a per-backend weight annotation: a decimal integer
// from 0 to MaxWeight (65535, ipvsadm's range), without sign or
// surrounding space. 0 quiesces the backend: it keeps its open connections
// but no scheduler picks it.
func ParseWeight(s string) (int, error) {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, fmt.Errorf("%w %q: want an integer from 0 to %d", ErrInvalidWeight, s, MaxWeight)
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v > MaxWeight {
		return 0, fmt.Errorf("%w %q: want an integer from 0 to %d", ErrInvalidWeight, s, MaxWeight)
	}
	return int(v), nil
}
