package cli

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/acl/acltest"
)

// The walk that skips tokens no keyword starts with (newMatcher's first walk) parses
// every line as the walk of every token does, and fails every broken line
// with the same error: random configurations, then the same with tokens
// cut, repeated, dropped or replaced.
func TestFastParseAgrees(t *testing.T) {
	defer func() { fastParse = true }()
	parse := func(fast bool, text string) (string, string) {
		fastParse = fast
		c, err := ParseConfig(text)
		if err != nil {
			return "", err.Error()
		}
		return acl.Format(c), ""
	}
	lines, broken := 0, 0
	for seed := range 300 {
		r := rand.New(rand.NewPCG(uint64(seed), 3))
		text := acl.Format(acltest.Random(r))
		if a, b := mustSame(t, parse, text); a != "" {
			t.Fatalf("seed %d: %s", seed, b)
		}
		ls := strings.Split(text, "\n")
		lines += len(ls)
		for range 20 {
			i := r.IntN(len(ls))
			f := strings.Fields(ls[i])
			if len(f) == 0 {
				continue
			}
			j := r.IntN(len(f))
			switch r.IntN(4) {
			case 0:
				f[j] = f[j][:r.IntN(len(f[j])+1)]
			case 1:
				f = append(f[:j+1], f[j:]...)
			case 2:
				f = append(f[:j], f[j+1:]...)
			default:
				f[j] = []string{"300", "10.0.0.256", "x", "eq", "host", "999999", "-1", "any"}[r.IntN(8)]
			}
			mod := append(append([]string{}, ls[:i]...), append([]string{" " + strings.Join(f, " ")}, ls[i+1:]...)...)
			if d, msg := mustSame(t, parse, strings.Join(mod, "\n")); d != "" {
				t.Fatalf("seed %d line %q: %s", seed, strings.Join(f, " "), msg)
			}
			broken++
		}
	}
	t.Logf("%d lines, %d broken variants", lines, broken)
}

func mustSame(t *testing.T, parse func(bool, string) (string, string), text string) (string, string) {
	t.Helper()
	fc, fe := parse(true, text)
	sc, se := parse(false, text)
	if fc != sc || fe != se {
		return "differs", "fast: " + fe + "\n" + fc + "\nslow: " + se + "\n" + sc
	}
	return "", ""
}

// Lines where a keyword typed out is not that keyword: a list or a time
// range named like one, keywords as the words of a remark or a message,
// keywords abbreviated or in capitals. Each parses as the walk of every
// token parses it.
func TestFastParseKeywordsAsWords(t *testing.T) {
	defer func() { fastParse = true }()
	texts := []string{
		"ip access-list extended permit\n seq 10 permit tcp any any eq 22\n!\ninterface eth1\n ip access-group permit in\n!",
		"ip access-list extended host\n remark permit tcp host any eq 22 log\n seq 10 deny ip any any log\n!",
		"ip access-list extended any\n seq 20 permit tcp any any eq 25 connlimit 2 refuse message \"permit host any eq 25\"\n!",
		"ip access-list extended eq\n SEQ 30 PERM TCP HO 10.0.0.1 ANY EQ 22 CONNL 3\n seq 40 permit udp any range 1 2 any\n!",
		"time-range permit\n periodic daily 08:00 to 17:00\n!\nip access-list extended log\n seq 10 permit tcp any any eq 22 time-range permit log\n!",
	}
	for _, text := range texts {
		var got [2]string
		for i, fast := range []bool{true, false} {
			fastParse = fast
			c, err := ParseConfig(text)
			if err != nil {
				got[i] = err.Error()
			} else {
				got[i] = acl.Format(c)
			}
		}
		if got[0] != got[1] {
			t.Errorf("%q:\nfast: %s\nslow: %s", text, got[0], got[1])
		}
		if strings.Contains(got[1], "% ") {
			t.Errorf("%q does not parse: %s", text, got[1]) // the cases are meant to be valid
		}
	}
}
