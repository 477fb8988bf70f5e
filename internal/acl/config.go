package acl

// This file declares the mutation API that the shell's command handlers
// call. Every method either changes the config and returns nil, or returns an
// error and changes nothing. Semantic errors are *Error values, printed by
// the shell as "% Error: " + Msg.

// Error is a semantic configuration error.
type Error struct {
	Path string // where, e.g. `ip access-list extended check seq 10`; may be ""
	Msg  string // e.g. `access-list "x" does not exist`
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// New returns an empty configuration.
func New() *Config { return &Config{} }

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config { panic("TODO") }

// ACL returns the access list, or nil.
func (c *Config) ACL(f Family, name string) *ACL { panic("TODO") }

// EnsureACL returns the access list, creating it empty if it does not exist.
// It fails on an invalid name.
func (c *Config) EnsureACL(f Family, name string) (*ACL, error) { panic("TODO") }

// DeleteACL removes an access list. It fails if the list does not exist or is
// applied to an interface.
func (c *Config) DeleteACL(f Family, name string) error { panic("TODO") }

// AddEntry adds e to the list (which must exist). e.Seq == 0 means the last
// seq + 10 (10 for the first). It fails on a duplicate seq, an identical
// entry, or an entry that does not validate against c (ports on a protocol
// without ports, unknown time-range, user/uid in a list applied `in`, ...).
// The entry is stored as given (the caller must not reuse it).
func (c *Config) AddEntry(f Family, name string, e *Entry) error { panic("TODO") }

// DeleteSeq removes entry seq from the list (`no seq N`).
func (c *Config) DeleteSeq(f Family, name string, seq int) error { panic("TODO") }

// DeleteMatching removes the entry whose content equals e, ignoring Seq
// (`no permit tcp ...`).
func (c *Config) DeleteMatching(f Family, name string, e *Entry) error { panic("TODO") }

// Resequence renumbers the list's entries START, START+STEP, ...
// It fails if a number would exceed 65535.
func (c *Config) Resequence(f Family, name string, start, step int) error { panic("TODO") }

// Interface returns the interface block, or nil.
func (c *Config) Interface(kind IfKind, name string) *Interface { panic("TODO") }

// EnsureInterface returns the interface block, creating it if needed. It
// fails on a malformed name (ethernet must be S/P, management must be 0).
func (c *Config) EnsureInterface(kind IfKind, name string) (*Interface, error) { panic("TODO") }

// DeleteInterface removes an interface block (`no interface ...`).
func (c *Config) DeleteInterface(kind IfKind, name string) error { panic("TODO") }

// SetAccessGroup applies an ACL to an interface in a direction. The ACL must
// exist; an `in` binding refuses an ACL with user/uid entries. It replaces
// any ACL of that family and direction on the interface.
func (c *Config) SetAccessGroup(kind IfKind, ifname string, f Family, d Direction, acl string) error {
	panic("TODO")
}

// ClearAccessGroup removes `ip access-group ACL DIR` from an interface; the
// named ACL must be the one applied.
func (c *Config) ClearAccessGroup(kind IfKind, ifname string, f Family, d Direction, acl string) error {
	panic("TODO")
}

// TimeRange returns the time range, or nil.
func (c *Config) TimeRange(name string) *TimeRange { panic("TODO") }

// EnsureTimeRange returns the time range, creating it if needed.
func (c *Config) EnsureTimeRange(name string) (*TimeRange, error) { panic("TODO") }

// DeleteTimeRange removes a time range; it fails while an entry refers to it.
func (c *Config) DeleteTimeRange(name string) error { panic("TODO") }

// AddPeriodic adds a periodic clause (duplicates are refused).
func (c *Config) AddPeriodic(name string, p Periodic) error { panic("TODO") }

// DeletePeriodic removes a periodic clause.
func (c *Config) DeletePeriodic(name string, p Periodic) error { panic("TODO") }

// SetAbsolute sets (or with nil clears) the absolute clause; end must not be
// before start.
func (c *Config) SetAbsolute(name string, a *Absolute) error { panic("TODO") }

// Validate checks a whole configuration (as loaded from a file or received by
// the agent) and returns every error found, joined, each an *Error with its
// Path; nil when valid.
func Validate(c *Config) error { panic("TODO") }

// Format renders c as the canonical running-config: hostname, global
// settings, time ranges, IPv4 then IPv6 ACLs by name, interfaces; sub-mode
// lines indented by one space, blocks separated by "!" lines. Feeding it back
// through the shell yields an equal Config.
func Format(c *Config) string { panic("TODO") }

// FormatEntry renders one entry as it appears in the running-config, without
// indentation: "seq 10 permit tcp host 10.24.12.107 host 10.24.12.129 eq 22 connlimit 3".
func FormatEntry(f Family, e *Entry) string { panic("TODO") }
