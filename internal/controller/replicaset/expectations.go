package replicaset

import (
	"sync"
	"time"
)

// expectationsTTL bounds how long an owner waits for its own writes to show
// up in the cache. A create whose pod the informer never sees (say, deleted
// again before the watch delivered it) would otherwise block the owner.
const expectationsTTL = 5 * time.Minute

// expectations counts, per owner key, the pod creates and deletes the
// controller issued that the pod informer has not delivered yet. While any
// are outstanding the cache undercounts or overcounts the owner's pods, so
// acting on it would create or delete too many.
//
// Creates are counted, not named: the pod's name is only known once the
// create returns, and the informer may deliver the pod before that. Deletes
// are tracked by pod key so that a pod seen both as "deletion timestamp set"
// and as "gone" is counted once.
type expectations struct {
	mu     sync.Mutex
	now    func() time.Time
	owners map[string]*pending
}

type pending struct {
	creates int
	deletes map[string]struct{}
	since   time.Time
}

func newExpectations(now func() time.Time) *expectations {
	return &expectations{now: now, owners: map[string]*pending{}}
}

// ExpectCreations records that n creates are about to be issued for key.
func (e *expectations) ExpectCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.get(key)
	p.creates += n
	p.since = e.now()
}

// CreationObserved lowers the create count of key: the informer delivered
// one of its pods, or a create failed and will never be delivered.
func (e *expectations) CreationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.owners[key]; p != nil && p.creates > 0 {
		p.creates--
	}
}

// ExpectDeletions records that the pods podKeys are about to be deleted.
func (e *expectations) ExpectDeletions(key string, podKeys []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.get(key)
	for _, k := range podKeys {
		p.deletes[k] = struct{}{}
	}
	p.since = e.now()
}

// DeletionObserved drops podKey from the deletes expected for key; pods the
// controller did not delete are ignored.
func (e *expectations) DeletionObserved(key, podKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.owners[key]; p != nil {
		delete(p.deletes, podKey)
	}
}

// Satisfied reports whether the cache is known to reflect every write made
// for key, or the writes are too old to keep waiting for.
func (e *expectations) Satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.owners[key]
	if p == nil {
		return true
	}
	if p.creates <= 0 && len(p.deletes) == 0 {
		return true
	}
	if e.now().Sub(p.since) > expectationsTTL {
		// Start over: the next manage pass sets fresh expectations.
		delete(e.owners, key)
		return true
	}
	return false
}

// Delete forgets key, for owners that are gone.
func (e *expectations) Delete(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.owners, key)
}

func (e *expectations) get(key string) *pending {
	p := e.owners[key]
	if p == nil {
		p = &pending{deletes: map[string]struct{}{}}
		e.owners[key] = p
	}
	return p
}
