package nft

import (
	"reflect"
	"sync"
)

// Fake is an in-memory Kernel for unit tests of code that applies rulesets
// (the agent). It records what was applied, can be told to refuse the next
// Apply, and simulates drift when Current is changed or set to nil.
type Fake struct {
	mu sync.Mutex
	// Current is the ruleset "in the kernel"; nil means no table.
	Current *Ruleset
	// Applied counts successful Apply calls.
	Applied int
	// FailNext, when set, is returned (wrapped in ErrRefused) by the next
	// Apply, which then changes nothing.
	FailNext error
	// Values holds counter values to report; counters of Current that are
	// not in Values read as zero.
	Values map[string]CounterValue
}

var _ Kernel = (*Fake)(nil)

// Apply installs rs unless FailNext is set.
func (f *Fake) Apply(rs *Ruleset) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.FailNext; err != nil {
		f.FailNext = nil
		return &fakeRefusal{err}
	}
	f.Current = rs
	f.Applied++
	return nil
}

// Counters returns the values of the counters that Current names.
func (f *Fake) Counters() (map[string]CounterValue, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]CounterValue{}
	if f.Current == nil {
		return out, nil
	}
	for _, name := range f.Current.Counters {
		out[name] = f.Values[name]
	}
	return out, nil
}

// InSync reports whether Current equals rs.
func (f *Fake) InSync(rs *Ruleset) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Current != nil && reflect.DeepEqual(f.Current, rs), nil
}

// Set replaces Current (nil deletes the table), simulating someone else
// changing the kernel.
func (f *Fake) Set(rs *Ruleset) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Current = rs
}

type fakeRefusal struct{ err error }

func (e *fakeRefusal) Error() string   { return "apply: " + ErrRefused.Error() + ": " + e.err.Error() }
func (e *fakeRefusal) Unwrap() []error { return []error{ErrRefused, e.err} }
