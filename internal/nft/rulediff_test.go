package nft

import (
	"slices"
	"strconv"
	"testing"
)

// applyEdit replays an edit on the kernel's rules as the kernel would:
// deletions by handle, then each added rule before its position (or at
// the end), in forward order. New rules get handles from 1000 on.
func applyEdit(t *testing.T, have []kernelRuleState, want []ruleKey, ed chainEdit) []ruleKey {
	t.Helper()
	var list []kernelRuleState
	for _, r := range have {
		if !slices.Contains(ed.del, r.Handle) {
			list = append(list, r)
		}
	}
	next := uint64(1000)
	for i, k := range want {
		if ed.keep[i] {
			continue
		}
		r := kernelRuleState{Key: k, Handle: next}
		next++
		if ed.before[i] == 0 {
			list = append(list, r)
			continue
		}
		at := slices.IndexFunc(list, func(x kernelRuleState) bool { return x.Handle == ed.before[i] })
		if at < 0 {
			t.Fatalf("insert before handle %d, which is not in the chain", ed.before[i])
		}
		list = slices.Insert(list, at, r)
	}
	var out []ruleKey
	for _, r := range list {
		out = append(out, r.Key)
	}
	return out
}

func keys(names string) []ruleKey {
	var out []ruleKey
	for _, c := range names {
		out = append(out, keyOf(&Rule{Comment: string(c)}))
	}
	return out
}

func kernelRules(names string) []kernelRuleState {
	var out []kernelRuleState
	for i, k := range keys(names) {
		out = append(out, kernelRuleState{Key: k, Handle: uint64(i + 1)})
	}
	return out
}

func TestDiffChain(t *testing.T) {
	for _, tc := range []struct {
		name, have, want string
		kept, del        int
		ok               bool
	}{
		{"change one", "abcdef", "abXdef", 5, 1, true},
		{"insert at top", "abcd", "Xabcd", 4, 0, true},
		{"insert at end", "abcd", "abcdX", 4, 0, true},
		{"insert several in a row", "abcd", "aXYZbcd", 4, 0, true},
		{"delete all but one", "abcdef", "d", 1, 5, true},
		{"move one down", "abcdef", "bcdaef", 5, 1, true},
		{"move one up", "abcdef", "eabcdf", 5, 1, true},
		{"reverse", "abcd", "dcba", 1, 3, true},
		{"same", "abc", "abc", 3, 0, true},
		{"nothing kept", "abc", "XYZ", 0, 0, false},
		{"empty kernel chain", "", "ab", 0, 0, false},
		{"everything deleted", "abc", "", 0, 0, false},
		{"duplicate wanted", "abc", "abb", 0, 0, false},
		{"duplicate in kernel", "abb", "ab", 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			have, want := kernelRules(tc.have), keys(tc.want)
			ed, ok := diffChain(have, want, nil)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if ed.kept != tc.kept || len(ed.del) != tc.del {
				t.Errorf("kept %d, deleted %d; want %d, %d", ed.kept, len(ed.del), tc.kept, tc.del)
			}
			if got := applyEdit(t, have, want, ed); !slices.Equal(got, want) {
				t.Errorf("after the edit the chain is not the wanted one")
			}
		})
	}
}

func TestDiffChainFresh(t *testing.T) {
	have, want := kernelRules("abcd"), keys("abcd")
	ed, ok := diffChain(have, want, []bool{false, true, false, false})
	if !ok || ed.kept != 3 || len(ed.del) != 1 || ed.del[0] != 2 || ed.before[1] != 3 {
		t.Fatalf("ok %v, edit %+v", ok, ed)
	}
	if got := applyEdit(t, have, want, ed); !slices.Equal(got, want) {
		t.Error("after the edit the chain is not the wanted one")
	}
	if _, ok := diffChain(kernelRules("a"), keys("a"), []bool{true}); ok {
		t.Error("nothing kept, yet an edit")
	}
}

func TestLongestIncreasing(t *testing.T) {
	for _, tc := range []struct {
		pos  []int
		want int
	}{
		{nil, 0},
		{[]int{-1, -1}, 0},
		{[]int{0, 1, 2}, 3},
		{[]int{2, 1, 0}, 1},
		{[]int{3, 0, 1, -1, 2, 5, 4}, 4},
	} {
		keep := longestIncreasing(tc.pos)
		n, last := 0, -1
		for i, k := range keep {
			if !k {
				continue
			}
			if tc.pos[i] <= last {
				t.Errorf("%v: kept %v is not increasing", tc.pos, keep)
			}
			last = tc.pos[i]
			n++
		}
		if n != tc.want {
			t.Errorf("%v: kept %d, want %d", tc.pos, n, tc.want)
		}
	}
}

// A large random edit keeps every rule that did not move.
func TestDiffChainLarge(t *testing.T) {
	const n = 10000
	have := make([]kernelRuleState, n)
	want := make([]ruleKey, 0, n)
	for i := range n {
		k := keyOf(&Rule{Comment: "seq=" + strconv.Itoa(i)})
		have[i] = kernelRuleState{Key: k, Handle: uint64(i + 1)}
		if i != 5000 {
			want = append(want, k)
		}
		if i == 7000 {
			want = append(want, keyOf(&Rule{Comment: "new"}))
		}
	}
	ed, ok := diffChain(have, want, nil)
	if !ok || ed.kept != n-1 || len(ed.del) != 1 || ed.del[0] != 5001 {
		t.Fatalf("ok %v, kept %d, del %v", ok, ed.kept, ed.del)
	}
	if got := applyEdit(t, have, want, ed); !slices.Equal(got, want) {
		t.Error("after the edit the chain is not the wanted one")
	}
}
