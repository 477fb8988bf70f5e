package nft_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/nftables/expr"

	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

var handleLineRE = regexp.MustCompile(`^\s*(.*) # handle (\d+)$`)

// handles maps each line of `nft -a list table inet slxsh` that carries a
// handle (rules, sets, counters, chains) to its handle, by the line's text
// with the chain it is in.
func handles(t *testing.T, ns *netns.NS) map[string]string {
	t.Helper()
	out := map[string]string{}
	chain := ""
	for _, line := range strings.Split(ns.MustExec(t, "nft", "-a", "list", "table", "inet", "slxsh"), "\n") {
		m := handleLineRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if strings.HasPrefix(m[1], "chain ") {
			chain = m[1]
		}
		key := chain + " | " + m[1]
		if _, dup := out[key]; dup {
			t.Fatalf("line listed twice: %s", key)
		}
		out[key] = m[2]
	}
	return out
}

// sameHandles counts the lines of after that have the handle they had in
// before, and returns the lines that are new or got a new handle.
func sameHandles(before, after map[string]string) (same int, changed []string) {
	for k, h := range after {
		if before[k] == h {
			same++
		} else {
			changed = append(changed, k)
		}
	}
	return same, changed
}

func generation(t *testing.T, a *nft.Applier) uint32 {
	t.Helper()
	g, err := nft.Generation(a)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// inSyncFresh checks rs against the kernel with a new Applier, which
// reads every rule back.
func inSyncFresh(t *testing.T, ns *netns.NS, rs *nft.Ruleset) {
	t.Helper()
	if d, err := applier(ns).Drift(rs); d != "" || err != nil {
		t.Fatalf("read back: drift %q, %v", d, err)
	}
}

// A one-entry change of a 10k-entry ACL compiled as rules deletes and
// adds only that entry's rules: every other rule, set, counter and chain
// keeps its handle. (Compiled with maps, the same change is one element:
// TestKernelMapChangeOfLargeACL.)
func TestKernelChangeOneEntryKeepsHandles(t *testing.T) {
	n := netns.New(t)
	linear := nft.Options{MapRun: -1}
	v0, v1 := benchRulesetWith(t, 10000, false, linear), benchRulesetWith(t, 10000, true, linear)
	a := applier(n)
	mustApply(t, a, v0)
	before := handles(t, n)
	gen := generation(t, a)
	if err := a.Apply(v1); err != nil {
		t.Fatal(err)
	}
	if g := generation(t, a); g != gen+1 {
		t.Errorf("generation %d after the change, want %d (one transaction)", g, gen+1)
	}
	after := handles(t, n)
	same, changed := sameHandles(before, after)
	t.Logf("%d lines kept their handles, changed: %q", same, changed)
	if len(changed) == 0 || len(changed) > 20 || same < len(before)-20 {
		t.Errorf("%d of %d lines kept their handles; changed: %v", same, len(after), changed)
	}
	for _, c := range changed {
		if !strings.Contains(c, "seq=5000") {
			t.Errorf("a line of another entry changed: %s", c)
		}
	}
	if ok, err := a.InSync(v1); !ok || err != nil {
		t.Errorf("InSync = %v, %v", ok, err)
	}
	inSyncFresh(t, n, v1)
	// And back: the new rules' handles were learned from the echoes.
	if err := a.Apply(v0); err != nil {
		t.Fatal(err)
	}
	if _, changed := sameHandles(before, handles(t, n)); len(changed) > 20 {
		t.Errorf("changing back replaced %d lines", len(changed))
	}
	inSyncFresh(t, n, v0)
	// Every limit after the changed entry starts afresh (nft.Renewals
	// without the configs takes every earlier entry as overlapping, the
	// most the agent ever renews): their sets are emptied, and still only
	// the changed entry's rules are replaced.
	renew := nft.Renewals(v0, v1, nil, nil)
	if len(renew) == 0 {
		t.Fatal("no renewals")
	}
	if err := a.Apply(v1, renew...); err != nil {
		t.Fatal(err)
	}
	openGates(t, a, v1)
	same, changed = sameHandles(before, handles(t, n))
	t.Logf("with %d renewed sets: %d lines kept, %d replaced", len(renew), same, len(changed))
	if len(changed) > 20 {
		t.Errorf("renewing %d sets replaced %d of %d lines", len(renew), len(changed), len(after))
	}
	inSyncFresh(t, n, v1)
}

// A restarted Applier that finds the saved state commits nothing for the
// same ruleset and changes another one rule by rule; a foreign commit or a
// damaged file sends it back to the full path.
func TestKernelRestartKeepsHandles(t *testing.T) {
	n := netns.New(t)
	state := filepath.Join(t.TempDir(), "nft-state")
	linear := nft.Options{MapRun: -1} // handles of rules: see TestKernelChangeOneEntryKeepsHandles
	v0, v1 := benchRulesetWith(t, 2000, false, linear), benchRulesetWith(t, 2000, true, linear)
	a := applier(n)
	a.SetStatePath(state)
	t.Cleanup(a.Flush)  // the writer, before the directory goes
	mustApply(t, a, v0) // with the gates opened: an element commit after the rules
	a.Flush()           // as the agent does when it stops

	b := applier(n)
	b.SetStatePath(state)
	t.Cleanup(b.Flush)
	gen := generation(t, b)
	before := handles(t, n)
	if err := b.Apply(v0); err != nil {
		t.Fatal(err)
	}
	if g := generation(t, b); g != gen {
		t.Errorf("restarted Applier committed the same ruleset (generation %d -> %d)", gen, g)
	}
	if d, err := b.Drift(v0); d != "" || err != nil {
		t.Errorf("restarted Applier: drift %q, %v", d, err)
	}
	if err := b.Apply(v1); err != nil {
		t.Fatal(err)
	}
	if same, changed := sameHandles(before, handles(t, n)); len(changed) == 0 || len(changed) > 20 {
		t.Errorf("restarted change: %d lines kept, changed %v", same, changed)
	}
	inSyncFresh(t, n, v1)
	b.Flush()

	// Someone else commits: the saved generation no longer holds.
	n.MustExec(t, "nft", "add", "table", "inet", "other")
	c := applier(n)
	c.SetStatePath(state)
	t.Cleanup(c.Flush)
	if d, _ := c.Drift(v1); d != "" {
		t.Errorf("after a foreign commit elsewhere: drift %q", d) // read back: still in sync
	}
	c.Flush()
	n.MustExec(t, "nft", "add", "rule", "inet", "slxsh", "input", "accept")
	d := applier(n)
	d.SetStatePath(state)
	t.Cleanup(d.Flush)
	if dr, _ := d.Drift(v1); dr == "" {
		t.Error("a foreign rule went unnoticed by a restarted Applier")
	}
	if err := d.Apply(v1); err != nil {
		t.Fatal(err)
	}
	inSyncFresh(t, n, v1)
	d.Flush()

	// A damaged file: the full path.
	data, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(state, data, 0o600); err != nil {
		t.Fatal(err)
	}
	e := applier(n)
	e.SetStatePath(state)
	t.Cleanup(e.Flush)
	gen = generation(t, e)
	if err := e.Apply(v1); err != nil {
		t.Fatal(err)
	}
	if g := generation(t, e); g != gen+1 {
		t.Errorf("with a damaged state file: generation %d -> %d, want a full apply", gen, g)
	}
	inSyncFresh(t, n, v1)
}

// A refused incremental transaction changes nothing, and the handles the
// Applier knows stay valid for the next change.
func TestKernelRefusedKeepsHandles(t *testing.T) {
	n := netns.New(t)
	a := applier(n)
	mustApply(t, a, slxRuleset(2))
	before := handles(t, n)
	err := a.Apply(slxRuleset(2, rule("acl=check seq=20", jump("no_such_chain"))))
	if !errors.Is(err, nft.ErrRefused) {
		t.Fatalf("apply with a jump to a missing chain: %v, want ErrRefused", err)
	}
	if _, changed := sameHandles(before, handles(t, n)); len(changed) != 0 {
		t.Errorf("refused transaction changed %v", changed)
	}
	want := slxRuleset(2, rule("acl=check seq=20", verdict1(expr.VerdictAccept)))
	if err := a.Apply(want); err != nil {
		t.Fatal(err)
	}
	if same, changed := sameHandles(before, handles(t, n)); len(changed) != 1 || same != len(before) {
		t.Errorf("after the refusal, the change kept %d of %d lines and changed %v", same, len(before), changed)
	}
	inSyncFresh(t, n, want)
}

// Renewing a limit set empties it (its counts start afresh) in the same
// transaction as the change; the set and the rules that use it stay.
func TestKernelRenewAfterIncremental(t *testing.T) {
	n := netns.New(t)
	a := applier(n)
	mustApply(t, a, slxRuleset(2))
	before := handles(t, n)
	want := slxRuleset(2, rule("acl=check seq=20", verdict1(expr.VerdictAccept)))
	if err := a.Apply(want, "s_check_10"); err != nil {
		t.Fatal(err)
	}
	inSyncFresh(t, n, want)
	if _, changed := sameHandles(before, handles(t, n)); len(changed) != 1 || !strings.Contains(changed[0], `"acl=check seq=20"`) {
		t.Errorf("renewal replaced %v, want only the new rule", changed)
	}
	// The renewed set is emptied (an element added by hand, which is a
	// commit of someone else: the full path).
	n.MustExec(t, "nft", "add", "element", "inet", "slxsh", "s_check_10", "{ 10.9.9.9 ct count over 2 }")
	if err := a.Apply(want, "s_check_10"); err != nil {
		t.Fatal(err)
	}
	if out := n.MustExec(t, "nft", "list", "set", "inet", "slxsh", "s_check_10"); strings.Contains(out, "10.9.9.9") {
		t.Errorf("renewed set kept its element:\n%s", out)
	}
	inSyncFresh(t, n, want)
}
