package layers

import (
	"slices"
	"testing"
)

func TestSets(t *testing.T) {
	var got []string
	for _, s := range Sets("ip_check_in_10_src_3", 3) {
		got = append(got, s.Name)
	}
	want := []string{"ip_check_in_10_src_3_g", "ip_check_in_10_src_3_rf",
		"ip_check_in_10_src_3_r1", "ip_check_in_10_src_3_l1",
		"ip_check_in_10_src_3_r2", "ip_check_in_10_src_3_l2"}
	if !slices.Equal(got, want) {
		t.Errorf("Sets = %v, want %v", got, want)
	}
	if s := Sets("s", 5); len(s) != 8 || !s[0].Gate || s[7].Over != 1 || s[3].Over != 4 {
		t.Errorf("Sets(s, 5) = %+v", s)
	}
	if s := Sets("s", 1); len(s) != 2 {
		t.Errorf("Sets(s, 1) = %+v, want gate and full only", s)
	}
}

func TestLayersAndDepth(t *testing.T) {
	for _, tc := range []struct {
		t      int
		layers []int
	}{{0, nil}, {1, nil}, {2, []int{1}}, {3, []int{1, 2}}, {5, []int{1, 2, 4}}, {9, []int{1, 2, 4, 8}}} {
		if got := Layers(tc.t); !slices.Equal(got, tc.layers) {
			t.Errorf("Layers(%d) = %v, want %v", tc.t, got, tc.layers)
		}
	}
	for _, tc := range []struct{ t, old, want int }{
		{3, 0, 0}, {3, 1, 1}, {3, 2, 2}, {3, 3, 3}, {3, 7, 3},
		{5, 3, 4}, {5, 4, 4}, {5, 5, 5}, {2, 1, 1}, {2, 5, 2},
		{10, 5, 8}, {10, 9, 10}, {1, 1, 1}, {0, 1, 0},
	} {
		got := Depth(tc.t, tc.old)
		if got != tc.want {
			t.Errorf("Depth(t %d, old %d) = %d, want %d", tc.t, tc.old, got, tc.want)
		}
		// The invariant that makes reservations safe: depth d admits at
		// most t-d new sessions, never more than t-old.
		if tc.old > 0 && tc.t > 0 && tc.t-got > max(tc.t-tc.old, 0) {
			t.Errorf("Depth(t %d, old %d) = %d admits too many", tc.t, tc.old, got)
		}
	}
}
