package allocator

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// Options tune an allocator; the zero value is ready for production.
type Options struct {
	// Now stamps allocations; defaults to time.Now.
	Now func() time.Time
	// RandN returns a uniform value in [0, n); defaults to math/rand/v2.
	RandN func(n uint64) uint64
	// MaxAttempts bounds how many random candidates AllocateNext tries when
	// other allocators keep winning the race for them; default 128.
	MaxAttempts int
	// Resync is how old the local set may get before a random allocation
	// lists the store again, when Run is not keeping it fresh; default 30s.
	Resync time.Duration
	// RetryBackoff is the pause before Run lists again after a failed list
	// or a broken watch; default 1s.
	RetryBackoff time.Duration
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RandN == nil {
		o.RandN = rand.Uint64N
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 128
	}
	if o.Resync <= 0 {
		o.Resync = 30 * time.Second
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = time.Second
	}
	return o
}

// core is the allocator machinery shared by IPs and ports: values are
// offsets in a range, each stored at keyPrefix+name(offset).
type core struct {
	store     Store
	keyPrefix string
	sel       selector
	nameOf    func(off uint64) string
	offsetOf  func(name string) (uint64, bool)
	decode    func(value []byte) record
	opts      Options

	mu sync.Mutex
	// taken mirrors the store's keys in range. It may lag the store; see
	// the package doc for why that is safe.
	taken map[uint64]struct{}
	// pending counts local reservations in flight, so concurrent local
	// callers do not race each other for the same candidate.
	pending  map[uint64]int
	loadedAt time.Time
	watching bool
	// rev is the store revision taken reflects: watch events at or below
	// it are already in a listing and must not be replayed over it.
	rev int64
}

func newCore(store Store, keyPrefix string, sel selector, nameOf func(uint64) string,
	offsetOf func(string) (uint64, bool), decode func([]byte) record, opts Options) *core {
	return &core{
		store: store, keyPrefix: keyPrefix, sel: sel, nameOf: nameOf, offsetOf: offsetOf,
		decode: decode, opts: opts.withDefaults(),
		taken: map[uint64]struct{}{}, pending: map[uint64]int{},
	}
}

func (c *core) key(off uint64) string { return c.keyPrefix + c.nameOf(off) }

// sync replaces the local set with the store's keys and returns the
// revision of the listing.
func (c *core) sync(ctx context.Context) (int64, error) {
	entries, rev, err := c.store.List(ctx, c.keyPrefix)
	if err != nil {
		return 0, err
	}
	taken := make(map[uint64]struct{}, len(entries))
	for k := range entries {
		if off, ok := c.offsetOf(strings.TrimPrefix(k, c.keyPrefix)); ok {
			taken[off] = struct{}{}
		}
	}
	c.mu.Lock()
	// Two listings can finish out of order (Run's and a caller's); the
	// older must not overwrite a view the watch has already moved past.
	if rev >= c.rev {
		c.taken = taken
		c.loadedAt = c.opts.Now()
		c.rev = rev
	}
	c.mu.Unlock()
	return rev, nil
}

func (c *core) ensureFresh(ctx context.Context) error {
	c.mu.Lock()
	stale := !c.watching && (c.loadedAt.IsZero() || c.opts.Now().Sub(c.loadedAt) > c.opts.Resync)
	c.mu.Unlock()
	if !stale {
		return nil
	}
	_, err := c.sync(ctx)
	return err
}

func (c *core) isTaken(off uint64) bool {
	_, t := c.taken[off]
	return t || c.pending[off] > 0
}

// reserve claims off in the store; value builds the stored bytes.
func (c *core) reserve(ctx context.Context, off uint64, value func(uint64) ([]byte, error)) error {
	v, err := value(off)
	if err != nil {
		return err
	}
	_, err = c.store.Reserve(ctx, c.key(off), v)
	if err == nil || errors.Is(err, ErrAllocated) {
		c.mu.Lock()
		c.taken[off] = struct{}{}
		c.mu.Unlock()
	}
	return err
}

// next claims a random free offset. A lost race marks the candidate taken
// and tries another; running out of candidates lists the store once (the
// local set may hold values released elsewhere) before reporting ErrFull.
func (c *core) next(ctx context.Context, value func(uint64) ([]byte, error)) (uint64, error) {
	if err := c.ensureFresh(ctx); err != nil {
		return 0, err
	}
	relisted := false
	lost := 0
	for attempt := 0; attempt < c.opts.MaxAttempts; attempt++ {
		c.mu.Lock()
		off, ok := c.sel.pick(c.opts.RandN, c.isTaken, len(c.taken)+len(c.pending))
		if ok {
			c.pending[off]++
		}
		c.mu.Unlock()
		if !ok {
			if relisted {
				return 0, ErrFull
			}
			if _, err := c.sync(ctx); err != nil {
				return 0, err
			}
			relisted = true
			continue
		}
		err := c.reserve(ctx, off, value)
		c.mu.Lock()
		if c.pending[off]--; c.pending[off] <= 0 {
			delete(c.pending, off)
		}
		c.mu.Unlock()
		if err == nil {
			return off, nil
		}
		if !errors.Is(err, ErrAllocated) {
			return 0, err
		}
		// Losing race after race means the view is stale (no watch, and
		// another server allocating): refresh it rather than probe blindly.
		if lost++; lost%lostRacesBeforeRelist == 0 && !c.isWatching() {
			if _, err := c.sync(ctx); err != nil {
				return 0, err
			}
		}
	}
	return 0, fmt.Errorf("no free value after %d attempts lost to concurrent allocations: %w", c.opts.MaxAttempts, ErrAllocated)
}

func (c *core) release(ctx context.Context, off uint64) error {
	if err := c.store.Release(ctx, c.key(off), 0); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.taken, off)
	c.mu.Unlock()
	return nil
}

// releaseIfOwner releases off only while the store says o owns it, so a
// late release cannot free a value that has since gone to someone else.
func (c *core) releaseIfOwner(ctx context.Context, o Owner, off uint64) error {
	e, ok, err := c.store.Get(ctx, c.key(off))
	if err != nil || !ok {
		return err
	}
	rec := c.decode(e.Value)
	if rec.foreign || rec.owner != o {
		return nil
	}
	if err := c.store.Release(ctx, c.key(off), e.Revision); err != nil {
		if errors.Is(err, ErrModified) {
			return nil
		}
		return err
	}
	c.mu.Lock()
	delete(c.taken, off)
	c.mu.Unlock()
	return nil
}

func (c *core) owner(ctx context.Context, off uint64) (Owner, bool, error) {
	e, ok, err := c.store.Get(ctx, c.key(off))
	if err != nil || !ok {
		return Owner{}, false, err
	}
	return c.decode(e.Value).owner, true, nil
}

// run keeps the local set fresh with a list followed by a watch, listing
// again whenever the watch breaks, until ctx ends.
func (c *core) run(ctx context.Context) {
	for ctx.Err() == nil {
		rev, err := c.sync(ctx)
		if err == nil {
			c.setWatching(true)
			c.follow(ctx, rev)
			c.setWatching(false)
		}
		select {
		case <-ctx.Done():
		case <-time.After(c.opts.RetryBackoff):
		}
	}
}

const lostRacesBeforeRelist = 8

func (c *core) isWatching() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.watching
}

func (c *core) setWatching(w bool) {
	c.mu.Lock()
	c.watching = w
	c.mu.Unlock()
}

func (c *core) follow(ctx context.Context, rev int64) {
	for ev := range c.store.Watch(ctx, c.keyPrefix, rev) {
		if ev.Err != nil {
			return
		}
		off, ok := c.offsetOf(strings.TrimPrefix(ev.Key, c.keyPrefix))
		c.mu.Lock()
		if ev.Revision > c.rev {
			c.rev = ev.Revision
			// Keys outside the view (another family's IPs, foreign
			// names) only advance the revision.
			switch {
			case ok && ev.Deleted:
				delete(c.taken, off)
			case ok:
				c.taken[off] = struct{}{}
			}
		}
		c.mu.Unlock()
	}
}

// used reports how many offsets the local set holds (for tests and
// metrics); it may lag the store.
func (c *core) used() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.taken)
}

func (c *core) forget(off uint64) {
	c.mu.Lock()
	delete(c.taken, off)
	c.mu.Unlock()
}
