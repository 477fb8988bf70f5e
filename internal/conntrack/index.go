package conntrack

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
)

// Index is the session index that the views share (`show access-list
// sessions`, the at-limit column of `show access-list ip`, the metrics,
// packet-tracer): every flow of the namespace as a compact record,
// attributed once to the limit keys it counts under, with open and old
// sessions summed per key as flows come and go.
//
// It is kept by conntrack events (Follow, in the refresh loop; a read
// also takes what is queued, so it is as fresh as a dump would be): one
// streamed dump, then new, update and destroy events applied in order.
// When the kernel drops events (the socket overflowed) or sends none
// (nf_conntrack_events = 0) it dumps again. Why that converges: every
// change made after subscribing is queued in order; a dump taken after
// the subscription, with every queued event applied after it field by
// field, ends in the state of the last event.
//
// Except for flows created before anyone listened (before the agent
// started, or while the index was idle and nothing else on the host
// listened): the kernel never sends their events (the event extension is
// attached when an entry is created, and with nf_conntrack_events = 2 only
// if some socket on the host listens then: nf_ctnetlink_has_listener is
// global, not per namespace; measured on Linux 6.18). Flows first seen in
// a dump and not yet in an event may be such "silent" flows (or merely
// idle ones: any event of a flow proves it is not, including the mark
// update the tracker makes to an old session); while any that counts under
// a limit (or may again: CLOSE, see watched) is left, the index dumps
// again in place once a second (Update, and the tracker's refresh through
// Old); the views may see their ends up to a second late.
//
// Bindings and routes are the index's view of where flows fall: a read
// with other bindings (a new config, an interface that moved), or after
// the routes changed (RouteLocator.Epoch), attributes every record again
// from memory, without a dump (unless silent flows then count).
//
// While no binding has a limit nothing counts: the index is idle (holds
// no flows, leaves the event groups, so that the kernel builds no events
// as connections come and go, and dumps nothing). A limit wakes it: it
// joins the groups and dumps.
//
// The tracker's refresh reads its old sessions per key from the index
// (Old: a dump in place while silent flows are left); the counting of a
// new limit (Tracker.Installed) dumps, as before.
type Index struct {
	netnsFd int
	loc     Locator
	ev      *events // nil: no events, every read dumps

	mu       sync.Mutex
	v4       map[tuple4]flowRec // IPv4 flows (records.go)
	v6       map[tuple6]flowRec
	more     [][]int32 // a flow's slots after its first (flowRec.more)
	freeMore []int32
	slots    []keySlot
	slotOf   map[slotKey]int32
	free     []int32
	lims     []LimitID // the limits of the slots (keySlot.limit)
	limOf    map[LimitID]int32
	bs       []Binding
	walks    []keyWalk // the limited entries of bs, one per binding
	limits   map[LimitID]*acl.Connlimit
	actions  map[EntryID]acl.Action
	epoch    uint64 // the locator's epoch the records were attributed in
	synced   bool
	// idle is set while no binding has a limit: nothing counts, so the
	// index holds no flows, dumps nothing and listens to no events.
	idle    bool
	gen     uint32    // dumps so far
	silent  int       // watched silent records (records.go), after the last dump or attribution
	dumped  time.Time // when the last dump ended
	lastErr error
}

// silentEvery is how often the refresh loop dumps again while the index
// holds silent flows (which report no events): as often as the tracker
// gives budget back.
const silentEvery = time.Second

// NewIndex opens the index of the namespace netnsFd (0: the caller's),
// placing flows with loc (see TrackerOptions.Locator). Without conntrack
// events (an error the caller may log) the index still answers, from a dump
// at every read.
func NewIndex(netnsFd int, loc Locator) (*Index, error) {
	x := &Index{netnsFd: netnsFd, loc: loc}
	x.reset()
	ev, err := openEvents(netnsFd)
	if err != nil {
		return x, err
	}
	x.ev = ev
	return x, nil
}

// Close releases the event socket.
func (x *Index) Close() error {
	if x.ev == nil {
		return nil
	}
	return x.ev.close()
}

func (x *Index) reset() {
	x.v4, x.v6 = map[tuple4]flowRec{}, map[tuple6]flowRec{}
	x.more, x.freeMore = nil, nil
	x.resetSlots()
}

// resetSlots forgets every key slot (and limit) for an attribution
// afresh.
func (x *Index) resetSlots() {
	x.slots, x.free = nil, nil
	x.slotOf = map[slotKey]int32{}
	x.lims, x.limOf = nil, map[LimitID]int32{}
}

// Counts returns the counts per key of the limits of bs (as Attribution's
// Counts, unsorted) that keep selects, from the index brought up to date.
func (x *Index) Counts(bs []Binding, keep func(KeyID) bool) ([]KeyCount, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.updateLocked(bs); err != nil {
		return nil, err
	}
	out := make([]KeyCount, 0, len(x.slotOf))
	x.eachLocked(keep, func(c KeyCount) { out = append(out, c) })
	return out, nil
}

// Each hands fn the count of every key of the limits of bs with sessions
// that keep selects (as Counts, without building the list: the metrics
// and `show access-list ip` only sum them), under the index's lock.
func (x *Index) Each(bs []Binding, keep func(KeyID) bool, fn func(KeyCount)) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.updateLocked(bs); err != nil {
		return err
	}
	x.eachLocked(keep, fn)
	return nil
}

func (x *Index) eachLocked(keep func(KeyID) bool, fn func(KeyCount)) {
	for _, s := range x.slots {
		if s.sessions == 0 {
			continue
		}
		id := KeyID{x.lims[s.limit], s.key}
		if !keep(id) {
			continue
		}
		c := x.limits[id.LimitID]
		fn(KeyCount{
			ACL: id.ACL, Family: id.Family, Dir: id.Dir, Seq: id.Seq, Kind: id.Kind,
			PrefixLen: id.PrefixLen, Key: id.Key, Sessions: int(s.sessions), Old: int(s.old), Limit: c.N,
			AtLimit: int(s.sessions) >= allowed(c, x.actions[id.EntryID]),
		})
	}
}

// Old brings the index up to date for bs as the tracker's refresh needs
// it, and calls fn, under the index's lock, with the old sessions (open,
// OldMark) per limit key: how far each reservation may be lowered
// (Tracker.Refresh).
//
// Why that is as exact as the dump of the OldMark sessions it replaces:
//
//   - while the index holds silent flows (or has no events, or lost
//     some), it dumps the table again first, in place: their marks and
//     states are those of a dump taken now, as before;
//   - otherwise every record is followed: its mark (OldMark is set by
//     the tracker's own ctnetlink update, whose event the kernel queues
//     before it answers) and its TCP state come from events, all of
//     which are applied (drained) here; an event not yet delivered can
//     only be a session ending (the index then counts it a moment
//     longer: a reservation kept a second longer, never lowered too
//     far). A lost event is reported (ENOBUFS) and makes it dump.
//
// TestKernelTrackerRefreshFromIndex checks it against a real dump.
func (x *Index) Old(bs []Binding, fn func(old func(KeyID) int)) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.silent > 0 {
		x.synced = false
	}
	if err := x.updateLocked(bs); err != nil {
		return err
	}
	fn(func(k KeyID) int {
		if l, ok := x.limOf[k.LimitID]; ok {
			if s, ok := x.slotOf[slotKey{l, k.Key}]; ok {
				return int(x.slots[s].old)
			}
		}
		return 0
	})
	return nil
}

// Len returns how many flows the index holds (open or not).
func (x *Index) Len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.v4) + len(x.v6)
}

// Follow applies conntrack events as they arrive, at most every
// followPause, until ctx ends (the tracker runs it beside its refresh
// loop). After the kernel dropped events it leaves the index out of
// sync: the next Update (the refresh loop's, once a second, or a read's)
// dumps again.
func (x *Index) Follow(ctx context.Context) {
	if x.ev == nil {
		return
	}
	for ctx.Err() == nil {
		if err := x.ev.wait(500); err != nil {
			x.noteErr(err)
			time.Sleep(time.Second)
			continue
		}
		x.mu.Lock()
		x.lastErr = x.drainLocked()
		x.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(followPause):
		}
	}
}

// followPause is how long Follow lets events queue after it drained them.
// Why: a reader that waits is woken for every event, four per TCP
// connection (eventFilter), and at thousands of connections a second
// those wakeups cost the host more than the events themselves
// (BENCHMARKS.md). Reads drain what is queued before they answer, so the
// views are as fresh as before; the socket holds some 16k events
// (eventRcvBuf), which at this pause is some 800k events a second before
// it overflows.
const followPause = 20 * time.Millisecond

// Update brings the index up to date for bs (see updateLocked); the
// refresh loop calls it so that reads seldom have to. While the index
// holds silent flows (no events: open before the index listened), it
// also dumps again every silentEvery, which is how their ends are seen.
func (x *Index) Update(bs []Binding) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.synced && x.silent > 0 && time.Since(x.dumped) >= silentEvery {
		x.synced = false
	}
	err := x.updateLocked(bs)
	x.lastErr = err
	return err
}

// Drain applies the events queued now (the tracker calls it while it
// writes many marks, whose events would overflow the socket).
func (x *Index) Drain() {
	if x.ev == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.lastErr = x.drainLocked()
}

func (x *Index) noteErr(err error) {
	x.mu.Lock()
	x.lastErr = err
	x.mu.Unlock()
}

// updateLocked brings the index up to date for bs: the queued events,
// attribution again when the bindings or routes changed, a dump when the
// index lost track.
//
// Why attribute before the dump: the dump updates the records it already
// holds in place, keeping their keys; records attributed under other
// bindings would keep counting where those put them.
func (x *Index) updateLocked(bs []Binding) error {
	epoch := locatorEpoch(x.loc)
	if x.synced && x.ev != nil {
		if err := x.drainLocked(); err != nil {
			return err
		}
	}
	if same := sameBindings(bs, x.bs); epoch != x.epoch || !same {
		if !same {
			x.tableLocked(bs)
		}
		x.epoch = epoch
		x.reattributeLocked()
		if x.silent > 0 {
			// Flows that counted nowhere may have ended unseen (sweep).
			x.synced = false
		}
	}
	if err := x.idleLocked(len(x.limits) == 0); err != nil || x.idle {
		return err
	}
	if !x.synced || x.ev == nil {
		return x.syncLocked()
	}
	return nil
}

// idleLocked makes the index idle (see Index.idle) or wakes it, to
// listen again and dump: events of the time it was idle were not sent.
//
// Why the groups too: a failure half way through leaving them leaves the
// index awake with some groups left; it then joins them again and dumps.
func (x *Index) idleLocked(idle bool) error {
	if idle == x.idle && (x.ev == nil || x.ev.joinedAll(!idle)) {
		return nil
	}
	if x.ev != nil {
		if !idle {
			// Events queued before it left the groups are stale now:
			// drained while still idle, they are dropped.
			if err := x.drainLocked(); err != nil {
				return err
			}
		}
		if err := x.ev.listen(!idle); err != nil {
			return err
		}
	}
	x.reset()
	x.synced, x.silent, x.idle = false, 0, idle
	return nil
}

// tableLocked makes bs the bindings and rebuilds their limits, actions
// and walks. An ACL that was bound before, now changed in a few entries,
// has its walk derived from the one before (keyWalk.after): a one-line
// change of a 50k-entry list with 500 limits is then not 25M overlap
// tests under the index's lock.
func (x *Index) tableLocked(bs []Binding) {
	type bound struct {
		acl *acl.ACL
		w   *keyWalk
	}
	was := map[aclName]bound{}
	for i, b := range x.bs {
		was[aclName{b.ACL.Name, b.ACL.Family}] = bound{b.ACL, &x.walks[i]}
	}
	walks := make([]keyWalk, 0, len(bs))
	for _, b := range bs {
		if o, ok := was[aclName{b.ACL.Name, b.ACL.Family}]; ok {
			walks = append(walks, o.w.after(o.acl, b))
		} else {
			walks = append(walks, newKeyWalk(b))
		}
	}
	x.bs, x.walks = bs, walks
	x.limits, x.actions = map[LimitID]*acl.Connlimit{}, map[EntryID]acl.Action{}
	for _, b := range x.bs {
		for _, e := range b.ACL.Entries {
			if len(e.Connlimits) == 0 || (e.Action != acl.Permit && e.Action != acl.Deny) {
				continue
			}
			id := EntryID{ACL: b.ACL.Name, Family: b.ACL.Family, Dir: b.Dir, Seq: e.Seq}
			x.actions[id] = e.Action
			for j := range e.Connlimits {
				x.limits[limitOf(id, &e.Connlimits[j])] = &e.Connlimits[j]
			}
		}
	}
}

// syncLocked replaces the records by one streamed dump. Events queued
// before it are applied first (the dump then overwrites what they say,
// but a flow that sent one is known not to be silent); those queued while
// it runs are applied by the next drain.
//
// It works in place: records the dump sees are updated (an unchanged flow
// keeps its attribution), those it does not see are swept.
func (x *Index) syncLocked() error {
	if x.ev != nil {
		if err := x.drainLocked(); err != nil {
			return err
		}
	}
	x.synced = false
	x.gen++
	err := dumpEach(x.netnsFd, 0, 0, func(f Flow) { x.putLocked(f, true) })
	if err != nil {
		x.reset()
		return err
	}
	x.silent = sweep(x, x.v4) + sweep(x, x.v6)
	x.synced, x.dumped = true, time.Now()
	return nil
}

// drainLocked applies the queued events; on an overflow the index is no
// longer the table (synced false). Out of sync, they are applied all the
// same: the next dump overwrites the records, and those that sent events
// are not silent.
func (x *Index) drainLocked() error {
	lost, err := x.ev.drain(func(destroy bool, f Flow) {
		switch {
		case x.idle: // queued before it left the groups
		case destroy:
			x.dropLocked(f)
		default:
			x.putLocked(f, false)
		}
	})
	if lost {
		x.synced = false
	}
	return err
}

// sameBindings reports whether a and b bind the same ACL values (configs
// are values: a change makes new ones) in the same directions to the same
// interfaces.
func sameBindings(a, b []Binding) bool {
	return slices.EqualFunc(a, b, func(p, q Binding) bool {
		return p.ACL == q.ACL && p.Dir == q.Dir && slices.Equal(p.Ifaces, q.Ifaces)
	})
}

// locatorEpoch is the locator's route epoch (RouteLocator.Epoch); 0 for
// locators whose answers never change.
func locatorEpoch(l Locator) uint64 {
	if e, ok := l.(interface{ Epoch() uint64 }); ok {
		return e.Epoch()
	}
	return 0
}

// Err returns the last error of Follow (nil when it is reading events).
func (x *Index) Err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.lastErr
}
