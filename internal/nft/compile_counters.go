package nft

import (
	"slices"
	"sort"
)

// The ruleset's counters are sorted by name (Ruleset.Counters: the
// delta, the digest and the saved state read them so). At 50k entries
// that is some 100k names, and sorting them was 11 ms of a one-line
// change's compile: the Cache sorts only what changed.

// sortCounters returns names (in the order the builder added them)
// sorted, from the previous Compile's when there is one (the Cache's):
// the builder adds counters in the order of the config, so a change
// leaves the same names before and after the names it touches, and the
// rest are the previous sorted list with the names that went taken out
// and those that came put in. Past a few of those it sorts them all.
func (c *Cache) sortCounters(names []string) []string {
	sorted := sortedAfter(c.prevCounters, c.prevSorted, names)
	c.nextCounters, c.nextSorted = names, sorted
	return sorted
}

// sortedAfter is names sorted, given was and wasSorted (was sorted): the
// names between the longest common start and end of was and names are
// what changed, and the multiset of names is that of was less those of
// was, plus those of names. Why that is exact: the two lists are equal
// outside those stretches, whatever their order.
func sortedAfter(was, wasSorted, names []string) []string {
	if len(was) != len(wasSorted) || len(was) == 0 {
		return sortedCopy(names)
	}
	p := 0
	for p < len(was) && p < len(names) && was[p] == names[p] {
		p++
	}
	s := 0
	for s < len(was)-p && s < len(names)-p && was[len(was)-1-s] == names[len(names)-1-s] {
		s++
	}
	gone, came := was[p:len(was)-s], names[p:len(names)-s]
	if len(gone)+len(came) > 64+len(names)/16 {
		return sortedCopy(names)
	}
	gone, came = sortedCopy(gone), sortedCopy(came)
	out := make([]string, 0, len(names))
	rest := wasSorted
	for len(gone) > 0 || len(came) > 0 {
		if len(gone) > 0 && (len(came) == 0 || gone[0] <= came[0]) {
			i, found := slices.BinarySearch(rest, gone[0])
			if !found {
				return sortedCopy(names) // wasSorted is not was sorted
			}
			out, rest, gone = append(out, rest[:i]...), rest[i+1:], gone[1:]
			continue
		}
		i, _ := slices.BinarySearch(rest, came[0])
		out = append(append(out, rest[:i]...), came[0])
		rest, came = rest[i:], came[1:]
	}
	return append(out, rest...)
}

func sortedCopy(names []string) []string {
	out := slices.Clone(names)
	sort.Strings(out)
	return out
}
