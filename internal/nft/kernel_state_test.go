package nft_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

// A PATH.gen that follows another PATH than the one on disk does not
// validate it, even of the same sum: here a stale PATH (put back as a
// write that failed or came late would leave it) from before a full
// apply of the same ruleset, which gave every rule a new handle, and a
// PATH.gen of an element commit after it. A restarted Applier takes the
// full path; with the stale handles its change would be refused.
func TestKernelStateStalePathNewerGen(t *testing.T) {
	n := netns.New(t)
	state := filepath.Join(t.TempDir(), "nft-state")
	linear := nft.Options{MapRun: -1} // rules with handles
	v0, v1 := benchRulesetWith(t, 2000, false, linear), benchRulesetWith(t, 2000, true, linear)
	a := applier(n)
	a.SetStatePath(state)
	t.Cleanup(a.Flush) // the writer, before the directory goes
	mustApply(t, a, v0)
	a.Flush()
	stale, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	// Someone else commits: a restarted Applier takes the full path,
	// which adds every rule again (the same sum, new handles).
	n.MustExec(t, "nft", "add", "table", "inet", "other")
	before := handles(t, n)
	c := applier(n)
	c.SetStatePath(state)
	t.Cleanup(c.Flush)
	mustApply(t, c, v0) // with an element commit: PATH.gen only
	c.Flush()
	if _, changed := sameHandles(before, handles(t, n)); len(changed) == 0 {
		t.Fatal("the full path changed no handle: the test proves nothing")
	}
	if err := os.WriteFile(state, stale, 0o600); err != nil {
		t.Fatal(err)
	}

	b := applier(n)
	b.SetStatePath(state)
	t.Cleanup(b.Flush)
	gen := generation(t, b)
	if err := b.Apply(v1); err != nil {
		t.Fatalf("restarted Applier with a stale PATH: %v", err)
	}
	if d, err := b.CheckKnowledge(); d != "" || err != nil {
		t.Errorf("restarted Applier knows the table wrong: %s %v", d, err)
	}
	if g := generation(t, b); g != gen+1 {
		t.Errorf("generation %d -> %d", gen, g)
	}
	inSyncFresh(t, n, v1)
}

// Changes, drift checks and element commits from several goroutines
// while the writer saves: after Flush, the file describes the last
// commit, and a restarted Applier adopts it without committing.
func TestKernelStateWriterConcurrent(t *testing.T) {
	n := netns.New(t)
	state := filepath.Join(t.TempDir(), "nft-state")
	vs := []*nft.Ruleset{benchRuleset(t, 300, false), benchRuleset(t, 300, true)}
	a := applier(n)
	a.SetStatePath(state)
	t.Cleanup(a.Flush)
	mustApply(t, a, vs[0])
	var wg sync.WaitGroup
	var mu sync.Mutex
	last := vs[0]
	for g := range 2 {
		wg.Go(func() {
			for i := range 10 {
				mu.Lock()
				rs := vs[(g+i)%2]
				if err := a.Apply(rs); err != nil {
					t.Error(err)
				}
				last = rs
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			mu.Lock()
			rs := last
			mu.Unlock()
			if _, err := a.Drift(rs); err != nil {
				t.Error(err)
			}
			if err := a.WriteReservations(nil, nil, nft.LimitSets(rs)); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	mustApply(t, a, last) // the gates opened last
	a.Flush()

	b := applier(n)
	b.SetStatePath(state)
	t.Cleanup(b.Flush)
	gen := generation(t, b)
	if err := b.Apply(last); err != nil {
		t.Fatal(err)
	}
	if g := generation(t, b); g != gen {
		t.Errorf("restarted Applier committed (generation %d -> %d): the saved state was not the last", gen, g)
	}
	inSyncFresh(t, n, last)
}
