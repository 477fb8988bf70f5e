package agent

import (
	"fmt"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/conntrack"
	"github.com/slxsh/slxsh/internal/nft"
)

// EntryCount is one entry's counters in one direction, as the kernel has
// them (monotonic: what Prometheus gets).
type EntryCount struct {
	Family    acl.Family
	ACL       string
	Seq       int
	Direction acl.Direction
	Matches   uint64 // connections that matched the entry
	Refused   uint64 // connections the entry refused
}

// directions returns in which directions an ACL is applied anywhere. Only
// applied ACLs have rules, and so counters.
func directions(c *acl.Config, f acl.Family, name string) [2]bool {
	var dirs [2]bool
	for _, ifc := range c.Interfaces {
		for d := range 2 {
			if ifc.Groups[f][d] == name {
				dirs[d] = true
			}
		}
	}
	return dirs
}

// Counts returns the kernel's counters of every entry of every applied ACL
// in every direction it is applied.
// They are read without the agent's lock, for the config of the moment.
func (a *Agent) Counts() ([]EntryCount, error) {
	cfg := a.current()
	raw, err := a.opts.Kernel.Counters()
	if err != nil {
		return nil, fmt.Errorf("read counters: %w", err)
	}
	var out []EntryCount
	for _, l := range cfg.ACLs {
		dirs := directions(cfg, l.Family, l.Name)
		for d := range 2 {
			if !dirs[d] {
				continue
			}
			for _, e := range l.Entries {
				if e.Action == acl.Remark {
					continue
				}
				m, r := nft.CounterNames(l.Family, l.Name, acl.Direction(d), e.Seq)
				out = append(out, EntryCount{
					Family: l.Family, ACL: l.Name, Seq: e.Seq, Direction: acl.Direction(d),
					Matches: raw[m].Packets, Refused: raw[r].Packets,
				})
			}
		}
	}
	return out, nil
}

// Counters implements `show access-list`: per entry in seq order, its
// matches and refusals summed over the directions the ACL is applied in
// (only dir when it is "in" or "out"),
// less what they were at the last `clear access-list counters`; and, when
// sessions are available, how many keys are at the entry's limit now (in
// those directions), from the tracker's session index. The counters are
// the kernel's named counter objects, read without the agent's lock (the
// baselines as published before the read: a clear that comes after it
// shows in the next one).
func (a *Agent) Counters(f acl.Family, name, dir string) ([]cli.EntryCounters, error) {
	cfg := a.current()
	base := a.baselines()
	l := cfg.ACL(f, name)
	if l == nil {
		return nil, errorf("%% Error: access-list %q does not exist", name)
	}
	dirs := directions(cfg, f, name)
	for d := range 2 {
		if dir != "" && acl.Direction(d).String() != dir {
			dirs[d] = false
		}
	}
	atLimit := a.atLimit(cfg, f, name, dirs)
	raw, err := a.opts.Kernel.Counters()
	if err != nil {
		return nil, errorf("%% Error: cannot read counters: %v", err)
	}
	since := func(name string) uint64 { return sinceClear(name, raw, base) }
	var out []cli.EntryCounters
	for _, e := range l.Entries {
		if e.Action == acl.Remark {
			continue
		}
		c := cli.EntryCounters{Seq: e.Seq, AtLimit: atLimit[e.Seq]}
		for d := range 2 {
			if dirs[d] {
				m, r := nft.CounterNames(f, name, acl.Direction(d), e.Seq)
				c.Matches += since(m)
				c.Refused += since(r)
				for _, why := range nft.EntryReasons(e) {
					if c.Reasons == nil {
						c.Reasons = map[string]uint64{}
					}
					ref := nft.EntryRef{Family: f, ACL: name, Dir: acl.Direction(d), Seq: e.Seq}
					c.Reasons[why] += since(nft.ReasonCounterName(ref, why))
				}
			}
		}
		out = append(out, c)
	}
	own := cli.EntryCounters{Reasons: map[string]uint64{}}
	for d := range 2 {
		if dirs[d] {
			own.Refused += since(nft.ImplicitDenyCounter(f, name, acl.Direction(d)))
			own.Reasons["blocked"] += since(nft.BlockedCounter(f, name, acl.Direction(d)))
		}
	}
	if dirs[0] || dirs[1] {
		out = append(out, own)
	}
	return out, nil
}

// counterNames are the counters of an ACL in a direction that show and
// clear: each entry's matched and refused, its refusals per reason, and
// the ACL's implicit deny and blocked refusals.
func counterNames(l *acl.ACL, d acl.Direction) []string {
	out := []string{nft.ImplicitDenyCounter(l.Family, l.Name, d), nft.BlockedCounter(l.Family, l.Name, d)}
	for _, e := range l.Entries {
		out = appendEntryCounters(out, l, d, e)
	}
	return out
}

// appendEntryCounters appends the counters of entry e of l in direction
// d: matched, refused, and its refusals per reason.
func appendEntryCounters(out []string, l *acl.ACL, d acl.Direction, e *acl.Entry) []string {
	m, r := nft.CounterNames(l.Family, l.Name, d, e.Seq)
	out = append(out, m, r)
	for _, why := range nft.EntryReasons(e) {
		out = append(out, nft.ReasonCounterName(nft.EntryRef{Family: l.Family, ACL: l.Name, Dir: d, Seq: e.Seq}, why))
	}
	return out
}

// eachReplaced calls fn for each entry of old that next does not hold at
// its seq, with the entry next holds there (nil: none): the entries a
// change removed or replaced. An entry that is the same value, or the same
// entry parsed anew (a reload; acl.SameEntry), is neither. Remarks are
// left out (they count nothing).
func eachReplaced(old, next *acl.ACL, fn func(o, e *acl.Entry)) {
	j := 0
	for _, o := range old.Entries {
		if o.Action == acl.Remark {
			continue
		}
		for j < len(next.Entries) && next.Entries[j].Seq < o.Seq {
			j++
		}
		var e *acl.Entry
		if j < len(next.Entries) && next.Entries[j].Seq == o.Seq {
			e = next.Entries[j]
		}
		if e == o || e != nil && acl.SameEntry(o, e) {
			continue
		}
		fn(o, e)
	}
}

// sinceClear is a counter's value less its baseline. A counter below its
// baseline was recreated (its entry was removed and added again) and
// counts from zero.
func sinceClear(name string, raw map[string]nft.CounterValue, baseline map[string]uint64) uint64 {
	v := raw[name].Packets
	if b, ok := baseline[name]; ok && b <= v {
		return v - b
	}
	return v
}

// atLimit counts, per seq, the keys of cfg's ACL at their limit in the
// directions dirs: connlimit keys from the session tracker (none without
// one, or when sessions cannot be read: show still works) and quota keys
// over their quota from the kernel. A key at both counts once.
func (a *Agent) atLimit(cfg *acl.Config, f acl.Family, name string, dirs [2]bool) map[int]int {
	n := map[int]int{}
	quota := a.quotaAtLimit(f, name, dirs)
	for seq, keys := range quota {
		n[seq] = len(keys)
	}
	if a.opts.Sessions == nil {
		return n
	}
	totals, err := a.opts.Sessions.Totals(cfg)
	if err != nil {
		a.log.Warn("cannot read sessions", "acl", name, "err", err)
		return n
	}
	for _, t := range totals {
		if t.Family != f || t.ACL != name || !dirs[t.Dir] || t.AtLimit == 0 {
			continue
		}
		n[t.Seq] += t.AtLimit
		if len(quota[t.Seq]) == 0 {
			continue
		}
		// Keys over their quota and at a connlimit too: those of this
		// entry and direction (rare, so read only then).
		ks, err := a.opts.Sessions.Sessions(cfg, f, name, t.Seq)
		if err != nil {
			continue
		}
		for _, k := range ks {
			if k.AtLimit && k.Seq == t.Seq && k.Dir == t.Dir && quota[t.Seq][limitedKey{k.Dir, k.Kind, k.PrefixLen, k.Key}] {
				n[t.Seq]--
			}
		}
	}
	return n
}

// limitedKey is one key of one entry's limit, as both connlimits and quota
// windows name it: what it counts by and its spelling.
type limitedKey struct {
	dir       acl.Direction
	kind      acl.KeyKind
	prefixLen int
	key       string
}

// quotaAtLimit returns, per seq, the keys of the ACL's quota windows that
// have used their quota (the entry refuses them until the window ends).
func (a *Agent) quotaAtLimit(f acl.Family, name string, dirs [2]bool) map[int]map[limitedKey]bool {
	rs := a.liveRules.Load()
	if rs == nil {
		return nil
	}
	out := map[int]map[limitedKey]bool{}
	for _, s := range rs.Sets {
		if s.Kind != nft.SetQuota || s.Entry.Family != f || s.Entry.ACL != name || !dirs[s.Entry.Dir] {
			continue
		}
		us, err := a.opts.Kernel.QuotaUsed(s)
		if err != nil {
			a.log.Warn("cannot read quota window", "set", s.Name, "err", err)
			continue
		}
		kind, prefixLen := acl.Connlimit{Key: s.KeyKind, PrefixLen: s.PrefixLen}.LimitKey(f)
		for _, u := range us {
			if u.Used >= u.Quota {
				if out[s.Entry.Seq] == nil {
					out[s.Entry.Seq] = map[limitedKey]bool{}
				}
				out[s.Entry.Seq][limitedKey{s.Entry.Dir, kind, prefixLen, u.Key}] = true
			}
		}
	}
	return out
}

// ClearCounters implements `clear access-list counters [ip NAME]` (name ""
// clears every list). It records baselines instead of resetting the
// kernel's counters: show subtracts them, while Prometheus keeps seeing
// monotonic counters. Baselines are kept next to the state file
// (baselines.go), so a restarted agent shows the same values.
func (a *Agent) ClearCounters(f acl.Family, name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if name != "" {
		if err := a.checkACLLocked(f, name); err != nil {
			return err
		}
	}
	raw, err := a.opts.Kernel.Counters()
	if err != nil {
		return errorf("%% Error: cannot read counters: %v", err)
	}
	for _, l := range a.running.ACLs {
		if name != "" && (l.Family != f || l.Name != name) {
			continue
		}
		for d := range 2 {
			for _, n := range counterNames(l, acl.Direction(d)) {
				a.setBaselineLocked(n, raw[n].Packets)
			}
		}
	}
	a.saveBaselinesLocked()
	return nil
}

// restartReplacedLocked makes the counters of an entry that a change put
// at the seq of another (a replaced entry in one block, a resequence, a
// reload whose startup-config differs there) count from zero: the
// kernel's counters are named by seq and would go on with the other
// entry's counts (SPEC §4: counts are per entry). It sets their baselines
// to the kernel's values, read only when some entry was replaced.
func (a *Agent) restartReplacedLocked(prev, next *acl.Config) {
	if prev == nil {
		return
	}
	var names []string
	for _, l := range next.ACLs {
		if old := prev.ACL(l.Family, l.Name); old != nil {
			eachReplaced(old, l, func(_, e *acl.Entry) {
				if e != nil && e.Action != acl.Remark {
					for d := range 2 {
						names = appendEntryCounters(names, l, acl.Direction(d), e)
					}
				}
			})
		}
	}
	if len(names) == 0 {
		return
	}
	raw, err := a.opts.Kernel.CounterValues(names)
	if err != nil {
		a.log.Warn("cannot read counters: replaced entries go on with the counts of the entries they replaced", "err", err)
		return
	}
	for _, n := range names {
		if v, ok := raw[n]; ok {
			a.setBaselineLocked(n, v.Packets)
		}
	}
	a.saveBaselinesLocked()
}

// pruneBaselinesLocked forgets baselines of entries that no longer exist,
// so that an entry added again later counts from its own zero: of the
// entries a change from prev to the running config removed or replaced
// (a walk that compares pointers, and names only for those), or of every
// entry when there is no prev (a start, whose baselines file may name
// counters the adopted config no longer has).
func (a *Agent) pruneBaselinesLocked(prev *acl.Config) {
	if len(a.baseline) == 0 || prev == a.running {
		return // nothing cleared, or nothing changed: nothing to prune
	}
	n := len(a.baseline)
	if prev == nil || len(prev.ACLs) == 0 {
		keep := map[string]bool{}
		for _, l := range a.running.ACLs {
			for d := range 2 {
				for _, n := range counterNames(l, acl.Direction(d)) {
					keep[n] = true
				}
			}
		}
		for k := range a.baseline {
			if !keep[k] {
				delete(a.baseline, k)
			}
		}
	} else {
		for _, old := range prev.ACLs {
			l := a.running.ACL(old.Family, old.Name)
			was, is := directions(prev, old.Family, old.Name), directions(a.running, old.Family, old.Name)
			for d := range 2 {
				dir := acl.Direction(d)
				if l == nil || was[d] && !is[d] {
					// The list, or its binding in dir, is gone: so are
					// its kernel counters there.
					for _, name := range counterNames(old, dir) {
						delete(a.baseline, name)
					}
					continue
				}
				eachReplaced(old, l, func(o, _ *acl.Entry) {
					for _, name := range appendEntryCounters(nil, old, dir, o) {
						delete(a.baseline, name)
					}
				})
			}
		}
	}
	if len(a.baseline) != n {
		a.saveBaselinesLocked()
	}
}

// EntrySessions sums the open sessions of one limited entry.
type EntrySessions struct {
	Family   acl.Family
	ACL      string
	Seq      int
	Sessions int // over all keys
	AtLimit  int // keys at the limit
}

// SessionStats returns the sessions of every limited entry of every applied
// ACL (summed over its directions); nil without a session tracker or when
// sessions cannot be read (logged).
func (a *Agent) SessionStats() []EntrySessions {
	if a.opts.Sessions == nil {
		return nil
	}
	cfg := a.current() // the index is read without the agent's lock
	totals, err := a.opts.Sessions.Totals(cfg)
	if err != nil {
		a.log.Warn("cannot read sessions", "err", err)
		return nil
	}
	type id struct {
		f    acl.Family
		name string
		seq  int
	}
	sum := map[id]conntrack.EntryTotal{}
	for _, t := range totals {
		k := id{t.Family, t.ACL, t.Seq}
		s := sum[k]
		s.Sessions += t.Sessions
		s.AtLimit += t.AtLimit
		sum[k] = s
	}
	var out []EntrySessions
	for _, l := range cfg.ACLs {
		if dirs := directions(cfg, l.Family, l.Name); !dirs[0] && !dirs[1] {
			continue
		}
		for _, e := range l.Entries {
			if e.Limited() {
				s := sum[id{l.Family, l.Name, e.Seq}]
				out = append(out, EntrySessions{Family: l.Family, ACL: l.Name, Seq: e.Seq, Sessions: s.Sessions, AtLimit: s.AtLimit})
			}
		}
	}
	return out
}

// SetFillStat is how full one set that the packet path fills is.
type SetFillStat struct {
	Set, Kind          string
	Elements, Capacity int
}

// SetFill reads how many keys each set that the packet path fills holds
// (outside the agent's lock: one element dump per set); nil when the
// kernel cannot say.
func (a *Agent) SetFill() []SetFillStat {
	rs := a.liveRules.Load()
	if rs == nil {
		return nil
	}
	fill, err := a.opts.Kernel.SetFill(rs.Sets)
	if err != nil {
		a.log.Warn("cannot read set fill", "err", err)
		return nil
	}
	var out []SetFillStat
	for _, s := range rs.Sets {
		if n, ok := fill[s.Name]; ok {
			out = append(out, SetFillStat{Set: s.Name, Kind: s.Kind.String(), Elements: n, Capacity: s.Capacity()})
		}
	}
	return out
}
