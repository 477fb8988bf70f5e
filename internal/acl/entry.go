package acl

import (
	"cmp"
	"encoding/binary"
	"hash/maphash"
	"net/netip"
	"slices"
)

// Clone returns a deep copy of the entry.
func (e *Entry) Clone() *Entry {
	n := *e
	n.Connlimits = slices.Clone(e.Connlimits)
	n.Rate = clonePtr(e.Rate)
	n.Quota = clonePtr(e.Quota)
	n.BlockFor = clonePtr(e.BlockFor)
	n.LoadLimit = clonePtr(e.LoadLimit)
	n.Owner = clonePtr(e.Owner)
	return &n
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// SameContent reports whether two entries are equal apart from their Seq
// (the test for a duplicate entry).
func SameContent(a, b *Entry) bool {
	return sameMatch(a, b) && contentKey(a) == contentKey(b)
}

// SameEntry is SameContent with the spellings of defaults aside: `count`
// (counting is always on) and `refuse reset` (the default refusal) are
// the entry without them. It tells an entry re-sent on its seq, and the
// one `no ...` means. (Duplicates stay exact: two entries that differ so
// were accepted once, and a saved config holding them must load.)
func SameEntry(a, b *Entry) bool {
	return a.Action == b.Action && a.Proto == b.Proto && a.Src == b.Src && a.Dst == b.Dst && plainKey(a) == plainKey(b)
}

// TrafficKey is what connections an entry decides (the action on the
// protocol, addresses, ports and user), whatever its seq and limits:
// across a change, which entry of the new list is an entry of the old one
// (its lockouts go with it).
type TrafficKey struct {
	action           Action
	proto            int
	src, dst         Addr
	srcPort, dstPort PortMatch
	owner            Owner
}

// TrafficOf is e's TrafficKey.
func TrafficOf(e *Entry) TrafficKey {
	k := TrafficKey{action: e.Action, proto: e.Proto, src: e.Src, dst: e.Dst,
		srcPort: portKey(e.SrcPort), dstPort: portKey(e.DstPort), owner: Owner{UID: -1}}
	if e.Owner != nil {
		k.owner = *e.Owner
	}
	return k
}

// sameMatch compares the cheap fields first: AddEntry compares against
// every entry of a list.
func sameMatch(a, b *Entry) bool {
	return a.Action == b.Action && a.Proto == b.Proto && a.DstPort == b.DstPort &&
		a.Src == b.Src && a.Dst == b.Dst && a.Remark == b.Remark
}

// portKey is a port match in one spelling: `range P P` is `eq P`.
func portKey(m PortMatch) PortMatch {
	if m.Op == PortRange && m.Lo == m.Hi {
		return PortMatch{Op: PortEq, Lo: m.Lo}
	}
	return m
}

// plainKey is contentKey in one spelling (SameEntry): without the
// spellings of defaults, `range P P` as `eq P`, a quota as its bytes.
func plainKey(e *Entry) entryKey {
	k := contentKey(e)
	k.count = false
	if k.refuse.Kind == RefuseReset {
		k.refuse.Kind = RefuseDefault
	}
	k.srcPort, k.dstPort = portKey(k.srcPort), portKey(k.dstPort)
	if b, ok := k.quota.inRange(); k.hasQuota && ok { // one out of range stays as it is (and invalid)
		k.quota.N, k.quota.Unit = b, Bytes
	}
	return k
}

// spellings are the entries that are e (SameEntry) in every spelling, e
// first: with and without `count`, with the default refusal or `refuse
// reset`, ports `eq P` or `range P P`, a quota in each unit that divides
// it. Each kind of spelling multiplies those before it.
func spellings(e *Entry) []*Entry {
	vs := []Entry{*e}
	for _, alts := range []func(Entry) []Entry{countSpellings, refuseSpellings, portSpellings, quotaSpellings} {
		var next []Entry
		for _, v := range vs {
			next = append(next, alts(v)...) // v first: e stays vs[0]
		}
		vs = next
	}
	out := []*Entry{e}
	for i := 1; i < len(vs); i++ {
		out = append(out, &vs[i])
	}
	return out
}

// countSpellings are v with and without `count`, v first.
func countSpellings(v Entry) []Entry {
	w := v
	w.Count = !v.Count
	return []Entry{v, w}
}

// refuseSpellings are v, and with the default refusal spelled the other
// way (none or `refuse reset`).
func refuseSpellings(v Entry) []Entry {
	w := v
	switch v.Refuse.Kind {
	case RefuseDefault:
		w.Refuse.Kind = RefuseReset
	case RefuseReset:
		w.Refuse.Kind = RefuseDefault
	default:
		return []Entry{v}
	}
	return []Entry{v, w}
}

// portSpellings are v with each of its port matches as `eq P` and as
// `range P P`, v first.
func portSpellings(v Entry) []Entry {
	out := []Entry{v}
	for _, get := range []func(*Entry) *PortMatch{func(e *Entry) *PortMatch { return &e.SrcPort }, func(e *Entry) *PortMatch { return &e.DstPort }} {
		for _, u := range out {
			m := get(&u)
			var alt PortMatch
			switch {
			case m.Op == PortEq:
				alt = PortMatch{Op: PortRange, Lo: m.Lo, Hi: m.Lo}
			case m.Op == PortRange && m.Lo == m.Hi:
				alt = PortMatch{Op: PortEq, Lo: m.Lo}
			default:
				continue
			}
			*m = alt
			out = append(out, u)
		}
	}
	return out
}

// quotaSpellings are v and v with its quota's bytes in every other unit
// that divides them (an amount out of range has none).
func quotaSpellings(v Entry) []Entry {
	out := []Entry{v}
	q := v.Quota
	if q == nil {
		return out
	}
	bytes, ok := q.inRange()
	if !ok {
		return out
	}
	for u := Bytes; u <= GBytes; u++ {
		if u != q.Unit && bytes%u.Size() == 0 {
			alt := *q
			alt.N, alt.Unit = bytes/u.Size(), u
			w := v
			w.Quota = &alt
			out = append(out, w)
		}
	}
	return out
}

// inRange returns the quota's bytes, and false when they are more than
// MaxQuotaBytes (or would overflow).
func (q Quota) inRange() (uint64, bool) {
	if q.N > MaxQuotaBytes/q.Unit.Size() {
		return 0, false
	}
	return q.N * q.Unit.Size(), true
}

// entryKey is an entry's content without Seq, as a comparable value (the
// option pointers replaced by their values and a presence bit).
type entryKey struct {
	action                 Action
	remark, timeRange      string
	proto                  int
	src, dst               Addr
	srcPort, dstPort       PortMatch
	connlimits             [MaxConnlimits]Connlimit
	nConnlimits            int
	rate                   Rate
	quota                  Quota
	blockFor               BlockFor
	loadLimit              LoadLimit
	owner                  Owner
	refuse                 Refuse
	log, count             bool
	hasRate                bool
	hasQuota, hasBlockFor  bool
	hasLoadLimit, hasOwner bool
}

func contentKey(e *Entry) entryKey {
	k := entryKey{
		action: e.Action, remark: e.Remark, timeRange: e.TimeRange, proto: e.Proto,
		src: e.Src, dst: e.Dst, srcPort: e.SrcPort, dstPort: e.DstPort,
		refuse: e.Refuse, log: e.Log, count: e.Count,
	}
	k.nConnlimits = len(e.Connlimits)
	copy(k.connlimits[:], e.Connlimits) // sorted (SortConnlimits); more than MaxConnlimits is invalid
	k.rate, k.hasRate = deref(e.Rate)
	k.quota, k.hasQuota = deref(e.Quota)
	k.blockFor, k.hasBlockFor = deref(e.BlockFor)
	k.loadLimit, k.hasLoadLimit = deref(e.LoadLimit)
	k.owner, k.hasOwner = deref(e.Owner)
	return k
}

func deref[T any](p *T) (T, bool) {
	if p == nil {
		var zero T
		return zero, false
	}
	return *p, true
}

// Limited reports whether the entry carries a limit (connlimit, rate or quota).
func (e *Entry) Limited() bool { return len(e.Connlimits) > 0 || e.Rate != nil || e.Quota != nil }

// Drops reports whether the entry refuses by dropping silently (hard-drop,
// or `refuse drop`).
func (e *Entry) Drops() bool { return e.Action == HardDrop || e.Refuse.Kind == RefuseDrop }

// LimitKey is what a connlimit counts by, with a per-prefix length of 0 or
// of the whole address taken as total or per-source (as the compiler
// keys them); two connlimits of an entry may not have the same.
func (c Connlimit) LimitKey(f Family) (KeyKind, int) {
	if c.Key == PerPrefix {
		switch {
		case c.PrefixLen <= 0:
			return Total, 0
		case c.PrefixLen >= f.Bits():
			return PerSource, 0
		}
		return PerPrefix, c.PrefixLen
	}
	return c.Key, 0
}

// SortConnlimits puts connlimits in their canonical order: per-source,
// per-prefix from the longest prefix, per-destination, total.
func SortConnlimits(cs []Connlimit) {
	slices.SortStableFunc(cs, func(a, b Connlimit) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(b.PrefixLen, a.PrefixLen), cmp.Compare(a.N, b.N))
	})
}

// Key is the whole of an entry as a comparable value: entries with equal
// keys are equal in every field (the compiler's cache tells unchanged
// entries by it). Only for valid entries (at most MaxConnlimits).
type Key struct {
	seq     int
	content entryKey
}

// Key returns the entry's Key.
func (e *Entry) Key() Key { return Key{e.Seq, contentKey(e)} }

// Seq is the seq of the entry whose Key k is.
func (k Key) Seq() int { return k.seq }

// hash is a hash of the key for buckets of entries (entryBuckets), which
// compare keys within a bucket.
func (k *entryKey) hash() uint64 {
	h := uint64(k.action)<<56 ^ uint64(k.proto)<<40 ^ uint64(k.nConnlimits)<<32 ^ uint64(k.refuse.Kind)<<24
	h ^= flags(k.log, k.hasRate, k.hasQuota, k.hasBlockFor, k.hasLoadLimit, k.hasOwner, k.blockFor.Flush, k.quota.PerSource)
	h = mix(h, uint64(k.srcPort.Op)<<32|uint64(k.srcPort.Lo)<<16|uint64(k.srcPort.Hi))
	h = mix(h, uint64(k.dstPort.Op)<<32|uint64(k.dstPort.Lo)<<16|uint64(k.dstPort.Hi))
	for _, a := range [...]*Addr{&k.src, &k.dst} {
		h = mix(h, uint64(a.Kind)<<8|uint64(a.Prefix.Bits()&0xff))
		for _, x := range [...]netip.Addr{a.Prefix.Addr(), a.Base, a.Wildcard} {
			b := x.As16()
			h = mix(h, binary.BigEndian.Uint64(b[:8]))
			h = mix(h, binary.BigEndian.Uint64(b[8:]))
			h = mix(h, maphash.String(hashSeed, x.Zone()))
		}
	}
	for _, c := range k.connlimits[:min(k.nConnlimits, MaxConnlimits)] {
		h = mix(h, uint64(c.N)<<16|uint64(c.Key)<<8|uint64(c.PrefixLen&0xff))
	}
	h = mix(h, uint64(k.rate.N)<<16|uint64(k.rate.Per)<<8|uint64(k.rate.Key))
	h = mix(h, uint64(k.rate.Burst))
	h = mix(h, k.quota.N<<16|uint64(k.quota.Per)<<8|uint64(k.quota.Unit))
	h = mix(h, uint64(k.blockFor.Seconds)<<32|uint64(k.loadLimit.Hundredths))
	h = mix(h, uint64(k.owner.UID))
	for _, s := range [...]string{k.remark, k.timeRange, k.owner.User, k.refuse.Message} {
		h = mix(h, maphash.String(hashSeed, s))
	}
	return h
}

var hashSeed = maphash.MakeSeed()

func flags(bs ...bool) uint64 {
	var f uint64
	for i, b := range bs {
		if b {
			f |= 1 << i
		}
	}
	return f
}

// mix adds v to the hash h (the multiply-xorshift of splitmix64).
func mix(h, v uint64) uint64 {
	h ^= v
	h *= 0xbf58476d1ce4e5b9
	return h ^ h>>31
}
