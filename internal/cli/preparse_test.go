package cli

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
)

// ApplyLines gives the same config, or the same error at the same line,
// with the bodies of access lists parsed ahead on every core as without:
// long scripts with lines broken at random, lines of other modes inside
// a body (walk-up), blank and comment lines, and lists entered again.
func TestPreparseAgrees(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0)))) // a preparse needs two
	defer func() { preparsing = true }()
	apply := func(on bool, lines []string) string {
		preparsing = on
		c, err := ApplyLines(acl.New(), Txn{Lines: lines})
		if err != nil {
			le := err.(*LineError)
			return fmt.Sprintf("line %d %q: %v", le.Line, le.Text, err)
		}
		return acl.Format(c)
	}
	broken := 0
	for seed := range 40 {
		r := rand.New(rand.NewPCG(uint64(seed), 11))
		lines := genACL(minPreparse + r.IntN(3*preparseChunk))
		for range r.IntN(4) {
			i := 1 + r.IntN(len(lines)-4)
			extra := []string{" ", "!", " ! note", " remark x", "ipv6 access-list extended six", " permit ipv6 any any",
				"ip access-list extended big", " interface eth9", " ip access-group big out", " exit"}[r.IntN(10)]
			lines = append(lines[:i], append([]string{extra}, lines[i:]...)...)
		}
		if r.IntN(3) > 0 {
			i := 1 + r.IntN(len(lines)-4)
			f := strings.Fields(lines[i])
			j := r.IntN(len(f))
			f[j] = []string{"300", "10.0.0.256", "x", "eq", "host", "999999", "any", "seq"}[r.IntN(8)]
			lines[i] = " " + strings.Join(f, " ")
			broken++
		}
		if with, without := apply(true, lines), apply(false, lines); with != without {
			t.Fatalf("seed %d: parsed ahead:\n%.2000s\nin order:\n%.2000s", seed, with, without)
		}
	}
	if broken < 10 {
		t.Errorf("only %d broken scripts", broken)
	}
}
