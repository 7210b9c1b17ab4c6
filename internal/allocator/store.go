package allocator

import (
	"context"
	"sort"
	"strings"
	"sync"
)

// Store is the slice of etcd the allocators need. Keys are full etcd keys.
// Implementations: EtcdStore, and MemStore for tests.
type Store interface {
	// Reserve creates key with value only if key does not exist (one
	// transaction), returning ErrAllocated otherwise, and the revision at
	// which the key was created.
	Reserve(ctx context.Context, key string, value []byte) (int64, error)
	// Release deletes key. With revision > 0 it deletes only if the key's
	// last modification is still that revision, returning ErrModified
	// otherwise (repair uses this so it never removes an allocation that was
	// re-made after it looked). Releasing a missing key unconditionally is
	// not an error.
	Release(ctx context.Context, key string, revision int64) error
	// Get returns key's entry, and false if it does not exist.
	Get(ctx context.Context, key string) (Entry, bool, error)
	// List returns every key under prefix, and the store revision the
	// listing is consistent with.
	List(ctx context.Context, prefix string) (map[string]Entry, int64, error)
	// Watch streams changes under prefix made after revision. The channel is
	// closed when ctx ends; on any failure (including compaction of the
	// requested revision) a last event carrying Err is sent before closing,
	// and the caller lists again.
	Watch(ctx context.Context, prefix string, revision int64) <-chan WatchEvent
}

// Entry is a stored value and the revision that last modified it.
type Entry struct {
	Value    []byte
	Revision int64
}

// WatchEvent is one change under a watched prefix.
type WatchEvent struct {
	Key      string
	Value    []byte // nil on delete
	Deleted  bool
	Revision int64
	Err      error
}

// MemStore is an in-memory Store with etcd's semantics: one global revision
// bumped by every write, create-if-absent reserves, revision-guarded
// deletes, and watches that replay history after a revision.
type MemStore struct {
	mu       sync.Mutex
	rev      int64
	data     map[string]Entry
	history  []WatchEvent
	watchers map[*memWatcher]struct{}
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{data: map[string]Entry{}, watchers: map[*memWatcher]struct{}{}}
}

var _ Store = (*MemStore)(nil)

func (m *MemStore) Reserve(ctx context.Context, key string, value []byte) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.data[key]; ok {
		return 0, ErrAllocated
	}
	m.rev++
	v := append([]byte(nil), value...)
	m.data[key] = Entry{Value: v, Revision: m.rev}
	m.emit(WatchEvent{Key: key, Value: v, Revision: m.rev})
	return m.rev, nil
}

func (m *MemStore) Release(ctx context.Context, key string, revision int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.data[key]
	if revision > 0 && (!ok || e.Revision != revision) {
		return ErrModified
	}
	if !ok {
		return nil
	}
	m.rev++
	delete(m.data, key)
	m.emit(WatchEvent{Key: key, Deleted: true, Revision: m.rev})
	return nil
}

// Put writes key unconditionally; tests use it to plant foreign or
// corrupt values the allocators must cope with.
func (m *MemStore) Put(key string, value []byte) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rev++
	v := append([]byte(nil), value...)
	m.data[key] = Entry{Value: v, Revision: m.rev}
	m.emit(WatchEvent{Key: key, Value: v, Revision: m.rev})
	return m.rev
}

func (m *MemStore) Get(ctx context.Context, key string) (Entry, bool, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.data[key]
	return e, ok, nil
}

func (m *MemStore) List(ctx context.Context, prefix string) (map[string]Entry, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]Entry{}
	for k, e := range m.data {
		if strings.HasPrefix(k, prefix) {
			out[k] = e
		}
	}
	return out, m.rev, nil
}

// Keys returns every stored key in order, for test assertions.
func (m *MemStore) Keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]string, 0, len(m.data))
	for k := range m.data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (m *MemStore) Watch(ctx context.Context, prefix string, revision int64) <-chan WatchEvent {
	w := &memWatcher{prefix: prefix, notify: make(chan struct{}, 1), out: make(chan WatchEvent)}
	m.mu.Lock()
	for _, ev := range m.history {
		if ev.Revision > revision {
			w.add(ev)
		}
	}
	m.watchers[w] = struct{}{}
	m.mu.Unlock()
	go func() {
		defer close(w.out)
		defer func() {
			m.mu.Lock()
			delete(m.watchers, w)
			m.mu.Unlock()
		}()
		for {
			for _, ev := range w.take() {
				select {
				case w.out <- ev:
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-w.notify:
			case <-ctx.Done():
				return
			}
		}
	}()
	return w.out
}

// emit records ev and queues it for matching watchers; m.mu is held.
func (m *MemStore) emit(ev WatchEvent) {
	m.history = append(m.history, ev)
	for w := range m.watchers {
		w.add(ev)
	}
}

// memWatcher queues without bound so writers never block on a slow reader.
type memWatcher struct {
	prefix string
	mu     sync.Mutex
	queue  []WatchEvent
	notify chan struct{}
	out    chan WatchEvent
}

func (w *memWatcher) add(ev WatchEvent) {
	if !strings.HasPrefix(ev.Key, w.prefix) {
		return
	}
	w.mu.Lock()
	w.queue = append(w.queue, ev)
	w.mu.Unlock()
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

func (w *memWatcher) take() []WatchEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.queue
	w.queue = nil
	return q
}
