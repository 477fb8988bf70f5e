package nft

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSortedAfterIsSorted: the counters sorted from the previous
// Compile's, after random changes (names added, taken out, replaced, in
// one stretch or several, none, or most), are the names sorted.
func TestSortedAfterIsSorted(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	name := func() string { return fmt.Sprintf("ip_l%d_in_%d_matches", r.IntN(3), r.IntN(5000)) }
	incremental := 0
	for round := range 500 {
		was := make([]string, r.IntN(300))
		for i := range was {
			was[i] = name()
		}
		names := slices.Clone(was)
		for range []int{0, 1, 3, 40}[r.IntN(4)] {
			switch i := r.IntN(len(names) + 1); {
			case i < len(names) && r.IntN(3) == 0:
				names = slices.Delete(names, i, i+1)
			case i < len(names) && r.IntN(2) == 0:
				names[i] = name()
			default:
				names = slices.Insert(names, i, name())
			}
		}
		wasSorted := sortedCopy(was)
		got, want := sortedAfter(was, wasSorted, names), sortedCopy(names)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: sorted after the change\n%v\nwant\n%v", round, got, want)
		}
		if !slices.Equal(wasSorted, sortedCopy(was)) {
			t.Fatalf("round %d: the previous sorted list was changed", round)
		}
		if len(was) > 0 && !slices.Equal(was, names) {
			incremental++
		}
	}
	if incremental < 300 {
		t.Fatalf("only %d rounds changed anything", incremental)
	}
}

// TestSortedBySeqIsStableSort: groups in chain order (seq 0 lockouts
// first and implicit rules last, entries in order, or any order) come out
// as a stable sort by seq puts them.
func TestSortedBySeqIsStableSort(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	for round := range 500 {
		var gs []viewGroup
		tag := 0
		add := func(seq int) {
			tag++
			gs = append(gs, viewGroup{seq: seq, elems: []MapElem{{Seq: tag}}}) // elems[0].Seq tells them apart
		}
		for range r.IntN(3) {
			add(0)
		}
		seq := 0
		for range r.IntN(50) {
			if round%4 == 0 {
				seq = r.IntN(20) // any order
			} else {
				seq += r.IntN(3) // in order, a seq's parts next to each other
			}
			add(seq)
		}
		for range r.IntN(3) {
			add(0)
		}
		want := slices.Clone(gs)
		slices.SortStableFunc(want, func(a, b viewGroup) int { return a.seq - b.seq })
		got := sortedBySeq(slices.Clone(gs))
		if !slices.EqualFunc(got, want, func(a, b viewGroup) bool { return a.seq == b.seq && a.elems[0].Seq == b.elems[0].Seq }) {
			t.Fatalf("round %d: %v, want %v", round, got, want)
		}
	}
}
