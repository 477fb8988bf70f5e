package conntrack

// Counting sessions that were open before a limit existed: the layers,
// the gate and where admission is conservative are described in the
// package doc (doc.go).

import (
	"cmp"
	"slices"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/nft"
)

// OldMark is the ct mark bit of a session that was open before the limit
// set that would count it existed: it is held in a reservation instead.
const OldMark uint32 = 0x20000000

// AdoptMark is the ct mark bit the compiled base chains set on a TCP
// session that conntrack picked up mid-stream (nft.AdoptMark): it was open
// before conntrack tracked it, so no limit set has counted it. The agent
// renews the limit sets such sessions fall under, which counts them as old.
const AdoptMark uint32 = nft.AdoptMark

// GhostMark replaces AdoptMark on a flow picked up mid-stream that has
// seen no reply (Flow.Ghost), so that the adoption's dumps skip it; the
// compiled base chains put AdoptMark back at its first reply (nft.GhostMark).
const GhostMark uint32 = nft.GhostMark

// LimitSet is one connlimit set of the ruleset, `add @Name { KEY ct count
// over Over }`, as the session code needs it; Set is the compiler's, for
// the kernel's element operations.
type LimitSet struct {
	Name      string
	Entry     EntryID
	Key       acl.KeyKind
	PrefixLen int
	Over      int
	Set       *nft.Set
}

// Limit is the connlimit of its entry that the set counts.
func (s LimitSet) Limit() LimitID { return LimitID{s.Entry, s.Key, s.PrefixLen} }

// Reservation is a key of a limit set held at a depth (nft.Reservation).
type Reservation = nft.Reservation

func compareRes(a, b Reservation) int {
	return cmp.Or(cmp.Compare(a.Set, b.Set), compareKeys(a.Key, b.Key))
}

// Plan returns the reservations for the given limit sets: every key with
// flows under the set's entry in a, at the depth of its number of flows.
// For a set the kernel has just created, a holds all open flows (they are
// all old); for Refresh, only those with OldMark.
func Plan(sets []LimitSet, a *Attribution) []Reservation {
	open := map[LimitID]map[string]int{}
	for k, idx := range a.Keys {
		if open[k.LimitID] == nil {
			open[k.LimitID] = map[string]int{}
		}
		open[k.LimitID][k.Key] = len(idx)
	}
	return planOf(sets, open)
}

// planOf is Plan from the open sessions per limit and key.
func planOf(sets []LimitSet, open map[LimitID]map[string]int) []Reservation {
	var out []Reservation
	for _, s := range sets {
		for key, n := range open[s.Limit()] {
			if d := nft.Depth(s.Over, n); d > 0 {
				out = append(out, Reservation{Set: s.Name, Key: key, Depth: d})
			}
		}
	}
	slices.SortFunc(out, compareRes)
	return out
}

// countOld is Plan(sets, a) and oldMarksOf(sets, a) of the attribution a
// of one dump under bs, streamed: the flows are not kept (a dump of 100k
// is 15 MB, its attribution 4 MB more), only their counts per key of the
// sets' limits and the compact tuples to mark. dump streams the flows
// (dumpEach; a slice in tests).
func countOld(dump func(fn func(Flow)) error, bs []Binding, loc Locator, sets []LimitSet) ([]Reservation, *oldMarks, error) {
	open := map[LimitID]map[string]int{}
	for _, s := range sets {
		open[s.Limit()] = map[string]int{}
	}
	marks := &oldMarks{}
	err := dump(func(f Flow) {
		if !f.Open() {
			return
		}
		picked := false
		for _, b := range bs {
			if !b.passes(f, loc) {
				continue
			}
			b.walk(f, func(k KeyID, _ *acl.Connlimit, _ acl.Action) {
				if n := open[k.LimitID]; n != nil {
					n[k.Key]++
					picked = true
				}
			})
		}
		if picked {
			marks.add(f)
		}
	})
	if err != nil {
		return nil, nil, err
	}
	return planOf(sets, open), marks, nil
}

// Shrink returns cur with each key's depth lowered to what its remaining old
// sessions need (never raised: a layer a key was not in from the start has
// not counted its new sessions). Keys absent from now are dropped.
func Shrink(cur, now []Reservation) []Reservation {
	need := map[[2]string]int{}
	for _, r := range now {
		need[[2]string{r.Set, r.Key}] = r.Depth
	}
	var out []Reservation
	for _, r := range cur {
		if d := min(r.Depth, need[[2]string{r.Set, r.Key}]); d > 0 {
			out = append(out, Reservation{Set: r.Set, Key: r.Key, Depth: d})
		}
	}
	slices.SortFunc(out, compareRes)
	return out
}

// OldFlows returns the flows of a that are counted under the given sets'
// entries: the sessions to mark with OldMark when their sets are new.
func OldFlows(sets []LimitSet, a *Attribution) []Flow {
	want := map[LimitID]bool{}
	for _, s := range sets {
		want[s.Limit()] = true
	}
	pick := map[int]bool{}
	for k, idx := range a.Keys {
		if want[k.LimitID] {
			for _, i := range idx {
				pick[i] = true
			}
		}
	}
	return a.newestFirst(pick)
}

// oldMarks are the sessions to mark with OldMark (OldFlows) in the
// index's compact tuples: 20 bytes an IPv4 flow where a Flow is 152, so
// that the dump and its attribution (some 20 MB at 100k flows) can be
// released before the marks' events fill the session index.
type oldMarks struct {
	v4 []oldMark[tuple4]
	v6 []oldMark[tuple6]
}

type oldMark[K tuple] struct {
	k    K
	mark uint32
}

// oldMarksOf is OldFlows(sets, a) as oldMarks, in a's order.
func oldMarksOf(sets []LimitSet, a *Attribution) *oldMarks {
	want := map[LimitID]bool{}
	for _, s := range sets {
		want[s.Limit()] = true
	}
	pick := make([]bool, len(a.Flows))
	n := 0
	for k, idx := range a.Keys {
		if want[k.LimitID] {
			for _, i := range idx {
				n += btoi(!pick[i])
				pick[i] = true
			}
		}
	}
	m := &oldMarks{v4: make([]oldMark[tuple4], 0, n)}
	for i, f := range a.Flows {
		if pick[i] {
			m.add(f)
		}
	}
	return m
}

func (m *oldMarks) add(f Flow) {
	if k, ok := tuple4Of(f); ok {
		m.v4 = append(m.v4, oldMark[tuple4]{k, f.Mark})
	} else {
		m.v6 = append(m.v6, oldMark[tuple6]{tuple6Of(f), f.Mark})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// mark is MarkOld of every session of m. It calls every (if not nil)
// after each markEvery marks.
func (m *oldMarks) mark(t Table, every func()) error {
	first, n := markEach(t, m.v4, 0, every), len(m.v4)
	if err := markEach(t, m.v6, n, every); first == nil {
		first = err
	}
	return first
}

// markEach marks the sessions of ms, n marks having been written before.
func markEach[K tuple](t Table, ms []oldMark[K], n int, every func()) error {
	var first error
	for _, m := range ms {
		if err := markOld(t, m.k.flow(flowRec{mark: m.mark})); err != nil && first == nil {
			first = err
		}
		if n++; n%markEvery == 0 && every != nil {
			every()
		}
	}
	return first
}

// markEvery is how many marks the tracker writes between two reads of the
// session index's events: each mark of a flow with the event extension
// queues one update event (about 1 KiB of the socket's 16 MiB) before
// its write is acknowledged, so the queue never overflows on our own
// marks, and the index learns that those flows are followed (not silent).
const markEvery = 2048

// MarkOld sets OldMark on the flows (keeping their other mark bits but
// AdoptMark: an adopted session is now counted).
func MarkOld(t Table, flows []Flow) error {
	var first error
	for _, f := range flows {
		if err := markOld(t, f); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func markOld(t Table, f Flow) error {
	if want := (f.Mark | OldMark) &^ AdoptMark; f.Mark != want {
		return t.SetMark(f, want)
	}
	return nil
}
