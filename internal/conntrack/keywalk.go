package conntrack

import "github.com/slxsh/slxsh/internal/acl"

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
func stops(e *acl.Entry) bool {
	return e.Action != acl.Remark && (e.Action == acl.Permit || !unseen(e))
}

// newKeyWalk lists b's limited entries with the earlier entries that
// overlap each and decide a flow they match. Earlier limited entries are
// steps of their own: a permit among them that matches ends the walk
// there, a deny counts and lets the flow go on.
func newKeyWalk(b Binding) keyWalk {
	var w keyWalk
	es := b.ACL.Entries
	for i, e := range es {
		if !limited(e) {
			continue
		}
		s := keyStep{e: e, id: EntryID{ACL: b.ACL.Name, Family: b.ACL.Family, Dir: b.Dir, Seq: e.Seq}}
		for _, o := range es[:i] {
			if !limited(o) && stops(o) && o.Overlaps(e) {
				s.before = append(s.before, o)
			}
		}
		w.steps = append(w.steps, s)
	}
	return w
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
