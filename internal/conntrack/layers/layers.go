// Package layers names and sizes the reservation sets that hold sessions
// which were open before a connlimit set existed (issue 5). It is pure and
// imports nothing of ours, so that both the compiler (internal/nft), which
// declares the sets and writes the rules, and the session side
// (internal/conntrack), which fills them, use the same names.
//
// For a limit rule `MATCH add @S { KEY ct count over T } REFUSE` the compiler
// writes, before it, with the same MATCH and REFUSE:
//
//	MATCH meta nfproto @S_g REFUSE                                   # gate
//	MATCH KEY @S_rf REFUSE                                           # full
//	MATCH KEY @S_r1 add @S_l1 { KEY ct count over T-1 } REFUSE       # layer 1
//	MATCH KEY @S_r2 add @S_l2 { KEY ct count over T-2 } REFUSE       # layer 2
//	MATCH KEY @S_r4 add @S_l4 { KEY ct count over T-4 } REFUSE       # ... every j in Layers(T)
//
// and declares the sets of Sets(S, T): the gate `type nf_proto; size 2`,
// every other one with the key type and size of S; all `flags dynamic` like
// S. The session side keeps the gate empty except while it recounts, and a
// key with E old sessions in S_rf (E >= T, or deeper than every layer) or in
// S_rj for every layer j up to Depth(T, E).
package layers

import "strconv"

// GateName is the set whose one element (the family's nfproto) closes the
// entry to new connections while its old sessions are counted.
func GateName(main string) string { return main + "_g" }

// FullName is the set of keys whose old sessions fill the limit.
func FullName(main string) string { return main + "_rf" }

// MemberName is the membership set of layer j.
func MemberName(main string, j int) string { return main + "_r" + strconv.Itoa(j) }

// CounterName is the dynamic set whose elements count the new sessions of
// the keys of layer j, with `ct count over T-j`.
func CounterName(main string, j int) string { return main + "_l" + strconv.Itoa(j) }

// Layers returns the layer depths of a limit `ct count over t`: the powers
// of two below t.
func Layers(t int) []int {
	var out []int
	for j := 1; j < t; j *= 2 {
		out = append(out, j)
	}
	return out
}

// Depth is where a key with old sessions is held: 0 for none, the smallest
// layer that is not below old, or t (the full set) when no layer is deep
// enough. A key at depth d admits at most t-d new sessions, never more than
// t-old.
func Depth(t, old int) int {
	if old <= 0 {
		return 0
	}
	for _, j := range Layers(t) {
		if j >= old {
			return j
		}
	}
	return t
}

// Set is one reservation set of a limit set.
type Set struct {
	Name string
	// Gate sets have key type nf_proto and size 2; the others have the key
	// type and size of the limit set.
	Gate bool
	// Over is the `ct count over` of the counting sets' elements (0 for the
	// gate, full and membership sets, whose elements carry nothing).
	Over int
}

// Sets returns the reservation sets of limit set main with `ct count over
// t`, in rule order: gate, full, then each layer's membership and counting
// set.
func Sets(main string, t int) []Set {
	out := []Set{{Name: GateName(main), Gate: true}, {Name: FullName(main)}}
	for _, j := range Layers(t) {
		out = append(out, Set{Name: MemberName(main, j)}, Set{Name: CounterName(main, j), Over: t - j})
	}
	return out
}
