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
	built   bool
	byKey   entryBuckets // when built
	entries []*Entry     // when not: the entries to scan
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
	case !ix.built || !ix.covers(a.Entries):
		ix = &contentIndex{built: true, byKey: newEntryBuckets(len(a.Entries))}
		for _, e := range a.Entries {
			ix.byKey.add(e)
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
	if !ix.built {
		for _, o := range ix.entries {
			if SameContent(o, e) {
				return o
			}
		}
		return nil
	}
	return ix.byKey.same(e)
}

func (ix *contentIndex) add(e *Entry) {
	if ix.built { // else the next use builds the index
		ix.byKey.add(e)
	}
}

// keyHash is the hash of the buckets (a variable: a test puts every
// entry in one bucket).
var keyHash = (*entryKey).hash

// entryBuckets finds entries by content (SameContent): the entries are
// chained in buckets by a hash of their entryKey, an index and a link
// each. A map of entryKeys would take about 500 bytes an entry.
type entryBuckets struct {
	last map[uint64]int32 // bucket → index in es of its last entry
	prev []int32          // index of the entry before in its bucket, or -1
	es   []*Entry
}

func newEntryBuckets(n int) entryBuckets {
	return entryBuckets{last: make(map[uint64]int32, n), prev: make([]int32, 0, n), es: make([]*Entry, 0, n)}
}

// same returns the first entry added with e's content, or nil.
func (b *entryBuckets) same(e *Entry) *Entry {
	k := contentKey(e)
	return b.find(&k, keyHash(&k))
}

func (b *entryBuckets) find(k *entryKey, h uint64) *Entry {
	i, ok := b.last[h]
	var first *Entry
	for ; ok && i >= 0; i = b.prev[i] {
		if o := b.es[i]; contentKey(o) == *k {
			first = o // the bucket runs from the last added
		}
	}
	return first
}

// add adds e, even if an entry with its content is there.
func (b *entryBuckets) add(e *Entry) {
	k := contentKey(e)
	b.insert(e, keyHash(&k))
}

func (b *entryBuckets) insert(e *Entry, h uint64) {
	p, ok := b.last[h]
	if !ok {
		p = -1
	}
	b.prev = append(b.prev, p)
	b.last[h] = int32(len(b.es))
	b.es = append(b.es, e)
}

// sameOrAdd returns the first entry added with e's content, or adds e and
// returns nil.
func (b *entryBuckets) sameOrAdd(e *Entry) *Entry {
	k := contentKey(e)
	h := keyHash(&k)
	if o := b.find(&k, h); o != nil {
		return o
	}
	b.insert(e, h)
	return nil
}
