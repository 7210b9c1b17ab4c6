package sysctl

import (
	"fmt"
	"sync"
)

// Fake is an in-memory Interface. Like /proc/sys it only knows the
// parameters it was given: Get and Set of any other name fail with
// fs.ErrNotExist, and names and values are validated as FS does. Sets
// records every successful write in order.
type Fake struct {
	mu     sync.Mutex
	values map[string]string
	sets   []Write
}

// Write is one successful Set on a Fake.
type Write struct {
	Name, Value string
}

var _ Interface = (*Fake)(nil)

// NewFake returns a Fake holding the given parameters (dotted or slash
// names, as Get accepts).
func NewFake(values map[string]string) *Fake {
	f := &Fake{values: map[string]string{}}
	for k, v := range values {
		rel, err := relPath(k)
		if err != nil {
			panic(err)
		}
		f.values[rel] = v
	}
	return f
}

// Get returns the parameter's value.
func (f *Fake) Get(name string) (string, error) {
	rel, err := relPath(name)
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.values[rel]
	if !ok {
		return "", notExist("get", name)
	}
	return v, nil
}

// Set changes an existing parameter.
func (f *Fake) Set(name, value string) error {
	rel, err := relPath(name)
	if err != nil {
		return err
	}
	if err := checkValue(value); err != nil {
		return fmt.Errorf("%w: %s=%q", err, name, value)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.values[rel]; !ok {
		return notExist("set", name)
	}
	f.values[rel] = value
	f.sets = append(f.sets, Write{Name: name, Value: value})
	return nil
}

// Sets returns the writes made so far.
func (f *Fake) Sets() []Write {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Write(nil), f.sets...)
}
