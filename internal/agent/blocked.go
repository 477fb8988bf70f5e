package agent

import (
	"net/netip"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/nft"
)

// ClearBlocked implements `clear access-list blocked ip NAME [source ADDR]`:
// it lifts the lockouts of an ACL in every direction it is applied (of src
// only when valid).
func (a *Agent) ClearBlocked(f acl.Family, name string, src netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.checkACLLocked(f, name); err != nil {
		return err
	}
	b := a.opts.Kernel
	var addrs []netip.Addr // nil: all
	if src.IsValid() {
		addrs = []netip.Addr{src}
	}
	for _, set := range blockedSets(a.running, a.running.ACL(f, name), false) {
		if err := b.Unblock(set.name, f, addrs); err != nil {
			return errorf("%% Error: cannot clear blocked sources: %v", err)
		}
		if addrs == nil {
			// Clearing all of an entry's lockouts also ends the lockout of
			// everyone that its full blocked set caused.
			if _, err := b.SetFlag(set.full, f, false); err != nil {
				return errorf("%% Error: cannot clear blocked sources: %v", err)
			}
		}
		delete(a.flushed, set.name)
		a.forgetLockoutsLocked(set.name, src)
		if addrs == nil {
			a.forgetLockoutsLocked(set.full, src)
		}
	}
	a.log.Info("blocked sources cleared", "acl", name, "source", src)
	return nil
}

// WatchBlocked reads every blocked set of the running config, once a
// second (Run), and with that one read
//
//   - ends the open sessions of sources newly blocked with `block-for
//     SECONDS flush` (SPEC §4): the kernel blocks; ending sessions needs
//     conntrack, so the session tracker resets the new sources' sessions
//     on that ACL. Blocked sets are per entry and direction: only the
//     sources that an entry with `flush` blocked are flushed;
//   - keeps the lockouts and puts back those someone else's commit took
//     (lockouts.go).
func (a *Agent) WatchBlocked() {
	a.mu.Lock()
	defer a.mu.Unlock()
	foreign := a.opts.Kernel.ForeignCommits()
	lost, ok := foreign != a.lockoutsForeign, true
	now := time.Now()
	next := map[string]lockoutSet{}
	flushing := map[string]bool{}
	for _, l := range a.running.ACLs {
		for _, set := range blockedSets(a.running, l, false) {
			for _, name := range []string{set.name, set.full} {
				was := a.lockouts[name]
				was.family = l.Family
				have, err := a.readLockoutsLocked(name, l.Family, now)
				if err != nil {
					next[name] = was
					ok = false
					continue
				}
				if name == set.name && set.flush && a.opts.Sessions != nil {
					flushing[name] = true
					a.flushSetLocked(l, name, have)
				}
				missing := missingLockouts(was, have, now)
				if lost && !a.restoreLocked(name, l.Family, missing, now) {
					ok = false
				}
				next[name] = lockoutSet{l.Family, append(have, missing...)}
			}
		}
	}
	a.lockouts = next
	if ok {
		a.lockoutsForeign = foreign
	}
	for set := range a.flushed {
		if !flushing[set] {
			delete(a.flushed, set)
		}
	}
}

// flushSetLocked flushes the sources of one blocked set (its lockouts
// as just read) not seen before.
func (a *Agent) flushSetLocked(l *acl.ACL, set string, held []lockout) {
	seen, now := a.flushed[set], map[netip.Addr]bool{}
	var fresh []netip.Addr
	for _, h := range held {
		now[h.addr] = true
		if !seen[h.addr] {
			fresh = append(fresh, h.addr)
		}
	}
	if len(fresh) == 0 {
		a.flushed[set] = now
		return
	}
	// One conntrack dump for every source newly blocked: 500 sources cost
	// what one does, so a burst of lockouts never holds the agent.
	if err := a.opts.Sessions.ClearSessions(a.running, l.Family, l.Name, 0, fresh...); err != nil {
		a.log.Warn("block-for flush failed; will retry", "acl", l.Name, "sources", len(fresh), "err", err)
		for _, src := range fresh {
			delete(now, src)
		}
	} else {
		a.log.Info("block-for flush: sessions reset", "acl", l.Name, "sources", fresh)
	}
	a.flushed[set] = now
}

// blockedSet names the blocked set of an entry in one direction and its
// full flag.
type blockedSet struct {
	ref        nft.EntryRef
	name, full string
	flush      bool // the entry has block-for ... flush
}

// blockedSets returns the blocked sets of an ACL's entries with block-for
// (only those with flush when flushOnly) in the directions it is applied.
func blockedSets(cfg *acl.Config, l *acl.ACL, flushOnly bool) []blockedSet {
	if l == nil {
		return nil
	}
	var out []blockedSet
	dirs := directions(cfg, l.Family, l.Name)
	for _, e := range l.Entries {
		if e.BlockFor == nil || (flushOnly && !e.BlockFor.Flush) {
			continue
		}
		for d := range 2 {
			if dirs[d] {
				r := nft.EntryRef{Family: l.Family, ACL: l.Name, Dir: acl.Direction(d), Seq: e.Seq}
				out = append(out, blockedSet{r, nft.BlockedSetName(r), nft.BlockedFullSetName(r), e.BlockFor.Flush})
			}
		}
	}
	return out
}

// Blocked implements `show access-list blocked ip NAME`: the sources that
// the ACL's entries with block-for lock out, with the time left, by entry
// and direction (a full blocked set's lockout of everyone as one line).
func (a *Agent) Blocked(f acl.Family, name string) ([]cli.BlockedSource, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.checkACLLocked(f, name); err != nil {
		return nil, err
	}
	out := []cli.BlockedSource{}
	for _, set := range blockedSets(a.running, a.running.ACL(f, name), false) {
		for _, s := range []string{set.name, set.full} {
			elems, err := a.opts.Kernel.BlockedLeft(s, f)
			if err != nil {
				return nil, errorf("%% Error: cannot list blocked sources: %v", err)
			}
			for _, e := range elems {
				out = append(out, cli.BlockedSource{Seq: set.ref.Seq, Dir: set.ref.Dir, Source: e.Addr, Left: e.Left, All: !e.Addr.IsValid()})
			}
		}
	}
	return out, nil
}
