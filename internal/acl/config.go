package acl

import (
	"fmt"
	"slices"
)

// This file declares the mutation API that the shell's command handlers
// call. Every method either changes the config and returns nil, or returns an
// error and changes nothing. Semantic errors are *Error values, printed by
// the shell as "% Error: " + Msg.

// Error is a semantic configuration error.
type Error struct {
	Path string // where, e.g. `ip access-list extended check seq 10`; may be ""
	Msg  string // e.g. `access-list "x" does not exist`
}

// Error renders the error as "PATH: MSG", or MSG alone without a path.
func (e *Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

func errorf(format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...)}
}

// MaxSeq is the largest sequence number.
const MaxSeq = 65535

// SeqStep is the distance between automatically numbered entries.
const SeqStep = 10

// New returns an empty configuration.
func New() *Config { return &Config{} }

// Clone returns a copy of c that the mutation API can change without
// touching c. Entries are shared, not copied: an entry is immutable once it
// is in a config (the mutation API replaces entries, it never changes one),
// so a transaction on a 50k-entry config copies 50k pointers, not 50k
// entries.
func (c *Config) Clone() *Config {
	n := &Config{Hostname: c.Hostname, ExistingSessions: c.ExistingSessions}
	for _, tr := range c.TimeRanges {
		n.TimeRanges = append(n.TimeRanges, tr.Clone())
	}
	for _, a := range c.ACLs {
		n.ACLs = append(n.ACLs, a.Clone())
	}
	for _, i := range c.Interfaces {
		ic := *i
		n.Interfaces = append(n.Interfaces, &ic)
	}
	return n
}

// Clone returns a copy of the access list with its own Entries slice and
// the same (immutable) entries.
func (a *ACL) Clone() *ACL {
	return &ACL{Name: a.Name, Family: a.Family, Entries: slices.Clone(a.Entries)}
}

// Entry returns the entry with sequence number seq, or nil.
func (a *ACL) Entry(seq int) *Entry {
	i, ok := a.seqIndex(seq)
	if !ok {
		return nil
	}
	return a.Entries[i]
}

func (a *ACL) seqIndex(seq int) (int, bool) {
	return slices.BinarySearchFunc(a.Entries, seq, func(e *Entry, s int) int { return e.Seq - s })
}

// Label returns the ACL as named in the running-config:
// `ip access-list extended NAME`.
func (a *ACL) Label() string { return aclLabel(a.Family, a.Name) }

func aclLabel(f Family, name string) string {
	return f.String() + " access-list extended " + name
}

// SetHostname sets the hostname ("" restores the default, the Linux hostname).
func (c *Config) SetHostname(name string) error {
	if name != "" && !ValidHostname(name) {
		return errorf("invalid hostname %q", name)
	}
	c.Hostname = name
	return nil
}

// Empty reports whether c holds no access list, interface block or time
// range (a hostname or a session policy alone enforce nothing).
func (c *Config) Empty() bool {
	return len(c.ACLs) == 0 && len(c.Interfaces) == 0 && len(c.TimeRanges) == 0
}

// ACL returns the access list, or nil.
func (c *Config) ACL(f Family, name string) *ACL {
	i, ok := c.aclIndex(f, name)
	if !ok {
		return nil
	}
	return c.ACLs[i]
}

func (c *Config) aclIndex(f Family, name string) (int, bool) {
	return slices.BinarySearchFunc(c.ACLs, aclKey{f, name}, func(a *ACL, k aclKey) int {
		return compareACL(a.Family, a.Name, k.f, k.name)
	})
}

type aclKey struct {
	f    Family
	name string
}

func compareACL(f1 Family, n1 string, f2 Family, n2 string) int {
	if f1 != f2 {
		return int(f1) - int(f2)
	}
	switch {
	case n1 < n2:
		return -1
	case n1 > n2:
		return 1
	}
	return 0
}

// mustACL returns the list or a "does not exist" error.
func (c *Config) mustACL(f Family, name string) (*ACL, error) {
	if a := c.ACL(f, name); a != nil {
		return a, nil
	}
	return nil, errorf("access-list %q does not exist", name)
}

// EnsureACL returns the access list, creating it empty if it does not exist.
// It fails on an invalid name.
func (c *Config) EnsureACL(f Family, name string) (*ACL, error) {
	if f != IPv4 && f != IPv6 {
		return nil, errorf("unknown address family %d", int(f))
	}
	if !ValidName(name) {
		return nil, errorf("invalid access-list name %q", name)
	}
	i, ok := c.aclIndex(f, name)
	if ok {
		return c.ACLs[i], nil
	}
	a := &ACL{Name: name, Family: f}
	c.ACLs = slices.Insert(c.ACLs, i, a)
	return a, nil
}

// DeleteACL removes an access list. It fails if the list does not exist or is
// applied to an interface.
func (c *Config) DeleteACL(f Family, name string) error {
	i, ok := c.aclIndex(f, name)
	if !ok {
		return errorf("access-list %q does not exist", name)
	}
	if ifc, d, ok := c.appliedTo(f, name); ok {
		return errorf("access-list %q is applied to interface %s %s", name, ifc.Label(), d)
	}
	c.ACLs = deleteAt(c.ACLs, i)
	return nil
}

// Applied reports whether the list is applied to an interface.
func (c *Config) Applied(f Family, name string) bool {
	_, _, ok := c.appliedTo(f, name)
	return ok
}

// appliedTo returns the first interface and direction the list is applied to.
func (c *Config) appliedTo(f Family, name string) (*Interface, Direction, bool) {
	for _, ifc := range c.Interfaces {
		for _, d := range []Direction{In, Out} {
			if ifc.Groups[f][d] == name {
				return ifc, d, true
			}
		}
	}
	return nil, 0, false
}

// appliedIn returns an interface the list is applied to in direction `in`.
func (c *Config) appliedIn(f Family, name string) (*Interface, bool) { return c.appliedAs(f, name, In) }

// appliedAs returns an interface to which the ACL is applied in direction d.
func (c *Config) appliedAs(f Family, name string, d Direction) (*Interface, bool) {
	if c == nil || name == "" {
		return nil, false
	}
	for _, ifc := range c.Interfaces {
		if ifc.Groups[f][d] == name {
			return ifc, true
		}
	}
	return nil, false
}

// AddEntry adds e to the list (which must exist). e.Seq == 0 means the last
// seq + 10 (10 for the first). An entry the list holds (SameEntry: the
// parsed value, so any spelling, `count` and `refuse reset` aside), at its
// seq or at any seq when e.Seq is 0, changes nothing and is not an error. It fails
// on a seq that holds another entry, an identical entry under another
// explicit seq, or an entry that does not validate against c (ports on a protocol
// without ports, unknown time-range, user/uid in a list applied `in`, ...).
// The entry is stored as given (the caller must not reuse it).
func (c *Config) AddEntry(f Family, name string, e *Entry) error {
	a, err := c.mustACL(f, name)
	if err != nil {
		return err
	}
	SortConnlimits(e.Connlimits)
	// An entry identical to one the list holds (at the same seq, or at any
	// seq when none is given; a remark with the same text) changes nothing,
	// as on IOS: automation re-sends lines it cannot tell from the
	// running-config, and a config file may be replayed.
	var err2 error
	a.withIndex(func(ix *contentIndex) { err2 = a.addEntry(c, ix, f, name, e) })
	return err2
}

// addEntry is AddEntry with the list's content index (one lookup instead
// of a comparison with every entry).
func (a *ACL) addEntry(c *Config, ix *contentIndex, f Family, name string, e *Entry) error {
	if e.Seq == 0 {
		for _, v := range spellings(e) {
			if ix.same(v) != nil {
				return nil
			}
		}
	} else if i, ok := a.seqIndex(e.Seq); ok && SameEntry(a.Entries[i], e) {
		if SameContent(a.Entries[i], e) {
			return nil // valid: the list holds it
		}
		tmp := *e // another spelling: an invalid one stays an error
		return ValidateEntry(c, f, name, &tmp)
	}
	seq := e.Seq
	if seq == 0 {
		var err error
		if seq, err = a.nextSeq(); err != nil {
			return err
		}
	}
	tmp := *e
	tmp.Seq = seq
	if err := ValidateEntry(c, f, name, &tmp); err != nil {
		return err
	}
	i, exists := a.seqIndex(seq)
	if exists {
		return errorf("seq %d already exists in access-list %q", seq, name)
	}
	if tmp.Action != Remark {
		if o := ix.same(&tmp); o != nil {
			return errorf("entry already exists as seq %d", o.Seq) // and seq is another one
		}
	}
	e.Seq = seq
	a.Entries = slices.Insert(a.Entries, i, e)
	ix.add(e)
	return nil
}

// nextSeq is the seq of an entry added without one: the last + 10.
func (a *ACL) nextSeq() (int, error) {
	seq := SeqStep
	if n := len(a.Entries); n > 0 {
		seq = a.Entries[n-1].Seq + SeqStep
	}
	if seq > MaxSeq {
		return 0, errorf("next sequence number %d is over %d; resequence access-list %q", seq, MaxSeq, a.Name)
	}
	return seq, nil
}

// AppendRemark adds remark r after the list's last entry, as AddEntry
// does without a seq, also when the list holds a remark with its text
// already (a remark repeated on purpose, before another entry).
func (c *Config) AppendRemark(f Family, name string, r *Entry) error {
	a, err := c.mustACL(f, name)
	if err != nil {
		return err
	}
	if r.Action != Remark {
		return errorf("not a remark")
	}
	seq, err := a.nextSeq()
	if err != nil {
		return err
	}
	r2 := *r
	r2.Seq = seq
	return c.AddEntry(f, name, &r2)
}

// DeleteSeq removes entry seq from the list (`no seq N`).
func (c *Config) DeleteSeq(f Family, name string, seq int) error {
	a, err := c.mustACL(f, name)
	if err != nil {
		return err
	}
	i, ok := a.seqIndex(seq)
	if !ok {
		return noSeq(seq, name)
	}
	a.Entries = deleteAt(a.Entries, i)
	return nil
}

// CheckEntry reports, as `no seq N` does, whether the list exists and (seq
// not 0) has entry seq.
func (c *Config) CheckEntry(f Family, name string, seq int) error {
	a, err := c.mustACL(f, name)
	if err == nil && seq != 0 && a.Entry(seq) == nil {
		err = noSeq(seq, name)
	}
	return err
}

func noSeq(seq int, name string) error {
	return errorf("seq %d does not exist in access-list %q", seq, name)
}

// DeleteMatching removes the entry whose content equals e, ignoring Seq
// (`no permit tcp ...`). For remarks, the first remark with that text goes.
func (c *Config) DeleteMatching(f Family, name string, e *Entry) error {
	a, err := c.mustACL(f, name)
	if err != nil {
		return err
	}
	// The entry itself first, then one spelled otherwise (SameEntry). Of
	// remarks with the same text (which a list may hold several times),
	// the last.
	for _, same := range []func(a, b *Entry) bool{SameContent, SameEntry} {
		for j := range a.Entries {
			i := j
			if e.Action == Remark {
				i = len(a.Entries) - 1 - j
			}
			if same(a.Entries[i], e) {
				a.Entries = deleteAt(a.Entries, i)
				return nil
			}
		}
	}
	return errorf("no such entry in access-list %q", name)
}

// Resequence renumbers the list's entries START, START+STEP, ...
// It fails if a number would exceed 65535.
func (c *Config) Resequence(f Family, name string, start, step int) error {
	a, err := c.mustACL(f, name)
	if err != nil {
		return err
	}
	if start < 1 || start > MaxSeq {
		return errorf("start %d out of range 1-%d", start, MaxSeq)
	}
	if step < 1 || step > MaxSeq {
		return errorf("step %d out of range 1-%d", step, MaxSeq)
	}
	if n := len(a.Entries); n > 0 && start+(n-1)*step > MaxSeq {
		return errorf("resequencing %d entries from %d by %d goes over %d", n, start, step, MaxSeq)
	}
	// New entries in a new slice: the old entries may be shared with
	// clones (Clone), and the list's content index holds them (index.go).
	es := make([]*Entry, len(a.Entries))
	for i, e := range a.Entries {
		es[i] = e
		if seq := start + i*step; seq != e.Seq {
			es[i] = e.Clone()
			es[i].Seq = seq
		}
	}
	a.Entries = es
	return nil
}

// deleteAt removes s[i]; an emptied slice becomes nil, so that equal
// configurations stay reflect.DeepEqual however they were reached.
func deleteAt[S ~[]E, E any](s S, i int) S {
	s = slices.Delete(s, i, i+1)
	if len(s) == 0 {
		return nil
	}
	return s
}

// Equal reports whether two valid configurations are the same, that is,
// have the same running-config. Unlike reflect.DeepEqual it does not tell
// a nil slice from an empty one (as a JSON round trip may produce).
func Equal(a, b *Config) bool { return Format(a) == Format(b) }
