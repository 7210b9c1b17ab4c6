package conntrack

import (
	"fmt"
	"sync"
)

// Fake is an in-memory conntrack table. ClearStale validates its input and
// deletes flows exactly as the kernel implementation does.
type Fake struct {
	mu      sync.Mutex
	flows   []Flow
	deleted []Flow
	calls   int
}

var _ Interface = (*Fake)(nil)

// NewFake returns a table holding flows.
func NewFake(flows ...Flow) *Fake {
	f := &Fake{}
	f.Add(flows...)
	return f
}

// Add puts flows in the table, as traffic would. A flow without valid
// addresses cannot exist in the kernel, so it panics.
func (f *Fake) Add(flows ...Flow) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fl := range flows {
		if !fl.OrigSrc.IsValid() || !fl.OrigDst.IsValid() || !fl.ReplySrc.IsValid() || !fl.ReplyDst.IsValid() || fl.Proto == 0 {
			panic(fmt.Sprintf("conntrack.Fake: invalid flow %v", fl))
		}
		f.flows = append(f.flows, fl)
	}
}

// ClearStale deletes the stale flows.
func (f *Fake) ClearStale(svcs []Service) (int, error) {
	m, err := NewMatcher(svcs)
	if err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	kept := f.flows[:0]
	n := 0
	for _, fl := range f.flows {
		if m.Stale(fl) {
			f.deleted = append(f.deleted, fl)
			n++
			continue
		}
		kept = append(kept, fl)
	}
	f.flows = kept
	return n, nil
}

// Flows returns the flows still in the table.
func (f *Fake) Flows() []Flow {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Flow(nil), f.flows...)
}

// Deleted returns every flow ClearStale removed, in order.
func (f *Fake) Deleted() []Flow {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Flow(nil), f.deleted...)
}

// Calls returns how many valid ClearStale calls were made.
func (f *Fake) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}
