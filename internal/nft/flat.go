package nft

import (
	"iter"
	"slices"
	"strings"

	"github.com/google/nftables/expr"
)

// RoleMap is the role of the rule that stands for an entry's element in a
// flattened list (flatRules): the lookup that sends its connections to
// the entry's chain.
const RoleMap = "map"

// flattener expands the lookups of classification maps in an ACL chain
// into the entries they stand for, in seq order: per entry a rule for its
// elements, then the rules of its chain. It is the view of a list as one
// chain of rules, entry after entry, that Renewals and the packet-tracer
// read whatever form Compile chose.
type flattener struct {
	rs     *Ruleset
	maps   map[string]*Set
	chains map[string]*Chain // the entries' chains by name, when a map does not say (chainOf)
}

func newFlattener(rs *Ruleset) *flattener {
	f := &flattener{maps: map[string]*Set{}}
	for _, s := range rs.Sets {
		if s.Map != nil {
			f.maps[s.Name] = s
		}
	}
	f.rs = rs
	return f
}

// entries yields the elements of map s entry by entry (an entry's are
// next to each other), with the chain they go to.
func (f *flattener) entries(s *Set) iter.Seq2[[]MapElem, *Chain] {
	return func(yield func([]MapElem, *Chain) bool) {
		for at, elems := 0, s.Map.Elems; len(elems) > 0; {
			n := 1
			for n < len(elems) && elems[n].Seq == elems[0].Seq {
				n++
			}
			if !yield(elems[:n], f.chainOf(s, at)) {
				return
			}
			at, elems = at+n, elems[n:]
		}
	}
}

// chainOf returns the chain that element i of map s goes to (of a
// counter map: the chain it stands for, counterView).
func (f *flattener) chainOf(s *Set, i int) *Chain {
	if c := s.Map.chains; len(c) == len(s.Map.Elems) {
		return c[i] // as Compile made it
	}
	if el := &s.Map.Elems[i]; el.Counter != "" {
		ref := s.Entry
		ref.Seq = el.Seq
		return counterView(ref, el)
	}
	if f.chains == nil {
		f.chains = map[string]*Chain{}
		for _, ch := range f.rs.Chains {
			if ch.Mapped {
				f.chains[ch.Name] = ch
			}
		}
	}
	return f.chains[s.Map.Elems[i].Chain]
}

// rules returns the rules of ch with each map lookup expanded.
func (f *flattener) rules(ch *Chain) []*Rule {
	var out []*Rule
	for _, r := range ch.Rules {
		ml := mapLookupOf(r)
		if ml == nil || f.maps[ml.Set] == nil {
			out = append(out, r)
			continue
		}
		s := f.maps[ml.Set]
		head := ml.String() + " element { " // the same for every entry of the map
		for elems, ch := range f.entries(s) {
			ref := s.Entry
			ref.Seq = elems[0].Seq
			out = append(out, &Rule{Comment: RuleComment(ref, RoleMap), Stmts: []Stmt{&mapHit{head: head, fields: s.Map.Fields, elems: elems}}})
			if ch != nil {
				out = append(out, ch.Rules...)
			}
		}
	}
	return out
}

// groups returns the view of ch that Renewals compares: the same parts as
// rules gives, as runs of one entry's parts, sorted by seq (stable), and
// the list they are of. Parts are read from the ruleset, not rendered.
func (f *flattener) groups(ch *Chain) ([]viewGroup, EntryRef) {
	n := len(ch.Rules)
	for _, r := range ch.Rules {
		if ml := mapLookupOf(r); ml != nil && f.maps[ml.Set] != nil {
			n += len(f.maps[ml.Set].Map.Elems)
		}
	}
	out := make([]viewGroup, 0, n)
	var ref EntryRef
	// add appends rules (of one chain, in order) to the groups, a new
	// group where the seq changes; the first may continue g.
	add := func(g viewGroup, rules []*Rule) {
		start := 0
		for i, r := range rules {
			seq := 0
			if er, role, ok := r.entryRef(); ok {
				ref = er
				if role != RoleBlocked && role != RoleBlockedFull {
					seq = er.Seq
				}
			}
			if seq != g.seq && (i > start || g.lookup != nil) {
				g.rules = rules[start:i]
				out = append(out, g)
				g, start = viewGroup{}, i
			}
			g.seq = seq
		}
		if g.lookup != nil || start < len(rules) {
			g.rules = rules[start:]
			out = append(out, g)
		}
	}
	plain := 0 // the rules of ch since the last lookup
	for i, r := range ch.Rules {
		ml := mapLookupOf(r)
		if ml == nil || f.maps[ml.Set] == nil {
			continue
		}
		add(viewGroup{}, ch.Rules[plain:i])
		plain = i + 1
		s := f.maps[ml.Set]
		ref = s.Entry
		for elems, c := range f.entries(s) {
			var rules []*Rule
			if c != nil {
				rules = c.Rules
			}
			add(viewGroup{seq: elems[0].Seq, lookup: ml, elems: elems}, rules)
		}
	}
	add(viewGroup{}, ch.Rules[plain:])
	return sortedBySeq(out), ref
}

// sortedBySeq sorts gs by seq, stable. Why not only SortStableFunc: a
// list's chain is in seq order but for its rules of seq 0 (lockouts
// first, the implicit rules last), so moving those to the front nearly
// always gives the order, in time of the groups, where sorting 50k groups
// was a tenth of what Renewals costs for a one-line change.
func sortedBySeq(gs []viewGroup) []viewGroup {
	bySeq := func(a, b viewGroup) int { return a.seq - b.seq }
	if slices.IsSortedFunc(gs, bySeq) {
		return gs
	}
	out := make([]viewGroup, 0, len(gs))
	for _, g := range gs {
		if g.seq == 0 {
			out = append(out, g)
		}
	}
	for _, g := range gs {
		if g.seq != 0 {
			out = append(out, g)
		}
	}
	if !slices.IsSortedFunc(out, bySeq) {
		slices.SortStableFunc(out, bySeq)
	}
	return out
}

func mapLookupOf(r *Rule) *MapLookup {
	if len(r.Stmts) == 1 {
		if ml, ok := r.Stmts[0].(*MapLookup); ok {
			return ml
		}
	}
	return nil
}

// mapHit is the lookup of a map as far as one entry's elements go; a
// view only (no expressions: it is never applied).
type mapHit struct {
	head   string // the lookup's text and " element { "
	fields MapFields
	elems  []MapElem
}

func (s *mapHit) String() string {
	parts := make([]string, len(s.elems))
	for i := range s.elems {
		parts[i] = s.elems[i].text(s.fields)
	}
	return s.head + strings.Join(parts, ", ") + " }"
}

func (s *mapHit) Exprs() []expr.Any { return nil }
