package conntrack

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/nft"
	"github.com/slxsh/slxsh/internal/sockdiag"
)

// Owner is the table side the Tracker needs: the reservation elements of
// the limit sets, read and written by the one owner of our table
// (nft.Applier; nft.Fake in unit tests).
type Owner interface {
	Gated(sets []*nft.Set) ([]*nft.Set, error)
	Reservations(sets []*nft.Set) ([]nft.Reservation, error)
	WriteReservations(sets []*nft.Set, want []nft.Reservation, open []*nft.Set) error
	LimitKeys(s *nft.Set) ([]string, error)
}

// TrackerOptions configure a Tracker.
type TrackerOptions struct {
	Owner  Owner // the agent's table
	NetNS  int   // namespace fd; 0 is the caller's
	IfName func(*acl.Interface) string
	// Locator places flows on interfaces: a RouteLocator in NetNS for the
	// agent; nil makes every flow a candidate for every binding (see the
	// package doc), which under `existing-sessions reset` would also end
	// sessions on interfaces without the ACL.
	Locator Locator
	Logger  *slog.Logger
	// Now and Zone are the clock and local time zone of time ranges
	// (defaults: time.Now, time.Local), as the agent compiles them.
	Now  func() time.Time
	Zone *time.Location
}

// Tracker is the agent's session side (issue 5): it counts sessions that
// were open before a limit existed, ends sessions a new configuration does
// not admit under `connlimit existing-sessions reset`, and answers `show`
// and `clear access-list sessions`. Its methods match agent.SessionTracker;
// Run goes in its own goroutine.
type Tracker struct {
	opts TrackerOptions
	ct   *Kernel
	sd   *sockdiag.Conn
	idx  *Index // what the views read (Sessions, Totals)
	// active gives the lists as the kernel applies them now (time
	// ranges); every attribution reads bindings through it.
	active activeLists
	// view is what the views need of the limit sets (depths, gates),
	// published by every change of them, so that a show never waits for
	// mu (held through a count or a refresh).
	view atomic.Pointer[limitView]

	mu      sync.Mutex
	cfg     *acl.Config
	sets    []LimitSet    // limit sets with reservation sets, as installed
	pending []LimitSet    // gated sets whose sessions are not counted yet
	held    []Reservation // what the kernel holds; read from it by the first Refresh
	loaded  bool
	// installing is set from Prepare to Installed: the kernel may hold a
	// ruleset that sets and cfg do not describe yet.
	installing bool
	// renew lists limit sets that adopted sessions fall under (Renewals).
	renew []string
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
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Zone == nil {
		o.Zone = time.Local
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
	idx, err := NewIndex(o.NetNS, o.Locator)
	if err != nil {
		o.Logger.Warn("session views dump conntrack at every read", "err", err)
	}
	t := &Tracker{opts: o, ct: k, sd: sd, idx: idx}
	t.view.Store(&limitView{})
	return t, nil
}

// Close releases the netlink sockets.
func (t *Tracker) Close() error {
	return errors.Join(t.ct.Close(), t.sd.Close(), t.idx.Close())
}

// LimitSets returns the connlimit sets of rs that have reservation sets,
// in rs order.
func LimitSets(rs *nft.Ruleset) []LimitSet {
	var out []LimitSet
	for _, s := range nft.LimitSets(rs) {
		ls := LimitSet{
			Name:      s.Name,
			Entry:     EntryID{ACL: s.Entry.ACL, Family: s.Entry.Family, Dir: s.Entry.Dir, Seq: s.Entry.Seq},
			Key:       s.KeyKind,
			PrefixLen: s.PrefixLen,
			Over:      s.Over,
			Set:       s,
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

// kernelSets are the compiler's sets of limit sets.
func kernelSets(ls []LimitSet) []*nft.Set {
	out := make([]*nft.Set, len(ls))
	for i, s := range ls {
		out[i] = s.Set
	}
	return out
}

// Installed runs after cfg has been installed as rs. It ends the sessions
// cfg does not admit when cfg says `connlimit existing-sessions reset`, then
// holds the open sessions of every limit set whose gate is closed (Apply
// creates new and renewed limit sets so) in reservations and opens those
// gates. If counting fails, those sets stay gated (refusing) and Refresh
// tries again.
func (t *Tracker) Installed(cfg *acl.Config, rs *nft.Ruleset) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	defer t.publishLocked()
	t.installing = false
	t.cfg, t.sets = cfg, LimitSets(rs)
	t.active.keep(cfg)
	gated, err := t.opts.Owner.Gated(kernelSets(t.sets))
	if err != nil {
		t.loaded = false
		return err
	}
	t.pending = nil
	for _, s := range t.sets {
		if slices.Contains(gated, s.Set) {
			t.pending = append(t.pending, s)
		}
	}
	if !t.loaded {
		// After a start: the kernel's reservations are the truth; from
		// here on the tracker knows what it wrote.
		held, err := t.opts.Owner.Reservations(kernelSets(t.sets))
		if err != nil {
			return err
		}
		slices.SortFunc(held, compareRes)
		t.held, t.loaded = held, true
	}
	t.held = keepLive(t.held, t.sets, t.pending)
	return t.countLocked(cfg.ExistingSessions == acl.Reset)
}

// countLocked ends the excess sessions (with reset), then counts the open
// sessions of the pending sets into reservations and opens their gates.
// A gate closed since its set's creation means the kernel counted none of
// the entry's sessions: every one open now is old.
func (t *Tracker) countLocked(reset bool) error {
	if !reset {
		return t.countStreamedLocked()
	}
	flows, err := t.ct.Dump()
	if err != nil {
		return err
	}
	t.resetLocator()
	var errs []error
	if reset {
		// What the new configuration does not admit both with time
		// ranges unseen (Bindings) and as the kernel enforces it now
		// (t.bindings): a session is never ended because a range is
		// inactive now (an unrelated change after office hours must not
		// end the sessions an office-hours permit admitted), nor by a
		// limit whose range is inactive now (the kernel does not enforce
		// it: a ranged limit added before its range starts ends nothing;
		// when the range switches, its count is taken as under keep).
		ex := attributeOwned(Bindings(t.cfg, t.opts.IfName), slices.Clone(flows), t.opts.Locator).Excess()
		now := attributeOwned(t.bindings(t.cfg), slices.Clone(flows), t.opts.Locator).Excess()
		ex = without(ex, without(ex, now))
		res, err := End(t.ct, t.sd, ex)
		errs = append(errs, err)
		t.opts.Logger.Info("existing sessions reset", "destroyed", res.Destroyed, "marked", res.Marked)
		flows = without(flows, ex)
	}
	a := attributeOwned(t.bindings(t.cfg), flows, t.opts.Locator)
	if len(t.pending) == 0 {
		return errors.Join(errs...)
	}
	// From here on the dump and its attribution are garbage: the marks'
	// events fill the session index while they are being written.
	plan, marks := Plan(t.pending, a), oldMarksOf(t.pending, a)
	return errors.Join(append(errs, t.holdLocked(plan, marks))...)
}

// countStreamedLocked is countLocked without reset: the same count from
// one streamed dump that keeps no flows (countOld).
func (t *Tracker) countStreamedLocked() error {
	if len(t.pending) == 0 {
		return nil
	}
	t.resetLocator()
	dump := func(fn func(Flow)) error { return dumpEach(t.ct.netnsFd, 0, 0, fn) }
	plan, marks, err := countOld(dump, t.bindings(t.cfg), t.opts.Locator, t.pending)
	if err != nil {
		return err
	}
	return t.holdLocked(plan, marks)
}

// holdLocked marks the pending sets' sessions old and writes their
// reservations (plan) with the opening of their gates.
func (t *Tracker) holdLocked(plan []Reservation, marks *oldMarks) error {
	errMark := marks.mark(t.ct, t.idx.Drain)
	ks := kernelSets(t.pending)
	if err := t.opts.Owner.WriteReservations(ks, plan, ks); err != nil {
		return errors.Join(errMark, err)
	}
	t.held = append(keepLive(t.held, t.sets, t.pending), plan...)
	slices.SortFunc(t.held, compareRes)
	t.pending = nil
	return errMark
}

// keepLive keeps the reservations of sets that are still installed and
// are not being recounted.
func keepLive(held []Reservation, sets, recount []LimitSet) []Reservation {
	live := map[string]bool{}
	for _, s := range sets {
		live[s.Name] = true
	}
	for _, s := range recount {
		live[s.Name] = false
	}
	var out []Reservation
	for _, r := range held {
		if live[r.Set] {
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

// ErrInstalling is Verify's answer while a ruleset is being installed:
// ask again after it.
var ErrInstalling = errors.New("a ruleset is being installed")

// Prepare is called before a ruleset is installed: until Installed, the
// refresh loop leaves the gates alone (the ruleset it knows may not be
// the kernel's any more).
func (t *Tracker) Prepare(*nft.Ruleset) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.installing = true
	return nil
}

// Refresh gives budget back as old sessions end: it lowers the depth of
// the keys whose open OldMark sessions need less, as the session index
// counts them (Index.Old: a dump in place while the index holds flows
// under a limit that send no events). After a start or a failed write it first reads
// what the kernel holds, and counts sets whose gate an earlier agent left
// closed.
func (t *Tracker) Refresh() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cfg == nil || t.installing {
		return nil
	}
	if !t.loaded || len(t.pending) > 0 {
		// Why publish only here and after a write: the views' copy of
		// the depths is rebuilt from every reservation (25k keys at 100k
		// flows), too much to redo every second for nothing.
		defer t.publishLocked()
	}
	if !t.loaded {
		ks := kernelSets(t.sets)
		held, err := t.opts.Owner.Reservations(ks)
		if err != nil {
			return err
		}
		gated, err := t.opts.Owner.Gated(ks)
		if err != nil {
			return err
		}
		slices.SortFunc(held, compareRes)
		t.held, t.loaded = held, true
		for _, s := range t.sets {
			if slices.Contains(gated, s.Set) && !slices.ContainsFunc(t.pending, func(p LimitSet) bool { return p.Name == s.Name }) {
				t.pending = append(t.pending, s)
			}
		}
	}
	if len(t.pending) > 0 {
		if err := t.countLocked(false); err != nil {
			t.loaded = false
			return err
		}
	}
	if err := t.adoptLocked(); err != nil {
		return err
	}
	if len(t.held) == 0 {
		return nil
	}
	next, changed, err := t.shrunkLocked()
	if err != nil || !changed {
		return err
	}
	defer t.publishLocked()
	if err := t.opts.Owner.WriteReservations(kernelSets(t.heldSets()), next, nil); err != nil {
		t.loaded = false // read the kernel's truth next time
		return err
	}
	t.held = next
	return nil
}

// shrunkLocked is Shrink(t.held, Plan(t.sets, old sessions now)) with the
// old sessions per key from the index, in one pass over the held
// reservations (sorted, so the result is too); changed is false when
// every depth stays, and then nothing is allocated.
func (t *Tracker) shrunkLocked() (next []Reservation, changed bool, err error) {
	sets := make(map[string]LimitSet, len(t.sets))
	for _, s := range t.sets {
		sets[s.Name] = s
	}
	err = t.idx.Old(t.bindings(t.cfg), func(old func(KeyID) int) {
		for i, r := range t.held {
			d := 0
			if s, ok := sets[r.Set]; ok {
				d = min(r.Depth, nft.Depth(s.Over, old(KeyID{LimitID: s.Limit(), Key: r.Key})))
			}
			if d != r.Depth && !changed {
				changed = true
				next = slices.Clone(t.held[:i])
			}
			if changed && d > 0 {
				next = append(next, Reservation{Set: r.Set, Key: r.Key, Depth: d})
			}
		}
	})
	return next, changed, err
}

// adoptLocked finds the sessions picked up mid-stream (AdoptMark, filtered
// in the kernel): the limit sets they fall under are to be renewed (see
// Renewals); the mark is taken off the others. A ghost (no reply yet)
// counts nowhere: it gets GhostMark instead, so that a flood of forged
// segments is read once, not at every refresh, and the kernel gives it
// AdoptMark back if a reply shows it is a session.
func (t *Tracker) adoptLocked() error {
	adopted, err := t.ct.DumpMarked(AdoptMark)
	if err != nil || len(adopted) == 0 {
		return err
	}
	var errs []error
	adopted = slices.DeleteFunc(adopted, func(f Flow) bool {
		if f.Ghost() {
			errs = append(errs, t.ct.SetMark(f, f.Mark&^AdoptMark|GhostMark))
			return true
		}
		return false
	})
	if len(adopted) == 0 {
		return errors.Join(errs...)
	}
	t.resetLocator()
	a := Attribute(t.bindings(t.cfg), adopted, t.opts.Locator)
	under := map[int]bool{}
	for _, s := range t.sets {
		for k, idx := range a.Keys {
			if k.LimitID == s.Limit() {
				for _, i := range idx {
					under[i] = true
				}
				t.renewLocked(s.Name, "sessions picked up mid-stream")
			}
		}
	}
	for i, f := range a.Flows {
		if !under[i] {
			errs = append(errs, t.ct.SetMark(f, f.Mark&^AdoptMark))
		}
	}
	return errors.Join(errs...)
}

// checkLocked compares the gates and reservations in the kernel with what
// the tracker wrote (someone may have closed a gate or added or deleted a
// reservation element): a limit whose objects differ is to be renewed,
// which counts it again from scratch.
func (t *Tracker) checkLocked() error {
	gated, err := t.opts.Owner.Gated(kernelSets(t.sets))
	if err != nil {
		return err
	}
	for _, s := range t.sets {
		if slices.Contains(gated, s.Set) && !slices.ContainsFunc(t.pending, func(p LimitSet) bool { return p.Name == s.Name }) {
			t.renewLocked(s.Name, "gate closed by someone else")
		}
	}
	have, err := t.opts.Owner.Reservations(kernelSets(t.sets))
	if err != nil {
		return err
	}
	slices.SortFunc(have, compareRes)
	if slices.Equal(have, t.held) {
		return nil
	}
	differ := map[string]bool{}
	for _, list := range [][]Reservation{have, t.held} {
		for _, r := range list {
			if !slices.Contains(have, r) || !slices.Contains(t.held, r) {
				differ[r.Set] = true
			}
		}
	}
	for _, s := range t.sets {
		if differ[s.Name] {
			t.renewLocked(s.Name, "reservations changed by someone else")
		}
	}
	return nil
}

// Verify checks the gates and reservations in the kernel against what the
// tracker wrote (checkLocked), and, from one conntrack dump, that every key
// with sessions the kernel counts (open, not held as old) is in its limit
// set: a limit set flushed by someone else has lost them. What drifted is
// to be renewed (Renewals). The agent calls it after a commit of someone
// else (the rules may be intact while set elements are not).
func (t *Tracker) Verify() error {
	t.mu.Lock()
	cfg, sets, installing := t.cfg, slices.Clone(t.sets), t.installing
	var err error
	if cfg != nil && !installing && t.loaded {
		err = t.checkLocked()
	}
	t.mu.Unlock()
	if installing {
		// The kernel's sets are being renewed (empty, gated): they would
		// all look as if they had lost their sessions.
		return ErrInstalling
	}
	if err != nil || cfg == nil || len(sets) == 0 {
		return err
	}
	a, err := t.attribute(cfg)
	if err != nil {
		return err
	}
	counted := map[LimitID]map[string]bool{}
	for _, c := range a.Counts() {
		if c.Sessions > c.Old {
			id := c.limit()
			if counted[id] == nil {
				counted[id] = map[string]bool{}
			}
			counted[id][c.Key] = true
		}
	}
	for _, s := range sets {
		if len(counted[s.Limit()]) == 0 {
			continue
		}
		keys, err := t.opts.Owner.LimitKeys(s.Set)
		if err != nil {
			return err
		}
		for k := range counted[s.Limit()] {
			if !slices.Contains(keys, k) {
				t.mu.Lock()
				t.renewLocked(s.Name, "limit set lost counted sessions")
				t.mu.Unlock()
				break
			}
		}
	}
	return nil
}

func (t *Tracker) renewLocked(set, why string) {
	if !slices.Contains(t.renew, set) {
		t.opts.Logger.Warn("limit drifted, counting it again", "set", set, "why", why)
		t.renew = append(t.renew, set)
	}
}

// Renewals returns (and forgets) the limit sets to start afresh: those
// that sessions picked up mid-stream fall under, and those whose kernel
// objects drifted (checkLocked, Verify). The agent renews them, and
// Installed then counts their sessions as old.
func (t *Tracker) Renewals() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.renew
	t.renew = nil
	return out
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

// Run calls Refresh every interval until ctx ends, logging failures, and
// keeps the session index: events as they come (Index.Follow), and at each
// interval a dump if it lost track, or attribution again if the bindings
// or routes changed, so that the views seldom have to.
func (t *Tracker) Run(ctx context.Context, every time.Duration) {
	go t.idx.Follow(ctx)
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
			if t.idx.ev == nil {
				continue // without events every read dumps anyway
			}
			if cfg := t.config(); cfg != nil {
				if err := t.idx.Update(t.bindings(cfg)); err != nil {
					t.opts.Logger.Warn("session index update failed", "err", err)
				}
			}
		}
	}
}

// bindings are cfg's bindings with each list as the kernel applies it
// now: without the entries whose time range is inactive (active.go).
func (t *Tracker) bindings(cfg *acl.Config) []Binding {
	bs := Bindings(cfg, t.opts.IfName)
	now := t.opts.Now()
	for i := range bs {
		bs[i].ACL, bs[i].AtNow = t.active.at(cfg, bs[i].ACL, now, t.opts.Zone), true
	}
	return bs
}

// config is the configuration last installed (nil before the first).
func (t *Tracker) config() *acl.Config {
	return t.view.Load().cfg
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
	return attributeOwned(t.bindings(cfg), flows, t.opts.Locator), nil
}

// resetLocator makes each attribution see the routes of its moment: a
// locator that knows when routes change (RouteLocator.Epoch) keeps its
// cache until they do; another forgets it.
func (t *Tracker) resetLocator() {
	switch l := t.opts.Locator.(type) {
	case interface{ Epoch() uint64 }:
		l.Epoch()
	case interface{ Reset() }:
		l.Reset()
	}
}

// limitView is what the views need of the installed limit sets, as of
// the last change of them.
type limitView struct {
	cfg     *acl.Config
	depth   map[[2]string]int // set, key -> depth held
	byLimit map[LimitID]LimitSet
	gated   map[string]bool // sets still being counted
	pending []EntryID       // their entries
}

// publishLocked publishes the limit sets as they are now for the views.
func (t *Tracker) publishLocked() {
	v := &limitView{cfg: t.cfg, depth: map[[2]string]int{}, byLimit: map[LimitID]LimitSet{}, gated: map[string]bool{}}
	for _, r := range t.held {
		v.depth[[2]string{r.Set, r.Key}] = r.Depth
	}
	for _, s := range t.sets {
		v.byLimit[s.Limit()] = s
	}
	for _, s := range t.pending {
		v.gated[s.Name] = true
		v.pending = append(v.pending, s.Entry)
	}
	t.view.Store(v)
}

// atLimit is whether the kernel refuses the next connection of key c: a
// key held at a depth is at its limit when its new sessions fill what
// the depth leaves; a key of a set still gated is at its limit; else as
// attributed (N open for a permit, N-1 for a limited deny).
func (v *limitView) atLimit(c KeyCount) bool {
	s, ok := v.byLimit[c.limit()]
	if !ok {
		return c.AtLimit
	}
	if v.gated[s.Name] {
		return true
	}
	if d := v.depth[[2]string{s.Name, c.Key}]; d > 0 {
		return c.Sessions-c.Old >= s.Over-d
	}
	return c.AtLimit
}

// Sessions answers `show access-list sessions ip NAME [seq N]`: the
// counts per key of one ACL (and entry, unless seq is 0), sorted, from the
// session index (no dump, and not under the tracker's lock).
func (t *Tracker) Sessions(cfg *acl.Config, f acl.Family, name string, seq int) ([]KeyCount, error) {
	kcs, err := t.idx.Counts(t.bindings(cfg), func(k KeyID) bool {
		return k.Family == f && k.ACL == name && (seq == 0 || k.Seq == seq)
	})
	if err != nil {
		return nil, err
	}
	v := t.view.Load()
	for i := range kcs {
		kcs[i].AtLimit = v.atLimit(kcs[i])
	}
	sortCounts(kcs)
	if kcs == nil {
		kcs = []KeyCount{}
	}
	return kcs, nil
}

// EntryTotal sums the keys of one limited entry in one direction.
type EntryTotal struct {
	EntryID
	Sessions int // open sessions, each once: summed over the keys of one of its limits (each limit counts them all)
	AtLimit  int // keys at the limit
}

// Totals returns the sessions and keys at the limit of every limited entry
// with sessions under cfg, in one pass over the session index (the
// metrics, and the at-limit column of `show access-list ip`).
func (t *Tracker) Totals(cfg *acl.Config) ([]EntryTotal, error) {
	v := t.view.Load()
	at := map[EntryID]int{}
	var out []EntryTotal
	var counted []LimitID // the limit whose keys count each entry's sessions, by out's index
	err := t.idx.Each(t.bindings(cfg), func(KeyID) bool { return true }, func(c KeyCount) {
		lim := c.limit()
		i, ok := at[lim.EntryID]
		if !ok {
			i = len(out)
			at[lim.EntryID] = i
			out = append(out, EntryTotal{EntryID: lim.EntryID})
			counted = append(counted, lim)
		}
		if counted[i] == lim { // an entry with several limits: its sessions once
			out[i].Sessions += c.Sessions
		}
		if v.atLimit(c) {
			out[i].AtLimit++
		}
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b EntryTotal) int {
		return cmp.Or(cmp.Compare(a.Family, b.Family), cmp.Compare(a.ACL, b.ACL), cmp.Compare(a.Dir, b.Dir), cmp.Compare(a.Seq, b.Seq))
	})
	return out, nil
}

// Gated returns the limited entries whose limit sets are still gated
// (being counted): the kernel refuses every connection of those entries,
// whatever its key. Sessions marks only keys that have sessions;
// packet-tracer asks this for the others.
func (t *Tracker) Gated() []EntryID {
	return slices.Clone(t.view.Load().pending)
}

// ClearSessions answers `clear access-list sessions ip NAME [seq N] [source
// ADDR]` and block-for flushes: the sessions the ACL admits (under entry seq
// unless 0, from the sources srcs unless none) are reset, from one dump
// however many sources.
func (t *Tracker) ClearSessions(cfg *acl.Config, f acl.Family, name string, seq int, srcs ...netip.Addr) error {
	a, err := t.attribute(cfg)
	if err != nil {
		return err
	}
	res, err := End(t.ct, t.sd, a.Select(name, f, seq, srcs...))
	t.opts.Logger.Info("sessions cleared", "acl", name, "seq", seq, "sources", len(srcs), "destroyed", res.Destroyed, "marked", res.Marked)
	return err
}
