package nft_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slxsh/slxsh/internal/netns"
)

// TestKernelGoldenNetlinkMatchesNft loads every golden testdata/compile/*.nft
// with `nft -f` in one namespace, applies our netlink version of the same
// config in another, and checks that `nft list table` prints the same
// ruleset in both (handles aside). It then re-applies and checks that
// InSync holds and nothing changed: the golden is the oracle for Apply.
func TestKernelGoldenNetlinkMatchesNft(t *testing.T) {
	goldens := loadGoldens(t)
	byNft, byUs := netns.New(t), netns.New(t)
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			byNft.MustExec(t, "nft", "-f", g.nftPath)
			t.Cleanup(func() { byNft.Exec("nft", "delete", "table", "inet", g.rs.Table) })
			// Gates stay closed on both sides: nft -f creates them as
			// Apply does.
			a := applier(byUs)
			if err := a.Apply(g.rs); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { byUs.Exec("nft", "delete", "table", "inet", g.rs.Table) })

			want := listTable(t, byNft, g.rs.Table)
			got := listTable(t, byUs, g.rs.Table)
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("netlink apply lists differently from nft -f (-nft +netlink):\n%s", d)
			}
			// Our Apply also adopts what nft -f loaded, in place.
			adopt := applier(byNft)
			if err := adopt.Apply(g.rs); err != nil {
				t.Fatal(err)
			}
			if again := listTable(t, byNft, g.rs.Table); again != want {
				t.Errorf("adopting the nft -f table changed it:\n%s", cmp.Diff(want, again))
			}
		})
	}
}
