package podstatus

import (
	"sync"
	"time"
)

// Backoff is the crash-loop back-off: per key (pod UID + container name,
// say) the delay before the next restart starts at initial and doubles with
// each failure up to max. A key whose last failure is more than 2*max in the
// past starts over at initial, so a container that ran for ten minutes (with
// the kubelet's 300s max) is no longer penalised for old crashes.
// It is safe for concurrent use.
type Backoff struct {
	initial, max time.Duration

	mu      sync.Mutex
	entries map[string]*backoffEntry
}

type backoffEntry struct {
	delay      time.Duration
	lastUpdate time.Time
}

// NewBackoff returns a back-off; the kubelet uses 10s and 300s.
func NewBackoff(initial, max time.Duration) *Backoff {
	if max < initial {
		max = initial
	}
	return &Backoff{initial: initial, max: max, entries: map[string]*backoffEntry{}}
}

// Next records a failure of key at now (the time the container exited) and
// returns the delay before it may be restarted.
func (b *Backoff) Next(key string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok || b.expired(e, now) {
		e = &backoffEntry{delay: b.initial}
		b.entries[key] = e
	} else {
		e.delay *= 2
		if e.delay > b.max || e.delay <= 0 {
			e.delay = b.max
		}
	}
	e.lastUpdate = now
	return e.delay
}

// InBackoff reports whether key is still waiting out its delay at now, and
// for how much longer.
func (b *Backoff) InBackoff(key string, now time.Time) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok || b.expired(e, now) {
		return false, 0
	}
	if left := e.delay - now.Sub(e.lastUpdate); left > 0 {
		return true, left
	}
	return false, 0
}

// Reset forgets key, e.g. when its pod is deleted.
func (b *Backoff) Reset(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.entries, key)
}

// GC drops the keys that would start over anyway, bounding memory.
func (b *Backoff) GC(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, e := range b.entries {
		if b.expired(e, now) {
			delete(b.entries, k)
		}
	}
}

func (b *Backoff) expired(e *backoffEntry, now time.Time) bool {
	return now.Sub(e.lastUpdate) > 2*b.max
}
