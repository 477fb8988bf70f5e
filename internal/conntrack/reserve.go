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
	var out []Reservation
	for _, s := range sets {
		for k, idx := range a.Keys {
			if k.LimitID != s.Limit() {
				continue
			}
			if d := nft.Depth(s.Over, len(idx)); d > 0 {
				out = append(out, Reservation{Set: s.Name, Key: k.Key, Depth: d})
			}
		}
	}
	slices.SortFunc(out, compareRes)
	return out
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

// markOldOf is MarkOld(t, OldFlows(sets, a)) without the copy of the
// flows (15 MB at 100k): in a's order. It calls every (if not nil) after
// each markEvery marks.
func markOldOf(t Table, sets []LimitSet, a *Attribution, every func()) error {
	want := map[LimitID]bool{}
	for _, s := range sets {
		want[s.Limit()] = true
	}
	pick := make([]bool, len(a.Flows))
	for k, idx := range a.Keys {
		if want[k.LimitID] {
			for _, i := range idx {
				pick[i] = true
			}
		}
	}
	var first error
	n := 0
	for i := range a.Flows {
		if !pick[i] {
			continue
		}
		if err := MarkOld(t, a.Flows[i:i+1]); err != nil && first == nil {
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
		want := (f.Mark | OldMark) &^ AdoptMark
		if f.Mark == want {
			continue
		}
		if err := t.SetMark(f, want); err != nil && first == nil {
			first = err
		}
	}
	return first
}
