package acl

import "sync"

// contentIndex finds a list's entries by content (entryKey) for AddEntry,
// which would otherwise compare a new entry with every entry of its list:
// O(n²) for a 65535-entry config (about 20 s). It lives outside ACL so
// that equal configurations stay reflect.DeepEqual, and it is tied to the
// Entries slice it was built for (same backing array and length): a list
// changed any other way than through AddEntry gets a new index, built in
// O(n), the next time.
type contentIndex struct {
	first *(*Entry) // &Entries[0] (nil for an empty list)
	n     int
	byKey map[entryKey][]*Entry
}

// maxIndexes bounds the indexes kept: a few lists being built or changed
// at once (a parse, the agent's running config and its next one).
const maxIndexes = 8

var indexes = struct {
	sync.Mutex
	byACL map[*ACL]*contentIndex
}{byACL: map[*ACL]*contentIndex{}}

// withIndex runs f with the list's content index, built if it is missing
// or was built for another slice; f may update the index with add.
func (a *ACL) withIndex(f func(ix *contentIndex)) {
	indexes.Lock()
	defer indexes.Unlock()
	ix := indexes.byACL[a]
	if ix == nil || !ix.covers(a.Entries) {
		if len(indexes.byACL) >= maxIndexes {
			clear(indexes.byACL)
		}
		ix = &contentIndex{byKey: make(map[entryKey][]*Entry, len(a.Entries))}
		for _, e := range a.Entries {
			k := contentKey(e)
			ix.byKey[k] = append(ix.byKey[k], e)
		}
		ix.note(a.Entries)
		indexes.byACL[a] = ix
	}
	f(ix)
	ix.note(a.Entries)
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
	if es := ix.byKey[contentKey(e)]; len(es) > 0 {
		return es[0]
	}
	return nil
}

func (ix *contentIndex) add(e *Entry) {
	k := contentKey(e)
	ix.byKey[k] = append(ix.byKey[k], e)
}
