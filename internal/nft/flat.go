package nft

import (
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
	maps   map[string]*Set
	chains map[string]*Chain
}

func newFlattener(rs *Ruleset) *flattener {
	f := &flattener{maps: map[string]*Set{}, chains: map[string]*Chain{}}
	for _, s := range rs.Sets {
		if s.Map != nil {
			f.maps[s.Name] = s
		}
	}
	for _, ch := range rs.Chains {
		if ch.Mapped {
			f.chains[ch.Name] = ch
		}
	}
	return f
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
		elems := s.Map.Elems
		head := ml.String() + " element { " // the same for every entry of the map
		for len(elems) > 0 {
			n := 1
			for n < len(elems) && elems[n].Seq == elems[0].Seq {
				n++
			}
			ref := s.Entry
			ref.Seq = elems[0].Seq
			out = append(out, &Rule{Comment: RuleComment(ref, RoleMap), Stmts: []Stmt{&mapHit{head: head, fields: s.Map.Fields, elems: elems[:n]}}})
			if ch := f.chains[elems[0].Chain]; ch != nil {
				out = append(out, ch.Rules...)
			}
			elems = elems[n:]
		}
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
