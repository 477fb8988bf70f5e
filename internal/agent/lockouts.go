package agent

import (
	"maps"
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
// Each entry of next that decides the same traffic (acl.TrafficOf) as an
// entry of prev with block-for, in the same list and direction, gets the
// lockouts last read of that entry's sets (WatchBlocked), for the time
// each had left, at most its own block-for; the entry at the same seq is
// preferred, and each entry of prev goes to one of next. A set that keeps
// its name but now belongs to another entry loses the lockouts of the
// entry it belonged to. Entries the change left alone (the same value in
// both configs) cost nothing: their sets and lockouts stay as they are.
// Before, a longer block-for typed during an attack freed every blocked
// source.
func (a *Agent) carryLockoutsLocked(prev, next *acl.Config) {
	if prev == nil || prev == next || len(a.lockouts) == 0 {
		return
	}
	was := maps.Clone(a.lockouts) // carries write a.lockouts
	now := time.Now()
	for _, l := range next.ACLs {
		old := prev.ACL(l.Family, l.Name)
		before := blockedSets(prev, old, false)
		if len(before) == 0 {
			continue
		}
		type traffic struct {
			dir acl.Direction
			key acl.TrafficKey
		}
		unclaimed := map[traffic][]blockedSet{}
		for _, b := range before {
			k := traffic{b.ref.Dir, acl.TrafficOf(old.Entry(b.ref.Seq))}
			unclaimed[k] = append(unclaimed[k], b)
		}
		// claim takes the entry of prev that an entry of next at seq is:
		// the one at that seq (exact), else the first left.
		claim := func(k traffic, seq int, exact bool) (blockedSet, bool) {
			bs := unclaimed[k]
			i := slices.IndexFunc(bs, func(b blockedSet) bool { return b.ref.Seq == seq })
			if i < 0 && !exact && len(bs) > 0 {
				i = 0
			}
			if i < 0 {
				return blockedSet{}, false
			}
			b := bs[i]
			unclaimed[k] = slices.Delete(bs, i, i+1)
			return b, true
		}
		var moved []blockedSet
		for _, set := range blockedSets(next, l, false) {
			e := l.Entry(set.ref.Seq)
			if old.Entry(set.ref.Seq) == e { // left alone: keeps its set
				claim(traffic{set.ref.Dir, acl.TrafficOf(e)}, set.ref.Seq, true)
				continue
			}
			moved = append(moved, set)
		}
		// Each entry of next takes the entry of prev at its own seq first
		// (a changed entry keeps its lockouts even beside a new one that
		// decides the same traffic), then the first left.
		from := make([]blockedSet, len(moved))
		found := make([]bool, len(moved))
		for pass := range 2 {
			for i, set := range moved {
				if !found[i] {
					from[i], found[i] = claim(traffic{set.ref.Dir, acl.TrafficOf(l.Entry(set.ref.Seq))}, set.ref.Seq, pass == 0)
				}
			}
		}
		for i, set := range moved {
			e, oe := l.Entry(set.ref.Seq), old.Entry(set.ref.Seq)
			if found[i] && from[i].name == set.name && oe.BlockFor.Seconds == e.BlockFor.Seconds {
				continue // the same set, kept by the kernel with its lockouts
			}
			limit := now.Add(time.Duration(e.BlockFor.Seconds) * time.Second)
			var src, srcFull lockoutSet
			if found[i] {
				src, srcFull = was[from[i].name], was[from[i].full]
			}
			if len(src.held) == 0 && len(srcFull.held) == 0 && oe == nil {
				continue // a new set with nothing to carry: nothing to read
			}
			a.carryLocked(src, set.name, l.Family, limit, now)
			a.carryLocked(srcFull, set.full, l.Family, limit, now)
		}
	}
}

// carryLocked makes set to hold the lockouts of from (each until it ended
// or limit, whichever is first): it adds those it lacks and lifts any
// other (of the entry the set belonged to before).
func (a *Agent) carryLocked(from lockoutSet, to string, f acl.Family, limit, now time.Time) {
	carried := lockoutSet{family: f}
	for _, l := range from.held {
		carried.held = append(carried.held, lockout{l.addr, minTime(l.until, limit)})
	}
	have, err := a.readLockoutsLocked(to, f, now)
	if err != nil {
		// Kept as held: the next WatchBlocked puts back what the kernel
		// lacks, as after someone else's commit.
		a.lockouts[to] = carried
		a.lockoutsForeign--
		return
	}
	keep := map[netip.Addr]bool{} // an invalid Addr: the full set's flag
	for _, c := range carried.held {
		keep[c.addr] = true
	}
	var stale []netip.Addr
	staleFlag := false
	held := make([]lockout, 0, len(have))
	for _, h := range have {
		switch {
		case keep[h.addr]:
			held = append(held, h)
		case h.addr.IsValid():
			stale = append(stale, h.addr)
		default:
			staleFlag = true
		}
	}
	if len(stale) > 0 {
		if err := a.opts.Kernel.Unblock(to, f, stale); err != nil {
			a.log.Error("cannot lift the lockouts of the entry a blocked set belonged to", "set", to, "err", err)
		}
	}
	if staleFlag {
		if _, err := a.opts.Kernel.SetFlag(to, f, false); err != nil {
			a.log.Error("cannot lift the lockout of everyone of the entry a blocked set belonged to", "set", to, "err", err)
		}
	}
	missing := missingLockouts(carried, have, now)
	if !a.restoreLocked(to, f, missing, now) {
		a.lockoutsForeign-- // kept below as held: the next WatchBlocked puts them back
	}
	a.lockouts[to] = lockoutSet{f, append(held, missing...)}
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
