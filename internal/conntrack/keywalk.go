package conntrack

import (
	"slices"

	"github.com/slxsh/slxsh/internal/acl"
)

// keyWalk finds the limit keys a flow counts under in one binding, as
// Binding.walk does, but in time of the ACL's limited entries instead of
// all of its entries: the session index attributes every new flow, and a
// walk of a 1000-entry ACL per connection was most of what the agent's
// CPU did at high connection rates (issue 13).
//
// Why it is the walk: the walk counts a flow under a limited entry L
// exactly when the flow matches L and no earlier entry that matches the
// flow stops the walk first. An earlier entry that matches a flow L
// matches overlaps L (acl.Entry.Overlaps never says no for two entries
// that share a flow), so only the earlier stopping entries that overlap L
// need to be tried, and they are listed with L once per configuration.
type keyWalk struct {
	steps []keyStep
	atNow bool // of the binding it was listed for (Binding.unseen)
}

// keyStep is one limited entry with the earlier entries that may stop the
// walk before it (in ACL order).
type keyStep struct {
	e      *acl.Entry
	id     EntryID
	before []*acl.Entry
}

// limited reports whether the walk counts flows of e under its limits.
func limited(e *acl.Entry) bool {
	return len(e.Connlimits) > 0 && (e.Action == acl.Permit || e.Action == acl.Deny)
}

// stops reports whether a flow that matches e, an entry that is not
// limited, ends the walk there (as Binding.walk decides).
func stops(b Binding, e *acl.Entry) bool {
	return e.Action != acl.Remark && (e.Action == acl.Permit || !b.unseen(e))
}

// newKeyWalk lists b's limited entries with the earlier entries that
// overlap each and decide a flow they match. Earlier limited entries are
// steps of their own: a permit among them that matches ends the walk
// there, a deny counts and lets the flow go on.
func newKeyWalk(b Binding) keyWalk {
	w := keyWalk{atNow: b.AtNow}
	es := b.ACL.Entries
	for i, e := range es {
		if !limited(e) {
			continue
		}
		w.steps = append(w.steps, keyStep{e: e, id: stepID(b, e), before: stoppers(b, es[:i], e)})
	}
	return w
}

func stepID(b Binding, e *acl.Entry) EntryID {
	return EntryID{ACL: b.ACL.Name, Family: b.ACL.Family, Dir: b.Dir, Seq: e.Seq}
}

// stopper reports whether o, an entry before the limited entry e, may end
// the walk before e: it is not limited, decides a flow it matches, and
// overlaps e.
func stopper(b Binding, o, e *acl.Entry) bool { return !limited(o) && stops(b, o) && o.Overlaps(e) }

// stoppers lists the entries of es that are stoppers of e, in order.
func stoppers(b Binding, es []*acl.Entry, e *acl.Entry) []*acl.Entry {
	var out []*acl.Entry
	for _, o := range es {
		if stopper(b, o, e) {
			out = append(out, o)
		}
	}
	return out
}

// aclName names an ACL across changes (a change makes a new *acl.ACL).
type aclName struct {
	name   string
	family acl.Family
}

// afterMost is how many entries removed and added keyWalk.after follows
// one by one; past that it lists the walk afresh.
const afterMost = 64

// after is the walk of b, whose ACL is prev (w's) after a change. Entries
// are immutable, so an unchanged entry is the same pointer in both: a
// step of an unchanged limited entry keeps its stoppers less the entries
// removed, plus the entries added before it that stop it; a new limited
// entry is listed afresh. The result is what newKeyWalk(b) returns
// (TestKeyWalkAfterIsNewKeyWalk), in time of the ACL's limited entries
// and stoppers instead of their product with its entries.
func (w *keyWalk) after(prev *acl.ACL, b Binding) keyWalk {
	removed, added, ok := entryDiff(prev.Entries, b.ACL.Entries, afterMost)
	if !ok || w.atNow != b.AtNow {
		return newKeyWalk(b)
	}
	was := make(map[*acl.Entry]*keyStep, len(w.steps))
	for i := range w.steps {
		was[w.steps[i].e] = &w.steps[i]
	}
	nw := keyWalk{atNow: b.AtNow}
	es := b.ACL.Entries
	for i, e := range es {
		if !limited(e) {
			continue
		}
		s := keyStep{e: e, id: stepID(b, e)}
		if o := was[e]; o != nil {
			s.before = mergeStoppers(b, o.before, removed, added, e)
		} else {
			s.before = stoppers(b, es[:i], e)
		}
		nw.steps = append(nw.steps, s)
	}
	return nw
}

// mergeStoppers is the stoppers of e after a change: those before (in ACL
// order) that were not removed, and the added ones before e that stop it,
// in ACL order.
func mergeStoppers(b Binding, before, removed, added []*acl.Entry, e *acl.Entry) []*acl.Entry {
	stops := func(o *acl.Entry) bool { return o.Seq < e.Seq && stopper(b, o, e) }
	if !slices.ContainsFunc(removed, stops) && !slices.ContainsFunc(added, stops) {
		return before // shared: steps are never changed in place
	}
	var out []*acl.Entry
	j := 0
	take := func(upTo int) { // the added stoppers before seq upTo
		for ; j < len(added) && added[j].Seq < upTo; j++ {
			if stops(added[j]) {
				out = append(out, added[j])
			}
		}
	}
	for _, o := range before {
		take(o.Seq)
		if !slices.Contains(removed, o) {
			out = append(out, o)
		}
	}
	take(e.Seq)
	return out
}

// entryDiff lists the entries of a that b no longer holds and those of b
// that a did not, each in ACL order (both are sorted by seq); ok is false
// past most of them.
func entryDiff(a, b []*acl.Entry, most int) (removed, added []*acl.Entry, ok bool) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			i, j = i+1, j+1
			continue
		case j == len(b) || (i < len(a) && a[i].Seq <= b[j].Seq):
			removed = append(removed, a[i])
			i++
		default:
			added = append(added, b[j])
			j++
		}
		if len(removed)+len(added) > most {
			return nil, nil, false
		}
	}
	return removed, added, true
}

// keys calls counted with each key f counts under, in the order of
// Binding.walk.
func (w *keyWalk) keys(f Flow, counted func(k KeyID)) {
	for i := range w.steps {
		s := &w.steps[i]
		if !Matches(s.e, f) {
			continue
		}
		for _, o := range s.before {
			if Matches(o, f) {
				return // o comes first and decides the flow
			}
		}
		for j := range s.e.Connlimits {
			cl := &s.e.Connlimits[j]
			counted(KeyID{limitOf(s.id, cl), KeyOf(cl, f)})
		}
		if s.e.Action == acl.Permit {
			return
		}
	}
}
