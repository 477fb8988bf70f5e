package conntrack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/conntrack/layers"
	"github.com/slxsh/slxsh/internal/nft"
	"github.com/slxsh/slxsh/internal/sockdiag"
)

// TrackerOptions configure a Tracker.
type TrackerOptions struct {
	Table  string // the agent's nftables table (family inet)
	NetNS  int    // namespace fd; 0 is the caller's
	IfName func(*acl.Interface) string
	// Locator places flows on interfaces: a RouteLocator in NetNS for the
	// agent; nil makes every flow a candidate for every binding (see the
	// package doc), which under `existing-sessions reset` would also end
	// sessions on interfaces without the ACL.
	Locator Locator
	Logger  *slog.Logger
}

// Tracker is the agent's session side (issue 5): it counts sessions that
// were open before a limit existed, ends sessions a new configuration does
// not admit under `connlimit existing-sessions reset`, and answers `show`
// and `clear access-list sessions`. Its methods match agent.SessionTracker;
// Prepare is to be called before installing a ruleset, Run in its own
// goroutine.
type Tracker struct {
	opts TrackerOptions
	ct   *Kernel
	sd   *sockdiag.Conn
	res  *Reserver

	mu       sync.Mutex
	cfg      *acl.Config
	sets     []LimitSet      // limit sets with reservation sets, as installed
	known    map[string]bool // limit sets installed so far (all of them)
	fresh    []LimitSet      // from Prepare: limit sets the kernel did not have
	prepared bool
	pending  []LimitSet    // gated sets whose sessions are not counted yet
	held     []Reservation // what the kernel holds; read from it by the first Refresh
	loaded   bool
}

// NewTracker opens conntrack and sock_diag in the namespace and turns on
// conntrack timestamps there (EnableTimestamps).
func NewTracker(o TrackerOptions) (*Tracker, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.IfName == nil {
		o.IfName = func(i *acl.Interface) string { return i.Name }
	}
	if err := EnableTimestamps(o.NetNS); err != nil {
		o.Logger.Warn("sessions to reset are picked by tuple, not age", "err", err)
	}
	k, err := Open(o.NetNS)
	if err != nil {
		return nil, err
	}
	sd, err := sockdiag.Dial(o.NetNS)
	if err != nil {
		k.Close()
		return nil, err
	}
	return &Tracker{opts: o, ct: k, sd: sd, res: NewReserver(o.Table, o.NetNS)}, nil
}

// Close releases the netlink sockets.
func (t *Tracker) Close() error {
	return errors.Join(t.ct.Close(), t.sd.Close())
}

// LimitSets returns the connlimit sets of rs that have reservation sets
// (the gate is the sign), in rs order. Reservation sets themselves are left
// out.
func LimitSets(rs *nft.Ruleset) []LimitSet {
	names := map[string]bool{}
	for _, s := range rs.Sets {
		names[s.Name] = true
	}
	var out []LimitSet
	for _, s := range rs.Sets {
		if !names[layers.GateName(s.Name)] {
			continue
		}
		ls := LimitSet{
			Name:      s.Name,
			Entry:     EntryID{ACL: s.Entry.ACL, Family: s.Entry.Family, Dir: s.Entry.Dir, Seq: s.Entry.Seq},
			Key:       s.KeyKind,
			PrefixLen: s.PrefixLen,
			Over:      s.Over,
			Size:      s.Size,
		}
		if ls.Key == acl.PerPrefix {
			// As the compiler keys them: /0 is total, a full length is
			// per-source.
			switch {
			case ls.PrefixLen <= 0:
				ls.Key, ls.PrefixLen = acl.Total, 0
			case ls.PrefixLen >= s.Entry.Family.Bits():
				ls.Key, ls.PrefixLen = acl.PerSource, 0
			}
		}
		out = append(out, ls)
	}
	return out
}

// Prepare closes the gates of the limit sets that rs creates (those the
// kernel does not have yet), before rs is installed: from the install on,
// their entries admit nothing until Installed has counted the open sessions.
func (t *Tracker) Prepare(rs *nft.Ruleset) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	have, err := t.kernelSets()
	if err != nil {
		return err
	}
	t.fresh = t.fresh[:0]
	for _, s := range LimitSets(rs) {
		if !have[s.Name] {
			t.fresh = append(t.fresh, s)
		}
	}
	t.prepared = true
	return t.res.Gate(t.fresh)
}

// kernelSets lists the set names of the table (none when it does not exist).
func (t *Tracker) kernelSets() (map[string]bool, error) {
	c, err := nftables.New(nftables.WithNetNSFd(t.opts.NetNS))
	if err != nil {
		return nil, fmt.Errorf("open nftables: %w", err)
	}
	sets, err := c.GetSets(&nftables.Table{Name: t.opts.Table, Family: nftables.TableFamilyINet})
	if err != nil {
		if isNotExist(err) {
			return map[string]bool{}, nil
		}
		return nil, fmt.Errorf("list sets: %w", err)
	}
	out := map[string]bool{}
	for _, s := range sets {
		out[s.Name] = true
	}
	return out, nil
}

// Installed runs after cfg has been installed as rs. It ends the sessions
// cfg does not admit when cfg says `connlimit existing-sessions reset`, then
// holds the open sessions of every new limit set in reservations and opens
// their gates. Without a Prepare before the install, the limit sets it has
// not seen installed count as new (all of them after a start: conservative)
// and are gated only now. If counting fails, the new sets stay gated
// (refusing) and Refresh tries again.
func (t *Tracker) Installed(cfg *acl.Config, rs *nft.Ruleset) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	sets := LimitSets(rs)
	fresh := t.fresh
	if !t.prepared {
		fresh = nil
		for _, s := range sets {
			if !t.known[s.Name] {
				fresh = append(fresh, s)
			}
		}
		if err := t.res.Gate(fresh); err != nil {
			return err
		}
	}
	t.prepared, t.fresh = false, nil
	t.cfg, t.sets = cfg, sets
	t.known = map[string]bool{}
	for _, s := range rs.Sets {
		t.known[s.Name] = true
	}
	t.pending = mergeSets(onlyLive(t.pending, sets), fresh)
	return t.countLocked(cfg.ExistingSessions == acl.Reset)
}

// countLocked ends the excess sessions (with reset), then counts the open
// sessions of the pending sets into reservations and opens their gates.
func (t *Tracker) countLocked(reset bool) error {
	flows, err := t.ct.Dump()
	if err != nil {
		return err
	}
	t.resetLocator()
	bs := Bindings(t.cfg, t.opts.IfName)
	a := Attribute(bs, flows, t.opts.Locator)
	var errs []error
	if reset {
		ex := a.Excess()
		res, err := End(t.ct, t.sd, ex)
		errs = append(errs, err)
		t.opts.Logger.Info("existing sessions reset", "destroyed", res.Destroyed, "marked", res.Marked)
		a = Attribute(bs, without(flows, ex), t.opts.Locator)
	}
	if len(t.pending) == 0 {
		return errors.Join(errs...)
	}
	plan := Plan(t.pending, a)
	errs = append(errs, MarkOld(t.ct, OldFlows(t.pending, a)))
	if err := t.res.Write(t.pending, plan); err != nil {
		return errors.Join(append(errs, err)...)
	}
	t.held = append(keepOthers(t.held, t.pending, t.sets), plan...)
	slices.SortFunc(t.held, compareRes)
	t.pending = nil
	return errors.Join(errs...)
}

// onlyLive keeps the sets that are installed.
func onlyLive(ss, live []LimitSet) []LimitSet {
	var out []LimitSet
	for _, s := range ss {
		if slices.ContainsFunc(live, func(l LimitSet) bool { return l.Name == s.Name }) {
			out = append(out, s)
		}
	}
	return out
}

// mergeSets returns a with the sets of b it lacks.
func mergeSets(a, b []LimitSet) []LimitSet {
	for _, s := range b {
		if !slices.ContainsFunc(a, func(x LimitSet) bool { return x.Name == s.Name }) {
			a = append(a, s)
		}
	}
	return a
}

// keepOthers keeps the reservations of sets that are still installed and
// were not recounted.
func keepOthers(held []Reservation, fresh, sets []LimitSet) []Reservation {
	drop := map[string]bool{}
	for _, s := range fresh {
		drop[s.Name] = true
	}
	live := map[string]bool{}
	for _, s := range sets {
		live[s.Name] = true
	}
	var out []Reservation
	for _, r := range held {
		if live[r.Set] && !drop[r.Set] {
			out = append(out, r)
		}
	}
	return out
}

func without(flows, drop []Flow) []Flow {
	type tuple struct {
		p      uint8
		s, d   netip.Addr
		sp, dp uint16
	}
	gone := map[tuple]bool{}
	for _, f := range drop {
		gone[tuple{f.Proto, f.Src, f.Dst, f.SrcPort, f.DstPort}] = true
	}
	var out []Flow
	for _, f := range flows {
		if !gone[tuple{f.Proto, f.Src, f.Dst, f.SrcPort, f.DstPort}] {
			out = append(out, f)
		}
	}
	return out
}

// Refresh gives budget back as old sessions end: it recounts the open
// sessions carrying OldMark (filtered in the kernel, so cheap) and lowers
// the depth of the keys that need less.
func (t *Tracker) Refresh() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cfg == nil {
		return nil
	}
	// Between Prepare and Installed (or after an install that failed)
	// nothing is loaded or counted: that could open a gate before its
	// rules are installed. Shrinking held reservations stays safe.
	if t.prepared && (!t.loaded || len(t.pending) > 0) {
		return nil
	}
	if !t.loaded {
		// After a start (or a failed write): the kernel's reservations,
		// and any gate left closed by an agent that died between
		// Prepare and Installed, are the truth.
		held, err := t.res.Read(t.sets)
		if err != nil {
			return err
		}
		gated, err := t.res.Gated(t.sets)
		if err != nil {
			return err
		}
		t.held, t.loaded = held, true
		t.pending = mergeSets(t.pending, gated)
	}
	if len(t.pending) > 0 {
		if err := t.countLocked(false); err != nil {
			return err
		}
	}
	if len(t.held) == 0 {
		return nil
	}
	marked, err := t.ct.DumpMarked(OldMark)
	if err != nil {
		return err
	}
	t.resetLocator()
	a := Attribute(Bindings(t.cfg, t.opts.IfName), marked, t.opts.Locator)
	next := Shrink(t.held, Plan(t.sets, a))
	if slices.Equal(next, t.held) {
		return nil
	}
	if err := t.res.Write(t.heldSets(), next); err != nil {
		t.loaded = false // read the kernel's truth next time
		return err
	}
	t.held = next
	return nil
}

// heldSets returns the installed limit sets that hold reservations.
func (t *Tracker) heldSets() []LimitSet {
	has := map[string]bool{}
	for _, r := range t.held {
		has[r.Set] = true
	}
	var out []LimitSet
	for _, s := range t.sets {
		if has[s.Name] {
			out = append(out, s)
		}
	}
	return out
}

// Run calls Refresh every interval until ctx ends, logging failures.
func (t *Tracker) Run(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := t.Refresh(); err != nil {
				t.opts.Logger.Warn("session refresh failed", "err", err)
			}
		}
	}
}

// Held returns the reservations now held (for tests and metrics).
func (t *Tracker) Held() []Reservation {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.held)
}

// attribute dumps the flows and attributes them under cfg.
func (t *Tracker) attribute(cfg *acl.Config) (*Attribution, error) {
	flows, err := t.ct.Dump()
	if err != nil {
		return nil, err
	}
	t.resetLocator()
	return Attribute(Bindings(cfg, t.opts.IfName), flows, t.opts.Locator), nil
}

// resetLocator drops cached routes so that each attribution sees the
// routes of its moment.
func (t *Tracker) resetLocator() {
	if r, ok := t.opts.Locator.(interface{ Reset() }); ok {
		r.Reset()
	}
}

// Sessions answers `show access-list sessions ip NAME [seq N]`.
func (t *Tracker) Sessions(cfg *acl.Config, f acl.Family, name string, seq int) ([]cli.SessionKey, error) {
	a, err := t.attribute(cfg)
	if err != nil {
		return nil, err
	}
	return SessionKeys(a.Counts(), f, name, seq), nil
}

// SessionKeys selects the counts of one ACL (and entry, unless seq is 0) in
// the shell's form.
func SessionKeys(counts []KeyCount, f acl.Family, name string, seq int) []cli.SessionKey {
	out := []cli.SessionKey{}
	for _, c := range counts {
		if c.Family == f && c.ACL == name && (seq == 0 || c.Seq == seq) {
			out = append(out, cli.SessionKey{Seq: c.Seq, Key: c.Key, Sessions: c.Sessions, Limit: c.Limit, AtLimit: c.AtLimit})
		}
	}
	return out
}

// ClearSessions answers `clear access-list sessions ip NAME [seq N] [source
// ADDR]`: the sessions the ACL admits (under entry seq unless 0, from src
// when valid) are reset.
func (t *Tracker) ClearSessions(cfg *acl.Config, f acl.Family, name string, seq int, src netip.Addr) error {
	a, err := t.attribute(cfg)
	if err != nil {
		return err
	}
	res, err := End(t.ct, t.sd, a.Select(name, f, seq, src))
	t.opts.Logger.Info("sessions cleared", "acl", name, "seq", seq, "destroyed", res.Destroyed, "marked", res.Marked)
	return err
}

// ClearBlocked is not the session side's: block-for lockouts live in the
// ruleset's sets.
func (t *Tracker) ClearBlocked(cfg *acl.Config, f acl.Family, name string, src netip.Addr) error {
	return errors.New("% Error: block-for lockouts are not supported yet")
}
