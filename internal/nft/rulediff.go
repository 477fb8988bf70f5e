package nft

import (
	"crypto/sha256"
	"sort"
)

// ruleKey identifies a rule by its text (Rule.String(), comment included):
// the first 128 bits of its SHA-256, so that the handles of a large chain
// can be kept, and saved for a restarted agent, without its text.
type ruleKey [16]byte

func keyOf(r *Rule) ruleKey {
	sum := sha256.Sum256([]byte(r.String()))
	return ruleKey(sum[:16])
}

// kernelRuleState is one rule of a chain the kernel holds: its key and its
// handle.
type kernelRuleState struct {
	Key    ruleKey
	Handle uint64
}

// chainEdit is how to turn the rules the kernel holds in a chain into the
// desired ones without touching the rules that stay: delete the rules with
// handles del, then add every desired rule i with !keep[i], in order, before
// the rule with handle before[i] (at the end when it is 0).
type chainEdit struct {
	keep   []bool   // by desired position
	before []uint64 // by desired position, for the rules added
	del    []uint64
	kept   int
}

// diffChain finds the largest set of rules that can stay where they are:
// the longest subsequence of the desired rules that the kernel holds in the
// same order (matched by key). It returns ok == false when rules cannot be
// matched one to one (a key that occurs twice) or nothing would stay; the
// chain is then flushed and filled instead. The desired rules marked in
// fresh (nil: none) are added anew even when the kernel holds them.
func diffChain(have []kernelRuleState, want []ruleKey, fresh []bool) (chainEdit, bool) {
	at := make(map[ruleKey]int, len(have))
	for i, r := range have {
		if _, dup := at[r.Key]; dup || r.Handle == 0 {
			return chainEdit{}, false
		}
		at[r.Key] = i
	}
	pos := make([]int, len(want)) // kernel position of each desired rule, -1 if new
	seen := make(map[ruleKey]bool, len(want))
	for i, k := range want {
		if seen[k] {
			return chainEdit{}, false
		}
		seen[k] = true
		pos[i] = -1
		if j, ok := at[k]; ok && (fresh == nil || !fresh[i]) {
			pos[i] = j
		}
	}
	keep := longestIncreasing(pos)
	ed := chainEdit{keep: keep, before: make([]uint64, len(want))}
	stays := make([]bool, len(have))
	var next uint64
	for i := len(want) - 1; i >= 0; i-- {
		if keep[i] {
			stays[pos[i]] = true
			next = have[pos[i]].Handle
			ed.kept++
			continue
		}
		ed.before[i] = next
	}
	if ed.kept == 0 {
		return chainEdit{}, false
	}
	for j, r := range have {
		if !stays[j] {
			ed.del = append(ed.del, r.Handle)
		}
	}
	return ed, true
}

// longestIncreasing marks a longest strictly increasing subsequence of the
// values of pos that are not negative, in O(n log n) (patience sorting).
func longestIncreasing(pos []int) []bool {
	var tails []int // tails[l]: index in pos of the smallest tail of a run of length l+1
	prev := make([]int, len(pos))
	for i, p := range pos {
		prev[i] = -1
		if p < 0 {
			continue
		}
		l := sort.Search(len(tails), func(k int) bool { return pos[tails[k]] >= p })
		if l > 0 {
			prev[i] = tails[l-1]
		}
		if l == len(tails) {
			tails = append(tails, i)
		} else {
			tails[l] = i
		}
	}
	keep := make([]bool, len(pos))
	if len(tails) > 0 {
		for i := tails[len(tails)-1]; i >= 0; i = prev[i] {
			keep[i] = true
		}
	}
	return keep
}
