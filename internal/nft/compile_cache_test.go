package nft_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/acl/acltest"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/nft"
)

// Compiling with a Cache gives exactly what compiling without one gives,
// over sequences of random configurations that share most entries (each
// next one changes, adds or removes a few, as changes do), with options
// that change in between; and unchanged entries come back as the same
// rules (which is what the cache is for).
func TestCompileCacheAgrees(t *testing.T) {
	reused := 0
	for seed := range 200 {
		r := rand.New(rand.NewPCG(uint64(seed), 17))
		cache := &nft.Cache{}
		c := acltest.Random(r)
		for _, l := range c.ACLs {
			for _, e := range l.Entries {
				e.Owner = nil // no user database here
			}
		}
		var prev *nft.Ruleset
		for step := range 5 {
			o := goldenOptions
			o.MapRun = 2
			o.LookupUser = func(string) (uint32, error) { return 1000, nil }
			if step == 3 {
				o.SetSize = 4096 // other options: nothing of the cache may stay
			}
			fresh, ferr := nft.Compile(c, o)
			o.Cache = cache
			got, gerr := nft.Compile(c, o)
			if (ferr == nil) != (gerr == nil) || (ferr != nil && ferr.Error() != gerr.Error()) {
				t.Fatalf("seed %d step %d: errors differ: %v / %v", seed, step, ferr, gerr)
			}
			if ferr == nil {
				if fresh.String() != got.String() || !reflect.DeepEqual(cachedSetTexts(fresh), cachedSetTexts(got)) ||
					!slices.Equal(fresh.Counters, got.Counters) {
					t.Fatalf("seed %d step %d: cached compile differs\n%s\n%s\n%s", seed, step, acl.Format(c), fresh, got)
				}
				if prev != nil {
					reused += sharedRules(prev, got)
				}
				prev = got
			}
			c = mutate(r, c)
		}
	}
	if reused < 1000 {
		t.Fatalf("only %d rules came back from the cache: it is not used", reused)
	}
	t.Logf("%d rules reused", reused)
}

func cachedSetTexts(rs *nft.Ruleset) []string {
	var out []string
	for _, s := range rs.Sets {
		out = append(out, s.String())
	}
	return out
}

// sharedRules counts the rules of next that are the very rules of prev.
func sharedRules(prev, next *nft.Ruleset) int {
	in := map[*nft.Rule]bool{}
	for _, ch := range prev.Chains {
		for _, r := range ch.Rules {
			in[r] = true
		}
	}
	n := 0
	for _, ch := range next.Chains {
		for _, r := range ch.Rules {
			if in[r] {
				n++
			}
		}
	}
	return n
}

// mutate changes a few entries of a copy of c: one removed, one replaced
// by a random one (same seq), one added.
func mutate(r *rand.Rand, c *acl.Config) *acl.Config {
	n := c.Clone()
	other := acltest.Random(r)
	for _, l := range n.ACLs {
		if len(l.Entries) == 0 {
			continue
		}
		switch i := r.IntN(len(l.Entries)); r.IntN(3) {
		case 0:
			l.Entries = slices.Delete(l.Entries, i, i+1)
		default:
			for _, o := range other.ACLs {
				if o.Family == l.Family && len(o.Entries) > 0 {
					e := o.Entries[0].Clone()
					e.Seq, e.Owner = l.Entries[i].Seq, nil
					l.Entries[i] = e
					break
				}
			}
		}
	}
	if err := acl.Validate(n); err != nil {
		return c
	}
	return n
}

// benchChange is c with the change of benchConfig's changed, made as the
// agent makes it: through the shell's lines on a clone (which shares the
// other entries).
func benchChange(b testing.TB, c *acl.Config) *acl.Config {
	b.Helper()
	n := 0
	for _, l := range c.ACLs {
		n = max(n, len(l.Entries)-1)
	}
	seq := n / 2
	line := fmt.Sprintf("seq %d permit tcp host 10.%d.%d.%d any eq 65000", seq, seq/65536, seq/256%256, seq%256)
	if seq%100 == 0 {
		line += " connlimit 3"
	}
	next, err := cli.ApplyLines(c, cli.Txn{Lines: []string{"ip access-list extended big", fmt.Sprintf("no seq %d", seq), line}})
	if err != nil {
		b.Fatal(err)
	}
	if acl.Format(next) != benchConfigFormatted(b, true) {
		b.Fatal("the change is not benchConfig's")
	}
	return next
}

func benchConfigFormatted(b testing.TB, changed bool) string {
	return acl.Format(mustParse(b, benchConfig(50000, changed)))
}

// BenchmarkCompileChange compiles the 50k-entry list after a one-entry
// change, with the cache of the compile before it (as the agent does) and
// without.
func BenchmarkCompileChange(b *testing.B) {
	c0 := mustParse(b, benchConfig(50000, false))
	c1 := benchChange(b, c0)
	for _, cached := range []bool{false, true} {
		b.Run(map[bool]string{false: "fresh", true: "cached"}[cached], func(b *testing.B) {
			o := nft.Options{}
			if cached {
				o.Cache = &nft.Cache{}
			}
			if _, err := nft.Compile(c0, o); err != nil {
				b.Fatal(err)
			}
			cs := []*acl.Config{c1, c0}
			i := 0
			for b.Loop() {
				if _, err := nft.Compile(cs[i%2], o); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkRenewalsChange is Renewals after a one-entry change of the 50k
// list compiled with the cache (the old ruleset's view is kept).
func BenchmarkRenewalsChange(b *testing.B) {
	c0 := mustParse(b, benchConfig(50000, false))
	c1 := benchChange(b, c0)
	o := nft.Options{Cache: &nft.Cache{}}
	prev, err := nft.Compile(c0, o)
	if err != nil {
		b.Fatal(err)
	}
	nft.Renewals(prev, prev, c0, c0) // the old view, as the agent has it from the last change
	for b.Loop() {
		b.StopTimer()
		next, err := nft.Compile(c1, o)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		nft.Renewals(prev, next, c0, c1)
	}
}

// The same for a long list, cut into chunks of maps: a cached compile
// after random changes (entries replaced, added, removed, made to overlap
// their neighbours or not mappable, remarks) equals a fresh one, and the
// chunks a change does not touch come back whole (their lookup rules are
// the very rules of the compile before).
func TestCompileCacheAgreesLong(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 23))
	entry := func(seq int) *acl.Entry { return longEntry(r, seq) }
	c := longList(t, r, 12000)
	o := goldenOptions
	cached := o
	cached.Cache = &nft.Cache{}
	var prev *nft.Ruleset
	kept, maps := 0, 0
	for step := range 12 {
		fresh, err := nft.Compile(c, o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := nft.Compile(c, cached)
		if err != nil {
			t.Fatal(err)
		}
		if fresh.String() != got.String() || !reflect.DeepEqual(cachedSetTexts(fresh), cachedSetTexts(got)) ||
			!slices.Equal(fresh.Counters, got.Counters) {
			t.Fatalf("step %d: cached compile differs", step)
		}
		maps = 0
		for _, s := range got.Sets {
			if s.Map != nil {
				maps++
			}
		}
		if prev != nil {
			kept += sharedMaps(prev, got)
		}
		prev = got
		next := c.Clone()
		l := next.ACL(acl.IPv4, "big")
		for range 1 + r.IntN(4) {
			i := r.IntN(len(l.Entries))
			seq := l.Entries[i].Seq
			switch r.IntN(4) {
			case 0:
				_ = next.DeleteSeq(acl.IPv4, "big", seq)
			case 1:
				_ = next.DeleteSeq(acl.IPv4, "big", seq)
				_ = next.AddEntry(acl.IPv4, "big", entry(seq))
			case 2:
				_ = next.AddEntry(acl.IPv4, "big", &acl.Entry{Seq: 20000 + step*10 + r.IntN(9), Action: acl.Remark, Remark: "x"})
			default:
				_ = next.AddEntry(acl.IPv4, "big", entry(12000+1+r.IntN(20000)))
			}
		}
		if acl.Validate(next) == nil {
			c = next
		}
	}
	if maps < 5 {
		t.Fatalf("%d maps for 12k entries: not cut into chunks", maps)
	}
	if kept < 11*(maps/2) {
		t.Fatalf("only %d maps came back whole over 11 changes of %d maps", kept, maps)
	}
	t.Logf("%d maps, %d kept whole over the changes", maps, kept)
}

// sharedMaps counts the maps of next that are the very maps of prev.
func sharedMaps(prev, next *nft.Ruleset) int {
	in := map[*nft.VMap]bool{}
	for _, s := range prev.Sets {
		if s.Map != nil {
			in[s.Map] = true
		}
	}
	n := 0
	for _, s := range next.Sets {
		if s.Map != nil && in[s.Map] {
			n++
		}
	}
	return n
}

// longEntry is an entry of longList: tcp from a host of its own to its
// own port; one in 40 with a connlimit, one in 40 a deny, and one in 2000
// from any host to the port of the entry before (which ends a run).
func longEntry(r *rand.Rand, seq int) *acl.Entry {
	e := &acl.Entry{Seq: seq, Action: acl.Permit, Proto: acl.ProtoTCP,
		Src:     acl.NewPrefixAddr(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(seq >> 16), byte(seq >> 8), byte(seq)}), 32)),
		DstPort: acl.PortMatch{Op: acl.PortEq, Lo: uint16(seq)}}
	switch r.IntN(40) {
	case 0:
		e.Connlimits = []acl.Connlimit{{N: 3, Key: acl.PerSource}}
	case 1:
		e.Action = acl.Deny
	}
	if r.IntN(2000) == 0 {
		e.Src, e.DstPort.Lo = acl.AnyAddr, uint16(seq-1) // overlaps the entry before: ends a run
	}
	return e
}

// longList is an ACL "big" of n longEntry entries applied in on
// management 0.
func longList(t testing.TB, r *rand.Rand, n int) *acl.Config {
	t.Helper()
	c := acl.New()
	if _, err := c.EnsureACL(acl.IPv4, "big"); err != nil {
		t.Fatal(err)
	}
	for seq := 1; seq <= n; seq++ {
		if err := c.AddEntry(acl.IPv4, "big", longEntry(r, seq)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.EnsureInterface(acl.IfManagement, "0"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetAccessGroup(acl.IfManagement, "0", acl.IPv4, acl.In, "big"); err != nil {
		t.Fatal(err)
	}
	return c
}
