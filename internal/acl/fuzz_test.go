package acl_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/acl/acltest"
)

// FuzzQuoteMessage: every text round-trips through QuoteMessage and
// UnquoteMessage, and UnquoteMessage never accepts a token that does not
// quote back to itself.
func FuzzQuoteMessage(f *testing.F) {
	for _, s := range []string{"", "x", `"`, `\`, `a\"b`, `"\\"`, "ünï"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := acl.QuoteMessage(s)
		if got, err := acl.UnquoteMessage(q); err != nil || got != s {
			t.Fatalf("UnquoteMessage(QuoteMessage(%q)) = %q, %v", s, got, err)
		}
		if u, err := acl.UnquoteMessage(s); err == nil && acl.QuoteMessage(u) != s {
			t.Fatalf("UnquoteMessage(%q) = %q, which quotes as %q", s, u, acl.QuoteMessage(u))
		}
	})
}

// FuzzParseLoadLimit: whatever parses formats back to the same value.
func FuzzParseLoadLimit(f *testing.F) {
	for _, s := range []string{"1", "1.5", "0.01", "999.99", "1000", "a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := acl.ParseLoadLimit(s)
		if err != nil {
			return
		}
		l2, err := acl.ParseLoadLimit(acl.FormatLoadLimit(l))
		if err != nil || l2 != l {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, l, acl.FormatLoadLimit(l), l2, err)
		}
	})
}

// FuzzRandom: every seed gives a valid config (Random panics otherwise)
// whose clone formats the same and is Equal.
func FuzzRandom(f *testing.F) {
	f.Add(uint64(0), uint64(0))
	f.Add(uint64(42), uint64(7))
	f.Fuzz(func(t *testing.T, a, b uint64) {
		c := acltest.Random(rand.New(rand.NewPCG(a, b)))
		if !acl.Equal(c, c.Clone()) {
			t.Fatal("clone differs")
		}
		for _, line := range strings.Split(acl.Format(c), "\n") {
			if strings.HasSuffix(line, " ") || strings.Contains(line, "\t") {
				t.Fatalf("line %q has trailing space or a tab", line)
			}
		}
	})
}
