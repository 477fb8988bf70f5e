package nft_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

// The limit sets are unsized by default: they start at about 1 KiB and
// grow on demand. These tests show, at the kernel's real cap and with
// real TCP, that such a set still holds at most nft.UnsizedSetCap keys
// and that a full one fails closed through the same "-full" guard as a
// set declared with a size (TestKernelFullSetRefuses, size 2): each fills
// the set from userspace with UnsizedSetCap-2 keys that no client uses,
// lets two sources take the last two places, and checks that a third
// source is refused while the first still gets its budget.

// fillSet adds n keys 10.200.x.y (none of the pair's addresses) to a set
// of ns's table with `nft -f`.
func fillSet(t *testing.T, ns *netns.NS, set string, n int) {
	t.Helper()
	var b strings.Builder
	for i := 0; i < n; i += 1000 {
		var keys []string
		for j := i; j < min(i+1000, n); j++ {
			keys = append(keys, fmt.Sprintf("10.200.%d.%d", j>>8, j&255))
		}
		fmt.Fprintf(&b, "add element inet slxsh %s { %s }\n", set, strings.Join(keys, ", "))
	}
	path := filepath.Join(t.TempDir(), "fill.nft")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ns.MustExec(t, "nft", "-f", path)
}

// deleteRule deletes the rule of a chain of ns's table whose listing
// contains text.
func deleteRule(t *testing.T, ns *netns.NS, chain, text string) {
	t.Helper()
	for _, line := range strings.Split(ns.MustExec(t, "nft", "-a", "list", "chain", "inet", "slxsh", chain), "\n") {
		if m := handleNumRE.FindStringSubmatch(line); m != nil && strings.Contains(line, text) {
			ns.MustExec(t, "nft", "delete", "rule", "inet", "slxsh", chain, "handle", m[1])
			return
		}
	}
	t.Fatalf("no rule with %s in chain %s", text, chain)
}

// limitSet is the ruleset's limit set of the given kind (the connlimit
// set itself, not its layer counts; a block-for set, not its flag).
func limitSet(t *testing.T, rs *nft.Ruleset, kind nft.SetKind) *nft.Set {
	t.Helper()
	for _, s := range rs.Sets {
		if s.Kind == kind && s.Limit == "" && s.Key == nft.KeyIPv4 {
			return s
		}
	}
	t.Fatalf("no set of kind %v in\n%s", kind, rs)
	return nil
}

// setCapPair is a pair whose client has the sources 10.0.0.1 and .5-.7,
// with a server on port 22, and the config applied with default options.
func setCapPair(t *testing.T, entry string) (*netns.Pair, *nft.Applier, *nft.Ruleset) {
	t.Helper()
	p := netns.NewPair(t)
	for _, a := range []string{"10.0.0.5/24", "10.0.0.6/24", "10.0.0.7/24"} {
		p.Client.AddAddr(t, "c0", a)
	}
	server(t, p.Server, netns.PairServer4, 22)
	rs := compile(t, "ip access-list extended check\n "+entry+"\n seq 20 permit ip any any\n"+onS0In)
	a := applier(p.Server)
	mustApply(t, a, rs)
	return p, a, rs
}

// wantUnsizedFull checks that set s was declared without a size, that the
// kernel lists the cap for it, and that it holds exactly the cap.
func wantUnsizedFull(t *testing.T, p *netns.Pair, a *nft.Applier, s *nft.Set) {
	t.Helper()
	if s.Size != 0 {
		t.Fatalf("set %s declared with size %d, want unsized", s.Name, s.Size)
	}
	listed := p.Server.MustExec(t, "nft", "-t", "list", "set", "inet", "slxsh", s.Name)
	if !strings.Contains(listed, fmt.Sprintf("size %d\n", nft.UnsizedSetCap)) {
		t.Errorf("set %s lists no size %d:\n%s", s.Name, nft.UnsizedSetCap, listed)
	}
	fill, err := a.SetFill([]*nft.Set{s})
	if err != nil {
		t.Fatal(err)
	}
	if fill[s.Name] != nft.UnsizedSetCap {
		t.Errorf("set %s holds %d keys, want the cap %d", s.Name, fill[s.Name], nft.UnsizedSetCap)
	}
}

func TestKernelUnsizedSetFullRefuses(t *testing.T) {
	ssh := hostPort(netns.PairServer4, 22)
	t.Run("connlimit", func(t *testing.T) {
		p, a, rs := setCapPair(t, "seq 10 permit tcp any any eq 22 connlimit 2")
		s := limitSet(t, rs, nft.SetConnlimit)
		fillSet(t, p.Server, s.Name, nft.UnsizedSetCap-2)
		p.Client.Expect(t, "10.0.0.1", ssh, netns.Connected) // the last place but one
		p.Client.Expect(t, "10.0.0.5", ssh, netns.Connected) // the last place
		p.Client.Expect(t, "10.0.0.6", ssh, netns.Reset)     // not counted: refused
		p.Client.Expect(t, "10.0.0.1", ssh, netns.Connected) // counted: its second
		p.Client.Expect(t, "10.0.0.1", ssh, netns.Reset)     // and the limit still holds
		wantUnsizedFull(t, p, a, s)
		// The guard is what refuses: without the "-full" rule the
		// uncounted source passes, as with a declared size.
		deleteRule(t, p.Server, nft.ChainName(acl.IPv4, "check", acl.In), `comment "acl=check dir=in seq=10 connlimit-full"`)
		p.Client.Expect(t, "10.0.0.6", ssh, netns.Connected)
	})
	t.Run("rate", func(t *testing.T) {
		// A fixed window per source (a set with timeout 1h): the filled
		// keys do not expire during the test.
		p, a, rs := setCapPair(t, "seq 10 permit tcp any any eq 22 rate 2 per hour")
		s := limitSet(t, rs, nft.SetRate)
		fillSet(t, p.Server, s.Name, nft.UnsizedSetCap-2)
		p.Client.Expect(t, "10.0.0.1", ssh, netns.Connected)
		p.Client.Expect(t, "10.0.0.5", ssh, netns.Connected)
		p.Client.Expect(t, "10.0.0.6", ssh, netns.Reset)
		p.Client.Expect(t, "10.0.0.1", ssh, netns.Connected)
		p.Client.Expect(t, "10.0.0.1", ssh, netns.Reset)
		wantUnsizedFull(t, p, a, s)
	})
	t.Run("block-for", func(t *testing.T) {
		// A full blocked set sets the entry's full flag: the ACL then
		// refuses every new connection until the flag expires.
		p, a, rs := setCapPair(t, "seq 10 permit tcp any any eq 22 connlimit 1 block-for 3600")
		s := limitSet(t, rs, nft.SetBlocked)
		fillSet(t, p.Server, s.Name, nft.UnsizedSetCap-1)
		p.Client.Expect(t, "10.0.0.1", ssh, netns.Connected)
		p.Client.Expect(t, "10.0.0.1", ssh, netns.Reset) // over: blocked, the last place
		p.Client.Expect(t, "10.0.0.6", ssh, netns.Connected)
		p.Client.Expect(t, "10.0.0.5", ssh, netns.Connected)
		p.Client.Expect(t, "10.0.0.5", ssh, netns.Reset) // over, and no place: full flag
		p.Client.Expect(t, "10.0.0.7", ssh, netns.Reset) // under every limit, refused
		wantUnsizedFull(t, p, a, s)
	})
}
