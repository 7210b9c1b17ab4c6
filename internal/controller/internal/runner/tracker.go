package runner

import (
	"sync"
	"time"
)

// Tracker remembers, per owner key, the writes a controller made that its
// informer cache has not reflected yet.
type Tracker struct {
	mu      sync.Mutex
	now     func() time.Time
	timeout time.Duration
	owners  map[string]map[string]expectation
}

type expectation struct {
	kind  int // expectPresent, expectChanged or expectGone
	oldRV string
	at    time.Time
}

const (
	expectPresent = iota
	expectChanged
	expectGone
)

// NewTracker returns a tracker whose expectations expire after 30s, so a
// write the cache will never show (say, deleted by someone else first)
// cannot block an owner forever.
func NewTracker() *Tracker {
	return &Tracker{now: time.Now, timeout: 30 * time.Second, owners: map[string]map[string]expectation{}}
}

func (t *Tracker) set(owner, name string, e expectation) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.owners[owner]
	if m == nil {
		m = map[string]expectation{}
		t.owners[owner] = m
	}
	e.at = t.now()
	m[name] = e
}

// Created records that name now exists.
func (t *Tracker) Created(owner, name string) { t.set(owner, name, expectation{kind: expectPresent}) }

// Updated records that name moved past resourceVersion oldRV.
func (t *Tracker) Updated(owner, name, oldRV, newRV string) {
	if oldRV == "" || oldRV == newRV {
		return
	}
	t.set(owner, name, expectation{kind: expectChanged, oldRV: oldRV})
}

// Deleted records that name is gone.
func (t *Tracker) Deleted(owner, name string) { t.set(owner, name, expectation{kind: expectGone}) }

// Forget drops every expectation of owner.
func (t *Tracker) Forget(owner string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.owners, owner)
}

// Stale reports whether the cache (name → resourceVersion of the owner's
// cached objects) still lacks one of the owner's writes. Met expectations
// are dropped.
func (t *Tracker) Stale(owner string, cached map[string]string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.owners[owner]
	stale := false
	now := t.now()
	for name, e := range m {
		rv, present := cached[name]
		met := false
		switch e.kind {
		case expectPresent:
			met = present
		case expectChanged:
			met = !present || rv != e.oldRV
		case expectGone:
			met = !present
		}
		if met || now.Sub(e.at) > t.timeout {
			delete(m, name)
			continue
		}
		stale = true
	}
	if len(m) == 0 {
		delete(t.owners, owner)
	}
	return stale
}
