package agent

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/nft"
)

func TestBlockForFlushAndClear(t *testing.T) {
	ta, tr := newTrackedAgent(t)
	k := ta.kernel
	ta.mustConfigure(t, cli.Txn{Lines: []string{
		"ip access-list extended check",
		"seq 5 permit tcp any any eq 23 connlimit 2 block-for 60",
		"seq 10 permit tcp any any eq 22 connlimit 2 block-for 60 flush",
		"seq 20 permit ip any any",
		"interface management 0", "ip access-group check in",
	}})
	set := nft.BlockedSetName(nft.EntryRef{Family: acl.IPv4, ACL: "check", Dir: acl.In, Seq: 10})
	noFlush := nft.BlockedSetName(nft.EntryRef{Family: acl.IPv4, ACL: "check", Dir: acl.In, Seq: 5})
	full := nft.BlockedFullSetName(nft.EntryRef{Family: acl.IPv4, ACL: "check", Dir: acl.In, Seq: 10})
	c1, c2 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.9")
	tr.calls = nil

	// The lockout and the flush are the entry's: a source blocked by seq 5
	// (no flush) keeps its sessions.
	k.Block(noFlush, netip.MustParseAddr("10.0.0.7"))
	ta.WatchBlocked()
	if len(tr.calls) != 0 {
		t.Errorf("a source blocked by an entry without flush was flushed: %v", tr.calls)
	}
	k.Block(set, c1)
	ta.WatchBlocked()
	ta.WatchBlocked() // the same source is flushed once
	k.Block(set, c2)
	ta.WatchBlocked()
	if got := strings.Join(tr.calls, ","); got != "clear-sessions,clear-sessions" {
		t.Errorf("tracker calls %q, want one clear-sessions per newly blocked source", got)
	}

	if err := ta.ClearBlocked(acl.IPv4, "check", c1); err != nil {
		t.Fatal(err)
	}
	if got, _ := k.Blocked(set, acl.IPv4); len(got) != 1 || got[0] != c2 {
		t.Errorf("after clearing %v: %v", c1, got)
	}
	if _, err := k.SetFlag(full, acl.IPv4, true); err != nil {
		t.Fatal(err)
	}
	if err := ta.ClearBlocked(acl.IPv4, "check", netip.Addr{}); err != nil || len(k.Elements[set]) != 0 ||
		len(k.Elements[noFlush]) != 0 || len(k.Elements[full]) != 0 {
		t.Errorf("clear all: %v, left %v, %v, full flag %v", err, k.Elements[set], k.Elements[noFlush], k.Elements[full])
	}
	if err := ta.ClearBlocked(acl.IPv4, "nope", netip.Addr{}); err == nil {
		t.Error("clearing a missing ACL succeeded")
	}
}
