package agent

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/nft"
)

// blockKernel is the nft fake with blocked sets.
type blockKernel struct {
	*nft.Fake
	sets map[string][]netip.Addr
}

func (k *blockKernel) Blocked(set string, f acl.Family) ([]netip.Addr, error) {
	return k.sets[set], nil
}

func (k *blockKernel) Unblock(set string, f acl.Family, addrs []netip.Addr) error {
	if addrs == nil {
		delete(k.sets, set)
		return nil
	}
	var keep []netip.Addr
	for _, a := range k.sets[set] {
		if a != addrs[0] {
			keep = append(keep, a)
		}
	}
	k.sets[set] = keep
	return nil
}

func TestBlockForFlushAndClear(t *testing.T) {
	ta, tr := newTrackedAgent(t)
	k := &blockKernel{Fake: ta.kernel, sets: map[string][]netip.Addr{}}
	ta.opts.Kernel = k
	ta.mustConfigure(t, cli.Txn{Lines: []string{
		"ip access-list extended check",
		"seq 10 permit tcp any any eq 22 connlimit 2 block-for 60 flush",
		"seq 20 permit ip any any",
		"interface management 0", "ip access-group check in",
	}})
	set := nft.BlockedSetName(acl.IPv4, "check", acl.In)
	c1, c2 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.9")
	tr.calls = nil

	k.sets[set] = []netip.Addr{c1}
	ta.FlushBlocked()
	ta.FlushBlocked() // the same source is flushed once
	k.sets[set] = []netip.Addr{c1, c2}
	ta.FlushBlocked()
	if got := strings.Join(tr.calls, ","); got != "clear-sessions,clear-sessions" {
		t.Errorf("tracker calls %q, want one clear-sessions per newly blocked source", got)
	}

	if err := ta.ClearBlocked(acl.IPv4, "check", c1); err != nil {
		t.Fatal(err)
	}
	if got := k.sets[set]; len(got) != 1 || got[0] != c2 {
		t.Errorf("after clearing %v: %v", c1, got)
	}
	if err := ta.ClearBlocked(acl.IPv4, "check", netip.Addr{}); err != nil || len(k.sets[set]) != 0 {
		t.Errorf("clear all: %v, left %v", err, k.sets[set])
	}
	if err := ta.ClearBlocked(acl.IPv4, "nope", netip.Addr{}); err == nil {
		t.Error("clearing a missing ACL succeeded")
	}
}
