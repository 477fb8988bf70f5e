package nft_test

import (
	"fmt"
	"math/rand/v2"
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
