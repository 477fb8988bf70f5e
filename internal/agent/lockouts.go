package agent

import (
	"net/netip"
	"slices"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/nft"
)

// Lockouts across drift. The kernel holds the lockouts of `block-for` as
// elements of the blocked sets, each with its time left. A table deleted
// or a set flushed by someone else loses them, and a drift repair creates
// the sets empty: blocked sources would get in again. So the agent keeps
// what it last read of them (WatchBlocked, every LoadInterval) and puts
// back, with the time each has left, what such a change took: every
// lockout after a drift repair, and the lockouts missing from a set after
// a commit of someone else. A lockout that began less than LoadInterval
// before the change is lost; one that `clear access-list blocked` lifted
// is never put back.

// lockout is one element of a blocked set: a source (none for the full
// flag) and when it expires.
type lockout struct {
	addr  netip.Addr
	until time.Time
}

// lockoutSet is what the agent last read of one blocked set.
type lockoutSet struct {
	family acl.Family
	held   []lockout
}

// lockoutMargin: a lockout with less than this left is not put back.
//
// Why keep what a read no longer shows until it expires: the read may
// come after a change of someone else that the drift check has not seen
// yet (a deleted table holds nothing); only the agent itself lifts a
// lockout early (forgetLockoutsLocked).
const lockoutMargin = 50 * time.Millisecond

// readLockoutsLocked reads a blocked set's lockouts.
func (a *Agent) readLockoutsLocked(name string, f acl.Family, now time.Time) ([]lockout, error) {
	elems, err := a.opts.Kernel.BlockedLeft(name, f)
	if err != nil {
		a.log.Warn("cannot list blocked sources", "set", name, "err", err)
		return nil, err
	}
	out := make([]lockout, 0, len(elems))
	for _, e := range elems {
		out = append(out, lockout{e.Addr, now.Add(e.Left)})
	}
	return out, nil
}

// missingLockouts are the lockouts of was that have are without and that
// have time left.
func missingLockouts(was lockoutSet, have []lockout, now time.Time) []lockout {
	var out []lockout
	for _, l := range was.held {
		if l.until.Sub(now) >= lockoutMargin && !slices.ContainsFunc(have, func(h lockout) bool { return h.addr == l.addr }) {
			out = append(out, l)
		}
	}
	return out
}

// restoreLocked puts lockouts back into a blocked set with the time each
// has left; it reports whether it did.
func (a *Agent) restoreLocked(name string, f acl.Family, ls []lockout, now time.Time) bool {
	if len(ls) == 0 {
		return true
	}
	elems := make([]nft.BlockedElem, 0, len(ls))
	for _, l := range ls {
		elems = append(elems, nft.BlockedElem{Addr: l.addr, Left: l.until.Sub(now)})
	}
	if err := a.opts.Kernel.RestoreBlocked(name, f, elems); err != nil {
		a.log.Error("cannot put back lockouts", "set", name, "err", err)
		return false
	}
	a.log.Info("lockouts put back", "set", name, "lockouts", len(elems))
	return true
}

// restoreLockoutsLocked puts back every lockout the agent last read that
// the kernel lacks, with the time it has left (after a drift repair, which
// creates the blocked sets empty when the table was deleted).
func (a *Agent) restoreLockoutsLocked() {
	now := time.Now()
	for name, was := range a.lockouts {
		if have, err := a.readLockoutsLocked(name, was.family, now); err == nil {
			a.restoreLocked(name, was.family, missingLockouts(was, have, now), now)
		}
	}
}

// carryLockoutsLocked keeps the lockouts of block-for entries across an
// apply of next after prev that gives them other sets: a resequence (the
// set is named by seq) or another block-for time (the set is made again).
// An entry of next that decides the same traffic (acl.SameTraffic) as an
// entry of prev with block-for, in the same list and direction, gets the
// lockouts last read of that entry's sets (WatchBlocked) that its own
// lack, for the time each had left, at most its own block-for. Before, a
// longer block-for typed during an attack freed every blocked source.
func (a *Agent) carryLockoutsLocked(prev, next *acl.Config) {
	if prev == nil || len(a.lockouts) == 0 {
		return
	}
	now := time.Now()
	for _, l := range next.ACLs {
		old := prev.ACL(l.Family, l.Name)
		before := blockedSets(prev, old, false)
		if len(before) == 0 {
			continue
		}
		for _, set := range blockedSets(next, l, false) {
			e := l.Entry(set.ref.Seq)
			for _, b := range before {
				oe := old.Entry(b.ref.Seq)
				if b.ref.Dir != set.ref.Dir || !acl.SameTraffic(e, oe) {
					continue
				}
				if b.name != set.name || oe.BlockFor.Seconds != e.BlockFor.Seconds {
					limit := now.Add(time.Duration(e.BlockFor.Seconds) * time.Second)
					a.carryLocked(b.name, set.name, l.Family, limit, now)
					a.carryLocked(b.full, set.full, l.Family, limit, now)
				}
				break
			}
		}
	}
}

// carryLocked puts the lockouts last read of set from that set to lacks,
// each until it ended or limit, whichever is first.
func (a *Agent) carryLocked(from, to string, f acl.Family, limit, now time.Time) {
	was, ok := a.lockouts[from]
	if !ok || len(was.held) == 0 {
		return
	}
	have, err := a.readLockoutsLocked(to, f, now)
	if err != nil {
		return
	}
	carried := lockoutSet{family: f}
	for _, l := range was.held {
		carried.held = append(carried.held, lockout{l.addr, minTime(l.until, limit)})
	}
	missing := missingLockouts(carried, have, now)
	if a.restoreLocked(to, f, missing, now) {
		a.lockouts[to] = lockoutSet{f, append(have, missing...)}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// forgetLockoutsLocked drops what the agent keeps of the lockouts of set
// (of src only when valid): `clear access-list blocked` lifted them.
func (a *Agent) forgetLockoutsLocked(set string, src netip.Addr) {
	was, ok := a.lockouts[set]
	if !ok {
		return
	}
	if !src.IsValid() {
		delete(a.lockouts, set)
		return
	}
	was.held = slices.DeleteFunc(slices.Clone(was.held), func(l lockout) bool { return l.addr == src })
	a.lockouts[set] = was
}
