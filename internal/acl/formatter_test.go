package acl_test

import (
	"math/rand/v2"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/acl/acltest"
)

// A Formatter formats each config of a random series of changes (each on
// a clone of the one before, as the agent's) byte for byte as Format does,
// and keeps the lines of the entries of the last only.
func TestFormatterAgrees(t *testing.T) {
	var f acl.Formatter
	var buf []byte
	for seed := range uint64(100) {
		r := rand.New(rand.NewPCG(seed, 9))
		c := acltest.Random(r)
		for step := range 40 {
			next := c.Clone()
			for n := 1 + r.IntN(4); n > 0; n-- {
				_, _ = randomOp(r, next)
			}
			if r.IntN(2) == 0 {
				c = next
			}
			for _, x := range []*acl.Config{next, c} {
				if got, want := f.Format(x), acl.Format(x); got != want {
					t.Fatalf("seed %d step %d: Formatter gives\n%s\nFormat gives\n%s", seed, step, got, want)
				}
			}
			buf = f.Append(append(buf[:0], "x"...), next)
			if got, want := string(buf), "x"+acl.Format(next); got != want {
				t.Fatalf("seed %d step %d: Formatter appends\n%s\nFormat gives\n%s", seed, step, got, want)
			}
			n := 0
			for _, a := range next.ACLs { // formatted last
				n += len(a.Entries)
			}
			if f.Cached() != n {
				t.Fatalf("seed %d step %d: %d lines kept for %d entries", seed, step, f.Cached(), n)
			}
		}
	}
}

// An entry's line depends on its list's family (`ip` or `ipv6` for any
// protocol): one entry in lists of both families formats in each.
func TestFormatterFamilies(t *testing.T) {
	e := &acl.Entry{Seq: 10, Proto: acl.ProtoAny}
	c := &acl.Config{ACLs: []*acl.ACL{
		{Name: "a", Family: acl.IPv4, Entries: []*acl.Entry{e}},
		{Name: "a", Family: acl.IPv6, Entries: []*acl.Entry{e}},
	}}
	var f acl.Formatter
	if got, want := f.Format(c), acl.Format(c); got != want {
		t.Errorf("Formatter gives\n%s\nFormat gives\n%s", got, want)
	}
}
