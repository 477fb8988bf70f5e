package acl

import "sync"

// contentIndex finds a list's entries by content (entryKey) for AddEntry,
// which would otherwise compare a new entry with every entry of its list:
// O(n²) for a 65535-entry config (about 20 s). It lives outside ACL so
// that equal configurations stay reflect.DeepEqual, and it is tied to the
// Entries slice it was built for (same backing array and length): a list
// changed any other way than through AddEntry gets a new index, built in
// O(n), the next time.
//
// A list's first index is not built: it looks at every entry (SameContent,
// which allocates nothing), and the list's next use builds one. A change
// of one entry of a big list on a fresh clone (the agent's transaction)
// so costs one pass over the entries instead of an index of them; a list
// being filled line by line builds its index at the second line.
type contentIndex struct {
	first   *(*Entry) // &Entries[0] (nil for an empty list)
	n       int
	byKey   map[entryKey][]*Entry // nil: not built, scan entries
	entries []*Entry
}

// maxIndexes bounds the indexes kept: a few lists being built or changed
// at once (a parse, the agent's running config and its next one).
const maxIndexes = 8

var indexes = indexSet{byACL: map[*ACL]*contentIndex{}}

type indexSet struct {
	sync.Mutex
	byACL map[*ACL]*contentIndex
}

func (s *indexSet) add(a *ACL, ix *contentIndex) {
	if _, ok := s.byACL[a]; !ok && len(s.byACL) >= maxIndexes {
		clear(s.byACL)
	}
	s.byACL[a] = ix
}

// withIndex runs f with the list's content index: at the list's first use
// one that scans the entries, else one built if it is a scan or was built
// for another slice; f may update the index with add.
func (a *ACL) withIndex(f func(ix *contentIndex)) {
	indexes.Lock()
	defer indexes.Unlock()
	ix := indexes.byACL[a]
	switch {
	case ix == nil:
		ix = &contentIndex{entries: a.Entries}
		indexes.add(a, ix)
	case ix.byKey == nil || !ix.covers(a.Entries):
		ix = &contentIndex{byKey: make(map[entryKey][]*Entry, len(a.Entries))}
		for _, e := range a.Entries {
			k := contentKey(e)
			ix.byKey[k] = append(ix.byKey[k], e)
		}
		indexes.add(a, ix)
	}
	ix.note(a.Entries)
	f(ix)
	ix.note(a.Entries)
	ix.entries = nil
}

func (ix *contentIndex) covers(es []*Entry) bool {
	if len(es) != ix.n {
		return false
	}
	return len(es) == 0 || &es[0] == ix.first
}

func (ix *contentIndex) note(es []*Entry) {
	ix.n, ix.first = len(es), nil
	if len(es) > 0 {
		ix.first = &es[0]
	}
}

// same returns an entry of the list with e's content (any seq), or nil.
func (ix *contentIndex) same(e *Entry) *Entry {
	if ix.byKey == nil {
		for _, o := range ix.entries {
			if SameContent(o, e) {
				return o
			}
		}
		return nil
	}
	if es := ix.byKey[contentKey(e)]; len(es) > 0 {
		return es[0]
	}
	return nil
}

func (ix *contentIndex) add(e *Entry) {
	if ix.byKey == nil {
		return // the next use builds the index
	}
	k := contentKey(e)
	ix.byKey[k] = append(ix.byKey[k], e)
}
