package nft

import (
	"slices"
	"strings"
)

// The delta of a change: when the Applier knows that the kernel holds a
// ruleset value (was) and what it knows describes exactly that, the
// transaction tells what changed by walking the two rulesets side by side
// (chains by pointer, counters in sorted order) instead of looking up each
// of 50k names in the maps of the table's state. Anything it cannot tell
// so it leaves to those lookups.

// delta is what a ruleset changes of the one the kernel holds.
type delta struct {
	same        []bool   // chain i of the new ruleset is a chain of was (the same value)
	newCounters []string // counters was lacks
	staleObjs   []string // counters of was that the new ruleset lacks, sorted
	staleChains []*Chain // chains of was that the new ruleset lacks, sorted by name
}

// deltaOf returns the delta from was to rs, or nil when it cannot be told
// by walking them (counters not sorted, as only hand-made rulesets are).
func deltaOf(was, rs *Ruleset) *delta {
	if was == nil || !slices.IsSorted(was.Counters) || !slices.IsSorted(rs.Counters) {
		return nil
	}
	d := &delta{same: make([]bool, len(rs.Chains))}
	seen := make([]bool, len(was.Chains))
	for i, j := range heldAt(was.Chains, rs.Chains) {
		if j >= 0 {
			d.same[i], seen[j] = true, true
		}
	}
	var changed map[string]bool // the names of the chains of rs that are new values
	for i, ch := range rs.Chains {
		if !d.same[i] {
			if changed == nil {
				changed = map[string]bool{}
			}
			changed[ch.Name] = true
		}
	}
	for j, ch := range was.Chains {
		if !seen[j] && !changed[ch.Name] {
			d.staleChains = append(d.staleChains, ch)
		}
	}
	slices.SortFunc(d.staleChains, func(a, b *Chain) int { return strings.Compare(a.Name, b.Name) })
	a, b := was.Counters, rs.Counters
	for len(a) > 0 || len(b) > 0 {
		switch {
		case len(a) > 0 && len(b) > 0 && a[0] == b[0]: // most: the very strings
			a, b = a[1:], b[1:]
		case len(b) == 0 || (len(a) > 0 && a[0] < b[0]):
			d.staleObjs, a = append(d.staleObjs, a[0]), a[1:]
		default:
			d.newCounters, b = append(d.newCounters, b[0]), b[1:]
		}
	}
	return d
}
