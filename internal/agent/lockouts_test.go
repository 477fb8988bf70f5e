package agent

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/nft"
)

// TestLockoutsSurviveDrift: a lockout the kernel holds comes back after
// someone flushes its set (once the agent sees their commit) and after the
// table is deleted and repaired; a source `clear access-list blocked`
// lifted never does.
func TestLockoutsSurviveDrift(t *testing.T) {
	ta := newTestAgent(t)
	ta.mustConfigure(t, cli.Txn{Lines: []string{
		"ip access-list extended check",
		"seq 10 permit tcp any any eq 22 connlimit 2 block-for 60",
		"seq 20 permit ip any any",
	}}, slxBind)
	set := nft.BlockedSetName(nft.EntryRef{Family: acl.IPv4, ACL: "check", Dir: acl.In, Seq: 10})
	src, other := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	blocked := func() []netip.Addr {
		got, err := ta.kernel.Blocked(set, acl.IPv4)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(got, netip.Addr.Compare)
		return got
	}
	ta.kernel.Block(set, src)
	ta.kernel.Block(set, other)
	ta.WatchBlocked()

	// Someone flushes the set: put back once their commit is seen, not
	// before (the read may come first).
	ta.kernel.Unblock(set, acl.IPv4, nil)
	ta.WatchBlocked()
	if got := blocked(); len(got) != 0 {
		t.Fatalf("lockouts put back without a foreign commit: %v", got)
	}
	ta.kernel.Foreign++
	ta.WatchBlocked()
	if got := blocked(); !slices.Equal(got, []netip.Addr{src, other}) {
		t.Fatalf("after the flush: blocked %v, want both", got)
	}

	// The table is deleted: the repair creates the set empty and the
	// agent puts the lockouts back.
	ta.kernel.Set(nil)
	if done, err := ta.RepairDrift(); !done || err != nil {
		t.Fatalf("RepairDrift: %v, %v", done, err)
	}
	if got := blocked(); !slices.Equal(got, []netip.Addr{src, other}) {
		t.Fatalf("after the repair: blocked %v, want both", got)
	}

	// Cleared by the admin: gone for good.
	if err := ta.ClearBlocked(acl.IPv4, "check", src); err != nil {
		t.Fatal(err)
	}
	ta.kernel.Foreign++
	ta.WatchBlocked()
	ta.kernel.Set(nil)
	ta.RepairDrift()
	if got := blocked(); !slices.Equal(got, []netip.Addr{other}) {
		t.Fatalf("after clear and a repair: blocked %v, want only %v", got, other)
	}
}

// TestLockoutsFollowTheirEntries: a resequence that moves two block-for
// entries up puts each one's lockouts in its new set and only there
// (review: the carry read a set it had just written, and the second entry
// got the first one's lockouts); a set that keeps its name for another
// entry loses the lockouts of the entry it belonged to.
func TestLockoutsFollowTheirEntries(t *testing.T) {
	one, two := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	ta := startBlocked(t, []string{
		"seq 10 permit tcp any any eq 22 connlimit 2 block-for 60",
		"seq 20 permit tcp any any eq 80 connlimit 2 block-for 600",
		"seq 30 permit ip any any",
	}, map[int]netip.Addr{10: one, 20: two})
	blocked := func(seq int) []netip.Addr { return blockedAt(t, ta, seq) }

	// 10 -> 20, 20 -> 30, 30 -> 40.
	ta.mustConfigure(t, cli.Txn{Context: []string{"ip access-list extended check"}, Lines: []string{"resequence 20 10"}})
	if got := blocked(20); !slices.Equal(got, []netip.Addr{one}) {
		t.Errorf("seq 20 (the port 22 entry): blocked %v, want only %v", got, one)
	}
	if got := blocked(30); !slices.Equal(got, []netip.Addr{two}) {
		t.Errorf("seq 30 (the port 80 entry): blocked %v, want only %v", got, two)
	}
	// Unchanged entries keep theirs through an unrelated change.
	ta.WatchBlocked()
	ta.mustConfigure(t, cli.Txn{Context: []string{"ip access-list extended check"}, Lines: []string{"seq 50 permit udp any any"}})
	if got := blocked(20); !slices.Equal(got, []netip.Addr{one}) {
		t.Errorf("after an unrelated change seq 20: blocked %v, want %v", got, one)
	}
}

// TestLockoutsStayWithTheirSeq: a changed entry keeps its lockouts beside a
// new entry, earlier in the list, that decides the same traffic (review:
// the new entry took them, capped at its shorter block-for).
func TestLockoutsStayWithTheirSeq(t *testing.T) {
	one := netip.MustParseAddr("10.0.0.1")
	ta := startBlocked(t, []string{
		"seq 10 permit tcp any any eq 22 connlimit 2 block-for 600",
		"seq 30 permit ip any any",
	}, map[int]netip.Addr{10: one})
	ta.mustConfigure(t, cli.Txn{Context: []string{"ip access-list extended check"}, Lines: []string{
		"seq 5 permit tcp any any eq 22 connlimit 5 block-for 10",
		"no seq 10",
		"seq 10 permit tcp any any eq 22 connlimit 2 block-for 600 log",
	}})
	b10, b5 := blockedAt(t, ta, 10), blockedAt(t, ta, 5)
	if !slices.Equal(b10, []netip.Addr{one}) || len(b5) != 0 {
		t.Errorf("seq 10 blocked %v, seq 5 blocked %v; want %v at seq 10 only", b10, b5, one)
	}
}

// checkSet names the blocked set of entry seq of list check, in.
func checkSet(seq int) string {
	return nft.BlockedSetName(nft.EntryRef{Family: acl.IPv4, ACL: "check", Dir: acl.In, Seq: seq})
}

// blockedAt lists the sources the fake kernel holds in entry seq's blocked
// set, sorted.
func blockedAt(t *testing.T, ta *testAgent, seq int) []netip.Addr {
	t.Helper()
	got, err := ta.kernel.Blocked(checkSet(seq), acl.IPv4)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, netip.Addr.Compare)
	return got
}

// startBlocked configures list check with lines and blocks src[seq] in
// entry seq's set, as the agent has read them.
func startBlocked(t *testing.T, lines []string, src map[int]netip.Addr) *testAgent {
	t.Helper()
	ta := newTestAgent(t)
	ta.mustConfigure(t, cli.Txn{Lines: append([]string{"ip access-list extended check"}, lines...)}, slxBind)
	for seq, a := range src {
		ta.kernel.Block(checkSet(seq), a)
	}
	ta.WatchBlocked()
	return ta
}
