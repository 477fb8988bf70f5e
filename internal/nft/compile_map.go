package nft

import (
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/google/nftables/expr"

	"github.com/slxsh/slxsh/internal/acl"
)

// Classification maps: runs of entries that no connection can match two
// of are one verdict-map lookup instead of one rule each (doc.go, "Maps").
//
// Why it keeps first-match semantics: inside a run at most one entry can
// match a connection, so the order of its entries decides nothing; a
// connection that matches none of them goes on to the rule after the
// lookup, as it would have passed the run's rules one by one. The kernel's
// interval map (pipapo) cannot order overlapping elements, which is why a
// run never holds two entries that acl.Entry.Overlaps says could meet.

// DefaultMapRun is the fewest entries that Compile puts in a map when
// Options.MapRun is 0: shorter runs stay rules, which read better in
// `nft list` and cost as little.
const DefaultMapRun = 8

// maxIrregular bounds the entries with prefixes or port ranges in one run
// (each later entry is compared with all of them), and maxRunChecks the
// run an irregular entry may join (it is compared with every entry).
const (
	maxIrregular = 64
	maxRunChecks = 4096
)

// MapFields tells which packet fields a classification map's key holds,
// concatenated in this order.
type MapFields uint8

// The fields of a classification key.
const (
	FieldSrc MapFields = 1 << iota
	FieldDst
	FieldProto
	FieldSPort
	FieldDPort
)

const nFields = 5

// VMap is the content of a classification map: one or two interval
// elements per entry (`neq` is two port ranges), in seq order. A verdict
// map's elements go to their entries' chains (Set.Kind SetVerdictMap); a
// counter map's name the counter of a plain permit (SetCounterMap, see
// mapRules).
type VMap struct {
	Family   acl.Family
	Fields   MapFields
	Counters bool // a counter map
	Elems    []MapElem

	chains []*Chain               // the chain of each element, when Compile made the map (flattener; a counter map's are views only)
	enc    atomic.Pointer[[]byte] // MarshalBinary, encoded once (a map does not change once built)
}

// MapElem is one element: the ranges of each field and where a match goes
// (goto the entry's chain, or jump for a deny with limits, which goes on
// to the next rule when under its limits), or, in a counter map, the
// counter that a match counts.
type MapElem struct {
	Seq              int
	Src, Dst         netip.Prefix
	ProtoLo, ProtoHi uint8
	SPortLo, SPortHi uint16
	DPortLo, DPortHi uint16
	Jump             bool
	Chain            string
	Counter          string
}

// MapSetName is the map of the run that starts with entry ref and has
// a key of fields f: `ip_check_in_map10_1d`.
//
// Why the fields are in the name: google/nftables v0.3.0 reads a verdict
// map's key type back as "verdict", so a map whose key changed could not
// be told apart from the one the kernel holds (and adding it anew fails
// the transaction); a new key is a new map.
func MapSetName(ref EntryRef, f MapFields) string { return shorten(mapBase(ref, f)) }

// CounterMapSetName is the counter map of the same run:
// `ip_check_in_map10_1d_c`.
func CounterMapSetName(ref EntryRef, f MapFields) string { return shorten(mapBase(ref, f) + "_c") }

func mapBase(ref EntryRef, f MapFields) string {
	return famPrefix(ref.Family) + "_" + ref.ACL + "_" + ref.Dir.String() + "_map" + strconv.Itoa(ref.Seq) +
		"_" + strconv.FormatUint(uint64(f), 16)
}

// mapComment is the comment of a map's lookup rule: `acl=check dir=in
// map=10`, and `... map=10 counters` for its counter map (ParseComment
// takes neither for an entry's rule).
func mapComment(first EntryRef, counters bool) string {
	c := strings.TrimSuffix(RuleComment(EntryRef{first.Family, first.ACL, first.Dir, 0}, ""), " implicit-deny") +
		" map=" + strconv.Itoa(first.Seq)
	if counters {
		c += " counters"
	}
	return c
}

// EntryChainName is the chain of an entry in a map: its rules without
// its match.
func EntryChainName(ref EntryRef) string { return shorten(ref.base()) }

// mapRun returns the smallest run Compile maps (Options.MapRun).
func (b *builder) mapRun() int {
	switch n := b.opt.MapRun; {
	case n < 0:
		return 0 // never
	case n == 0:
		return DefaultMapRun
	case n < 2:
		return 2
	default:
		return n
	}
}

// entries compiles the entries of an ACL chain in seq order: runs of
// mappable entries of at least mapRun as one lookup each, the others as
// rules. A run also ends at a chunk boundary (chunkEnd), so that a change
// of one entry of a long list changes one map of a few thousand elements;
// a run that the cache kept, with the same entries and the same reason to
// end, is taken whole (cachedRun).
func (b *builder) entries(k chainKey, list []*acl.Entry) ([]*Rule, []*Chain) {
	var rules []*Rule
	var chains []*Chain
	minRun := b.mapRun()
	var run runIndex
	cc := b.cursor(k)
	flush := func(end runEnd) {
		if len(run.entries) >= minRun && minRun > 0 {
			r, ch := b.mappedRun(k, cc, run.entries, end)
			rules, chains = append(rules, r...), append(chains, ch...)
		} else {
			for _, e := range run.entries {
				out := b.cachedEntry(cc, e, false, func() *entryOut { return b.ruleEntry(k, e) })
				rules, chains = append(rules, out.rules...), append(chains, out.chains...)
			}
		}
		run = runIndex{}
	}
	for i := 0; i < len(list); i++ {
		e := list[i]
		if e.Action == acl.Remark {
			continue
		}
		if minRun == 0 || !mappable(e) {
			flush(runEnd{after: e})
			out := b.cachedEntry(cc, e, false, func() *entryOut { return b.ruleEntry(k, e) })
			rules, chains = append(rules, out.rules...), append(chains, out.chains...)
			continue
		}
		if len(run.entries) == 0 {
			if r, n := b.cachedRun(cc, list[i:]); r != nil {
				rules, chains = append(rules, r.rules...), append(chains, r.chains...)
				i += n - 1
				continue
			}
		}
		if !run.admits(e) {
			flush(runEnd{after: e})
		}
		run.add(e)
		if n := len(run.entries); (n >= mapChunkMin && chunkEnd(e)) || n >= mapChunkMax {
			flush(runEnd{boundary: true})
		}
	}
	flush(runEnd{})
	return rules, chains
}

// Chunks: a run of a long list is cut after an entry that chunkEnd picks
// by its content (its seq and match, one in chunkOdds), once it holds
// mapChunkMin entries, and at mapChunkMax whatever: about 2048 entries a
// map, the cuts where they were whatever changes elsewhere, and a list of
// up to mapChunkMin entries one map.
//
// Why not one map: a change is one element, but the kernel's interval
// map rebuilds its lookup tables on every commit that changes it, in time
// linear in its elements (nft_pipapo_remove, pipapo_clone), and the
// Applier's digest, state and element diff read the whole map. Why not
// smaller: each map is one more lookup for a new connection that passes
// it (the kernel's interval map scans bitmaps as long as its elements, so
// what chunks add is the cost of a call each). Measured at 50k entries
// (a commit's kernel time for a one-element change), maps of about 1024
// entries 50-75 ms, 4096 70-100 ms, 16384 70-120 ms.
const (
	chunkOdds   = 1024
	mapChunkMin = 1024
	mapChunkMax = 8192
)

// chunkEnd reports whether a run may be cut after e (for about one entry
// in chunkOdds).
func chunkEnd(e *acl.Entry) bool {
	h := uint64(e.Seq)*0x9e3779b97f4a7c15 ^ uint64(e.DstPort.Lo)<<32 ^ uint64(e.SrcPort.Lo)<<48
	for _, a := range []netip.Addr{e.Src.Prefix.Addr(), e.Dst.Prefix.Addr()} {
		if a.Is4() {
			v := a.As4()
			h ^= uint64(v[0])<<24 | uint64(v[1])<<16 | uint64(v[2])<<8 | uint64(v[3])
		}
		h *= 0xbf58476d1ce4e5b9
		h ^= h >> 31
	}
	return h%chunkOdds == 0
}

// runEnd is why a run ended: at a chunk boundary, before an entry that
// could not join it (after), or at the end of the list (neither).
type runEnd struct {
	boundary bool
	after    *acl.Entry
}

// ruleEntry compiles an entry as rules of its list's chain.
func (b *builder) ruleEntry(k chainKey, e *acl.Entry) *entryOut {
	rules, chains := b.entryRules(k, e)
	return &entryOut{rules: rules, chains: chains}
}

// mappable reports whether a key of addresses, protocol and ports says
// all that the entry's match says: no wildcard, time range or socket
// owner.
func mappable(e *acl.Entry) bool {
	return e.TimeRange == "" && e.Owner == nil && e.Src.Kind != acl.AddrWildcard && e.Dst.Kind != acl.AddrWildcard &&
		e.Proto >= acl.ProtoAny && e.Proto <= 255
}

// portProto reports whether every packet of the protocol has the two
// port fields that a key with ports loads (a load past the end of a
// packet fails the lookup).
func portProto(p int) bool { return p == acl.ProtoTCP || p == acl.ProtoUDP || p == acl.ProtoSCTP }

func hasPorts(e *acl.Entry) bool { return e.SrcPort.Op != acl.PortNone || e.DstPort.Op != acl.PortNone }

// mapRules compiles a run: its entries' chains and the lookup rules.
//
// Plain permits (whose chain would only count and leave the list) are
// elements of a counter map, `counter name KEY map @M_c return`, and have
// no chain; the other entries are elements of the verdict map, `KEY vmap
// @M`, after it. Why two maps: the kernel validates the whole table on
// every commit that adds a `goto` or `jump` element (nft_table_validate,
// 35-53 ms at 50k entries), and a counter element does not need it, so a
// change of a plain permit costs what its element costs (BENCHMARKS.md).
// Inside a run no two entries can meet, so the order of the two lookups
// decides nothing: a connection matches at most one element of either.
func (b *builder) mapRules(k chainKey, cc *cacheCursor, run []*acl.Entry) ([]*Rule, []*Chain) {
	first := EntryRef{k.fam, k.name, k.dir, run[0].Seq}
	vm := &VMap{Family: k.fam, Elems: make([]MapElem, 0, len(run)), chains: make([]*Chain, 0, len(run))}
	cm := &VMap{Family: k.fam, Counters: true}
	chains := make([]*Chain, 0, len(run))
	var fields MapFields
	for _, e := range run {
		out := b.cachedEntry(cc, e, true, func() *entryOut { return b.mappedEntry(k, e) })
		if out.elems == nil {
			continue // an error, reported
		}
		m, view := vm, out.view
		if view != nil {
			m = cm
		} else {
			chains = append(chains, out.chains...)
			view = out.chains[0]
		}
		m.Elems = append(m.Elems, out.elems...)
		for range out.elems {
			m.chains = append(m.chains, view)
		}
		fields |= entryFields(e)
	}
	fields = keyFields(fields)
	var rules []*Rule
	for _, m := range []*VMap{cm, vm} {
		if len(m.Elems) == 0 {
			continue
		}
		m.Fields = fields
		name, kind := MapSetName(first, fields), SetVerdictMap
		if m.Counters {
			name, kind = CounterMapSetName(first, fields), SetCounterMap
		}
		b.rs.Sets = append(b.rs.Sets, &Set{Name: name, Kind: kind, Map: m, Entry: first})
		rules = append(rules, &Rule{
			Comment: mapComment(first, m.Counters),
			Stmts:   []Stmt{&MapLookup{Family: k.fam, Fields: fields, Set: name, Counters: m.Counters}},
		})
	}
	return rules, chains
}

// mappedEntry compiles an entry of a map: its chain (its rules without
// its match) first, the chains of its own, and its elements; or, for a
// plain permit, the elements of a counter map and the view of the chain
// it would have had.
func (b *builder) mappedEntry(k chainKey, e *acl.Entry) *entryOut {
	ref := EntryRef{k.fam, k.name, k.dir, e.Seq}
	path := entryPath(k, e)
	if !b.supported(path, e) {
		return &entryOut{}
	}
	if _, _, ok := b.match(path, k.fam, e); !ok {
		return &entryOut{}
	}
	var residual []Stmt
	if e.Proto != acl.ProtoAny {
		// nft's context for `reject with tcp reset` and the like:
		// the key matched it already, this costs one comparison.
		residual = []Stmt{&L4Proto{Proto: uint8(e.Proto)}}
	}
	rules, own := b.entryRulesWith(k, e, ref, residual, ruleCtx{})
	if rules == nil {
		return &entryOut{}
	}
	ch := &Chain{Name: EntryChainName(ref), Rules: rules, Mapped: true}
	elems := mapElems(k.fam, e)
	if c := countsOnly(ch, own, len(residual)); c != "" {
		for i := range elems {
			elems[i].Seq, elems[i].Counter = e.Seq, c
		}
		return &entryOut{elems: elems, view: ch} // what counterView makes of the element
	}
	// A permit or a plain refusal ends the connection's walk of the list
	// (goto: the chain's return leaves the list); a deny with limits goes
	// on to the next entry when under them (jump).
	for i := range elems {
		elems[i].Seq, elems[i].Jump, elems[i].Chain = e.Seq, e.Action != acl.Permit, ch.Name
	}
	return &entryOut{chains: append([]*Chain{ch}, own...), elems: elems}
}

// countsOnly returns the counter of an entry's chain that only counts
// and leaves the list (its residual, `counter name C return`), "" for
// any other.
func countsOnly(ch *Chain, own []*Chain, residual int) string {
	if len(own) > 0 || len(ch.Rules) != 1 || len(ch.Rules[0].Stmts) != residual+2 {
		return ""
	}
	st := ch.Rules[0].Stmts[residual:]
	c, ok := st[0].(*CounterRef)
	v, vok := st[1].(*Verdict)
	if !ok || !vok || v.Kind != expr.VerdictReturn {
		return ""
	}
	return c.Name
}

// counterView is the chain that a counter map's element stands for, as
// the entry would have had it (its residual, `counter name C return`):
// what the views of a list (flattener) show for the entry.
func counterView(ref EntryRef, el *MapElem) *Chain {
	var st []Stmt
	if el.ProtoLo == el.ProtoHi {
		st = append(st, &L4Proto{Proto: el.ProtoLo})
	}
	st = append(st, &CounterRef{Name: el.Counter}, &Verdict{Kind: expr.VerdictReturn})
	return &Chain{Name: EntryChainName(ref), Mapped: true, Rules: []*Rule{{Comment: RuleComment(ref, ""), Stmts: st}}}
}

// entryFields are the fields an entry constrains.
func entryFields(e *acl.Entry) MapFields {
	var f MapFields
	if e.Src.Kind != acl.AddrAny {
		f |= FieldSrc
	}
	if e.Dst.Kind != acl.AddrAny {
		f |= FieldDst
	}
	if e.Proto != acl.ProtoAny {
		f |= FieldProto
	}
	if e.SrcPort.Op != acl.PortNone {
		f |= FieldSPort
	}
	if e.DstPort.Op != acl.PortNone {
		f |= FieldDPort
	}
	return f
}

// keyFields completes the fields of a run to a key: ports need the
// protocol, and the kernel's interval map for concatenations (which
// stores ranges as they are) needs at least two fields.
func keyFields(f MapFields) MapFields {
	if f&(FieldSPort|FieldDPort) != 0 {
		f |= FieldProto
	}
	for _, add := range []MapFields{FieldProto, FieldSrc} {
		if n := countFields(f); n < 2 {
			f |= add
		}
	}
	return f
}

func countFields(f MapFields) int {
	n := 0
	for i := range nFields {
		if f&(1<<i) != 0 {
			n++
		}
	}
	return n
}

// mapElems are the ranges of an entry's match: one element, or two for a
// port `neq` (four for two).
func mapElems(f acl.Family, e *acl.Entry) []MapElem {
	el := MapElem{Src: prefixOf(f, e.Src), Dst: prefixOf(f, e.Dst), ProtoHi: 255}
	if e.Proto != acl.ProtoAny {
		el.ProtoLo, el.ProtoHi = uint8(e.Proto), uint8(e.Proto)
	}
	sp, ns := portRanges(e.SrcPort)
	dp, nd := portRanges(e.DstPort)
	out := make([]MapElem, 0, ns*nd)
	for _, s := range sp[:ns] {
		for _, d := range dp[:nd] {
			el.SPortLo, el.SPortHi, el.DPortLo, el.DPortHi = s[0], s[1], d[0], d[1]
			out = append(out, el)
		}
	}
	return out
}

// portRanges are the port intervals of a port match: the first n of
// the two.
func portRanges(m acl.PortMatch) (r [2][2]uint16, n int) {
	switch m.Op {
	case acl.PortEq:
		return [2][2]uint16{{m.Lo, m.Lo}}, 1
	case acl.PortNeq:
		if m.Lo > 0 {
			r[n] = [2]uint16{0, m.Lo - 1}
			n++
		}
		if m.Lo < 65535 {
			r[n] = [2]uint16{m.Lo + 1, 65535}
			n++
		}
		return r, n
	case acl.PortLt:
		return [2][2]uint16{{0, m.Lo - 1}}, 1
	case acl.PortGt:
		return [2][2]uint16{{m.Lo + 1, 65535}}, 1
	case acl.PortRange:
		return [2][2]uint16{{m.Lo, m.Hi}}, 1
	}
	return [2][2]uint16{{0, 65535}}, 1
}

// prefixOf is an address match as a prefix (any: the whole family).
func prefixOf(f acl.Family, a acl.Addr) netip.Prefix {
	if a.Kind == acl.AddrPrefix {
		return a.Prefix
	}
	if f == acl.IPv6 {
		return netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	return netip.PrefixFrom(netip.IPv4Unspecified(), 0)
}

// runIndex is a run being formed, with what tells quickly whether a new
// entry could meet one already in it.
//
// An entry is regular when each of its fields is a point (host, protocol,
// `eq` port) or any; its shape is the set of its point fields. Two regular
// entries meet exactly when they agree on the point fields they share
// (a point meets any), so each shape keeps the projections of its entries
// on the masks asked for, and a new regular entry is one lookup per shape
// present. Irregular entries (prefixes, port ranges) are compared one by
// one (acl.Entry.Overlaps), and bounded in number.
type runIndex struct {
	entries   []*acl.Entry
	ports     bool // an entry has ports: only tcp, udp and sctp entries may join
	otherProt bool // an entry has another protocol or any
	irregular []*acl.Entry
	shapes    map[uint8][]*acl.Entry               // regular entries by shape
	proj      map[[2]uint8]map[projection]struct{} // (shape, mask) -> projections
}

func (r *runIndex) admits(e *acl.Entry) bool {
	if len(r.entries) == 0 {
		return true
	}
	if (r.ports && !portProto(e.Proto)) || (hasPorts(e) && r.otherProt) {
		return false
	}
	for _, o := range r.irregular {
		if o.Overlaps(e) {
			return false
		}
	}
	shape, ok := shapeOf(e)
	if !ok {
		if len(r.irregular) >= maxIrregular || len(r.entries) > maxRunChecks {
			return false
		}
		for _, list := range r.shapes {
			for _, o := range list {
				if o.Overlaps(e) {
					return false
				}
			}
		}
		return true
	}
	for s := range r.shapes {
		m := shape & s
		if _, hit := r.projection(s, m)[project(e, m)]; hit {
			return false
		}
	}
	return true
}

func (r *runIndex) add(e *acl.Entry) {
	r.entries = append(r.entries, e)
	r.ports = r.ports || hasPorts(e)
	r.otherProt = r.otherProt || !portProto(e.Proto)
	shape, ok := shapeOf(e)
	if !ok {
		r.irregular = append(r.irregular, e)
		return
	}
	if r.shapes == nil {
		r.shapes, r.proj = map[uint8][]*acl.Entry{}, map[[2]uint8]map[projection]struct{}{}
	}
	r.shapes[shape] = append(r.shapes[shape], e)
	for key, set := range r.proj {
		if key[0] == shape {
			set[project(e, key[1])] = struct{}{}
		}
	}
}

// projection returns the projections of the entries of shape s on mask m.
func (r *runIndex) projection(s, m uint8) map[projection]struct{} {
	key := [2]uint8{s, m}
	if set, ok := r.proj[key]; ok {
		return set
	}
	set := make(map[projection]struct{}, len(r.shapes[s]))
	for _, o := range r.shapes[s] {
		set[project(o, m)] = struct{}{}
	}
	r.proj[key] = set
	return set
}

// shapeOf returns the point fields of a regular entry (ok false when a
// field is neither a point nor any).
func shapeOf(e *acl.Entry) (uint8, bool) {
	var s uint8
	for i, a := range []acl.Addr{e.Src, e.Dst} {
		switch {
		case a.Kind == acl.AddrAny:
		case a.Kind == acl.AddrPrefix && a.Prefix.IsSingleIP():
			s |= 1 << i
		default:
			return 0, false
		}
	}
	if e.Proto != acl.ProtoAny {
		s |= 1 << 2
	}
	for i, p := range []acl.PortMatch{e.SrcPort, e.DstPort} {
		switch p.Op {
		case acl.PortNone:
		case acl.PortEq:
			s |= 1 << (3 + i)
		default:
			return 0, false
		}
	}
	return s, true
}

// projection is the point fields of a mask of a regular entry, the
// others zero.
type projection struct {
	src, dst     netip.Addr
	proto        int
	sport, dport uint16
}

// project returns the point fields of mask m of a regular entry.
func project(e *acl.Entry, m uint8) projection {
	var p projection
	if m&1 != 0 {
		p.src = e.Src.Prefix.Addr()
	}
	if m&2 != 0 {
		p.dst = e.Dst.Prefix.Addr()
	}
	if m&4 != 0 {
		p.proto = e.Proto
	}
	if m&8 != 0 {
		p.sport = e.SrcPort.Lo
	}
	if m&16 != 0 {
		p.dport = e.DstPort.Lo
	}
	return p
}
