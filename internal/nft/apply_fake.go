package nft

import (
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
)

// Fake is an in-memory Kernel for unit tests of code that applies rulesets
// (the agent). It records what was applied, can be told to refuse the next
// Apply, simulates drift when Current is changed or set to nil, and keeps
// the elements of every set as the Applier would (gates created closed,
// flags, blocked sources, reservations).
type Fake struct {
	mu sync.Mutex
	// Current is the ruleset "in the kernel"; nil means no table.
	Current *Ruleset
	// Applied counts successful Apply calls.
	Applied int
	// Renewed lists the limit sets the Apply calls were asked to renew.
	Renewed []string
	// FailNext, when set, is returned (wrapped in ErrRefused) by the next
	// Apply, which then changes nothing.
	FailNext error
	// Values holds counter values to report; counters of Current that are
	// not in Values read as zero.
	Values map[string]CounterValue
	// Foreign is what ForeignCommits reports.
	Foreign uint64
	// TamperedSets is what Tampered reports once.
	TamperedSets []string
	// Quotas is what QuotaUsed reports, by set.
	Quotas map[string][]QuotaUse
	// Elements holds each set's elements: key (an address, a prefix,
	// TotalKey, or "ipv4"/"ipv6" for nf_proto sets) -> "" (room for
	// element data).
	Elements map[string]map[string]string
}

var _ Kernel = (*Fake)(nil)

// Apply installs rs unless FailNext is set: sets it did not have start
// empty (gates closed), sets it no longer names lose their elements, and
// the limit sets in renew start afresh.
func (f *Fake) Apply(rs *Ruleset, renew ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.FailNext; err != nil {
		f.FailNext = nil
		return &fakeRefusal{err}
	}
	if f.Elements == nil {
		f.Elements = map[string]map[string]string{}
	}
	want := map[string]bool{}
	for _, s := range rs.Sets {
		want[s.Name] = true
		_, have := f.Elements[s.Name]
		if have && f.Current != nil && !slices.Contains(renew, s.Name) && !slices.Contains(renew, s.Limit) {
			continue
		}
		f.Elements[s.Name] = map[string]string{}
		switch s.Kind {
		case SetGate:
			f.Elements[s.Name][nfprotoName(s.Entry.Family)] = ""
		case SetGrace:
			f.Elements[s.Name]["ipv4"], f.Elements[s.Name]["ipv6"] = "", ""
		}
	}
	for name := range f.Elements {
		if !want[name] {
			delete(f.Elements, name)
		}
	}
	f.Current = rs
	f.Applied++
	f.Renewed = append(f.Renewed, renew...)
	return nil
}

// CounterValues returns the values of the named counters that Current names.
func (f *Fake) CounterValues(names []string) (map[string]CounterValue, error) {
	all, err := f.Counters()
	out := map[string]CounterValue{}
	for _, n := range names {
		if v, ok := all[n]; ok {
			out[n] = v
		}
	}
	return out, err
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
	d, err := f.Drift(rs)
	return d == "", err
}

// Drift says "table missing" or "table changed" when Current is not rs.
func (f *Fake) Drift(rs *Ruleset) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.Current == nil:
		return "table missing", nil
	case !reflect.DeepEqual(f.Current, rs):
		return "table changed", nil
	}
	return "", nil
}

// ForeignCommits returns Foreign.
func (f *Fake) ForeignCommits() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Foreign
}

// Tampered returns TamperedSets and forgets them.
func (f *Fake) Tampered() ([]string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sets := f.TamperedSets
	f.TamperedSets = nil
	return sets, false
}

// QuotaUsed reports Quotas[s.Name].
func (f *Fake) QuotaUsed(s *Set) ([]QuotaUse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Quotas[s.Name], nil
}

// SetFill counts the elements of the filled sets.
func (f *Fake) SetFill(sets []*Set) (map[string]int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for _, s := range sets {
		if s.Kind.Filled() {
			out[s.Name] = len(f.Elements[s.Name])
		}
	}
	return out, nil
}

// LimitKeys lists the keys of a limit set's elements.
func (f *Fake) LimitKeys(s *Set) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.Elements[s.Name])), nil
}

// Set replaces Current (nil deletes the table and every element),
// simulating someone else changing the kernel.
func (f *Fake) Set(rs *Ruleset) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Current = rs
	if rs == nil {
		f.Elements = nil
	}
}

// SetFlag puts in or takes out the family's element of a flag set.
// Flag implements Kernel.
func (f *Fake) Flag(set string, fam acl.Family) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, on := f.elementsLocked(set)[nfprotoName(fam)]
	return on, nil
}

func (f *Fake) SetFlag(set string, fam acl.Family, on bool) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	els := f.elementsLocked(set)
	key := nfprotoName(fam)
	if _, have := els[key]; have == on {
		return false, nil
	}
	if on {
		els[key] = ""
	} else {
		delete(els, key)
	}
	return true, nil
}

// Block puts a source into a blocked set, as the kernel does.
func (f *Fake) Block(set string, src netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.elementsLocked(set)[src.String()] = ""
}

// BlockedLeft lists a blocked set's sources (or a full flag) as Blocked
// does, each with a minute left.
func (f *Fake) BlockedLeft(set string, fam acl.Family) ([]BlockedElem, error) {
	if strings.HasSuffix(set, "_full") {
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.Elements[set]) > 0 {
			return []BlockedElem{{Left: time.Minute}}, nil
		}
		return nil, nil
	}
	addrs, err := f.Blocked(set, fam)
	var out []BlockedElem
	for _, a := range addrs {
		out = append(out, BlockedElem{Addr: a, Left: time.Minute})
	}
	return out, err
}

// Blocked lists the sources of a blocked set of one family.
func (f *Fake) Blocked(set string, fam acl.Family) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []netip.Addr
	for _, k := range slices.Sorted(maps.Keys(f.Elements[set])) {
		if a, err := netip.ParseAddr(k); err == nil && a.Is4() == (fam == acl.IPv4) {
			out = append(out, a)
		}
	}
	return out, nil
}

// RestoreBlocked puts sources (or the full flag) into a blocked set.
func (f *Fake) RestoreBlocked(set string, fam acl.Family, elems []BlockedElem) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	els := f.elementsLocked(set)
	for _, e := range elems {
		if e.Addr.IsValid() {
			els[e.Addr.String()] = ""
		} else {
			els[nfprotoName(fam)] = ""
		}
	}
	return nil
}

// Unblock removes sources (all when addrs is nil) from a blocked set.
func (f *Fake) Unblock(set string, fam acl.Family, addrs []netip.Addr) error {
	have, _ := f.Blocked(set, fam)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range have {
		if addrs == nil || slices.Contains(addrs, a) {
			delete(f.Elements[set], a.String())
		}
	}
	return nil
}

// Gated returns the sets whose gate holds an element.
func (f *Fake) Gated(sets []*Set) ([]*Set, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*Set
	for _, s := range sets {
		if len(f.Elements[GateSetName(s.Name)]) > 0 {
			out = append(out, s)
		}
	}
	return out, nil
}

// Reservations reads the reservation sets of the limit sets.
func (f *Fake) Reservations(sets []*Set) ([]Reservation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	members := map[string]map[string]bool{}
	for _, s := range sets {
		for _, name := range allMemberSets(s) {
			members[name] = map[string]bool{}
			for k := range f.Elements[name] {
				members[name][k] = true
			}
		}
	}
	return reservationsOf(sets, members), nil
}

// WriteReservations makes the reservation sets of the limit sets hold want
// and opens the gates of open.
func (f *Fake) WriteReservations(sets []*Set, want []Reservation, open []*Set) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := membersOf(sets, want)
	if err != nil {
		return &fakeRefusal{err}
	}
	for _, s := range sets {
		for _, name := range allMemberSets(s) {
			els := f.elementsLocked(name)
			clear(els)
			for k := range m[name] {
				els[k] = ""
			}
		}
	}
	for _, s := range open {
		clear(f.elementsLocked(GateSetName(s.Name)))
	}
	return nil
}

func (f *Fake) elementsLocked(set string) map[string]string {
	if f.Elements == nil {
		f.Elements = map[string]map[string]string{}
	}
	if f.Elements[set] == nil {
		f.Elements[set] = map[string]string{}
	}
	return f.Elements[set]
}

type fakeRefusal struct{ err error }

func (e *fakeRefusal) Error() string   { return "apply: " + ErrRefused.Error() + ": " + e.err.Error() }
func (e *fakeRefusal) Unwrap() []error { return []error{ErrRefused, e.err} }
