package acl

// ValidateChange returns what Validate(c) returns, for a c made from prev
// by the mutation API (or from a Clone of prev changed so), prev being a
// config that Validate accepted. It checks only what prev does not vouch
// for: the entries of c that prev does not hold (entries are immutable
// once in a config, so one that prev holds at its seq is valid) against
// the rest of their list; a list with many new entries, or with any
// error, is checked in full as Validate does, so the errors are the same.
func ValidateChange(prev, c *Config) error { return validate(c, prev) } // prev nil: Validate

// maxFresh is the most new entries of a list that ValidateChange checks
// against the others one by one (each a pass over the list) rather than
// checking the whole list.
const maxFresh = 32

// unchanged reports whether checking a's entries would find nothing, which
// it tells without checking the entries that v.prev holds: every entry of
// a is in seq order, and each one that v.prev's list does not hold at its
// seq is valid and unlike every other entry of a. With the time ranges
// changed, v.prev vouches for nothing (an entry's time-range may be gone).
func (v *validator) unchanged(a *ACL) bool {
	if v.prev == nil || !sameTimeRangeNames(v.look.TimeRanges, v.prev.TimeRanges) {
		return false
	}
	old := v.prev.ACL(a.Family, a.Name)
	if old == nil {
		return false
	}
	var fresh [maxFresh]*Entry
	n, i := 0, 0
	for j, e := range a.Entries {
		if e == nil || j > 0 && a.Entries[j-1].Seq >= e.Seq {
			return false
		}
		for i < len(old.Entries) && old.Entries[i].Seq < e.Seq {
			i++
		}
		if i < len(old.Entries) && old.Entries[i] == e {
			continue
		}
		if n == len(fresh) {
			return false
		}
		fresh[n], n = e, n+1
	}
	for _, e := range fresh[:n] {
		if len(checkEntry(v.look, a.Family, "", e)) > 0 || e.Action != Remark && hasTwin(a, e) {
			return false
		}
	}
	return true
}

// hasTwin reports whether another entry of a has e's content.
func hasTwin(a *ACL, e *Entry) bool {
	for _, o := range a.Entries {
		if o != e && SameContent(o, e) {
			return true
		}
	}
	return false
}

func sameTimeRangeNames(a, b []*TimeRange) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name {
			return false
		}
	}
	return true
}
