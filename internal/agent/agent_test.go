package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/nft"
)

// The SLX example of issue 2, as two transactions.
var (
	slxACL = cli.Txn{Lines: []string{
		"ip access-list extended check",
		"permit tcp host 10.24.12.107 host 10.24.12.129 eq 22 connlimit 3",
		"permit ip any any",
	}}
	slxBind = cli.Txn{Lines: []string{"interface management 0", "ip access-group check in"}}
)

// testAgent is an agent on a fake kernel with its files in a temp dir.
type testAgent struct {
	*Agent
	kernel  *nft.Fake
	startup string
	state   string
}

func newTestAgent(t *testing.T) *testAgent {
	t.Helper()
	dir := t.TempDir()
	k := &nft.Fake{}
	o := nft.Options{MgmtInterface: "lo"}
	ta := &testAgent{kernel: k, startup: filepath.Join(dir, "startup-config"), state: filepath.Join(dir, "run", "running-config")}
	ta.Agent = New(Options{
		Kernel:      k,
		Compile:     func(c *acl.Config) (*nft.Ruleset, error) { return nft.Compile(c, o) },
		StartupPath: ta.startup,
		StatePath:   ta.state,
		Resolve: func(kind acl.IfKind, name string) string {
			return map[acl.IfKind]string{acl.IfManagement: "lo", acl.IfLinux: name}[kind]
		},
	})
	t.Cleanup(ta.Flush) // before dir goes: the last good file is written in the background
	return ta
}

func (ta *testAgent) mustConfigure(t *testing.T, txns ...cli.Txn) {
	t.Helper()
	for _, txn := range txns {
		if _, err := ta.Configure(txn); err != nil {
			t.Fatalf("Configure(%q): %v", txn.Lines, err)
		}
	}
}

func TestConfigureInstallsAndCommits(t *testing.T) {
	ta := newTestAgent(t)
	if _, err := ta.Start(); err != nil {
		t.Fatal(err)
	}
	ta.mustConfigure(t, slxACL, slxBind)
	run := ta.RunningText()
	for _, want := range []string{"ip access-list extended check", " seq 10 permit tcp host 10.24.12.107 host 10.24.12.129 eq 22 connlimit 3", "interface management 0", " ip access-group check in"} {
		if !strings.Contains(run, want+"\n") {
			t.Errorf("running-config lacks %q:\n%s", want, run)
		}
	}
	if ta.kernel.Current == nil || !strings.Contains(ta.kernel.Current.String(), `comment "acl=check dir=in seq=10"`) {
		t.Errorf("kernel does not hold the compiled ACL:\n%v", ta.kernel.Current)
	}
	if got := ta.NftablesText(); got != ta.kernel.Current.String() {
		t.Errorf("show nftables differs from the kernel's ruleset")
	}
	// The running config is kept for a restarted agent.
	saved, err := os.ReadFile(ta.state)
	if err != nil || string(saved) != string(ta.savedState()) {
		t.Errorf("state file = %q, %v; want the running-config (framed)", saved, err)
	}
}

func TestConfigureBadLineChangesNothing(t *testing.T) {
	ta := newTestAgent(t)
	ta.mustConfigure(t, slxACL, slxBind)
	before, applied := ta.RunningText(), ta.kernel.Applied
	_, err := ta.Configure(cli.Txn{Lines: []string{
		"ip access-list extended check",
		"seq 30 permit tcp any any eq 80",
		"seq 40 permit tcp any any eq 443 connlimit",
	}})
	var le *cli.LineError
	if !errors.As(err, &le) || le.Line != 2 || le.Kind != cli.ErrIncomplete {
		t.Fatalf("error = %#v, want the incomplete line 2", err)
	}
	if ta.RunningText() != before || ta.kernel.Applied != applied {
		t.Error("a failed transaction changed the running config or the kernel")
	}
}

func TestKernelRefusalChangesNothing(t *testing.T) {
	ta := newTestAgent(t)
	ta.mustConfigure(t, slxACL, slxBind)
	before, rules := ta.RunningText(), ta.kernel.Current
	ta.kernel.FailNext = errors.New("EINVAL")
	_, err := ta.Configure(cli.Txn{Lines: []string{"ip access-list extended check", "seq 30 deny tcp any any eq 23"}})
	if err == nil || !strings.HasPrefix(err.Error(), "% Error: the kernel refused") {
		t.Fatalf("error = %v, want a kernel refusal", err)
	}
	if ta.RunningText() != before || ta.kernel.Current != rules {
		t.Error("a refused change was committed")
	}
	// The next change applies to the old config.
	ta.mustConfigure(t, cli.Txn{Lines: []string{"ip access-list extended check", "seq 30 deny tcp any any eq 25"}})
	if run := ta.RunningText(); strings.Contains(run, "eq 23") || !strings.Contains(run, "eq smtp") && !strings.Contains(run, "eq 25") {
		t.Errorf("running-config after refusal and retry:\n%s", run)
	}
}

func TestConcurrentConfigureLosesNothing(t *testing.T) {
	ta := newTestAgent(t)
	ta.mustConfigure(t, cli.Txn{Lines: []string{"ip access-list extended many"}})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for shell := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				seq := 1 + shell*1000 + i
				_, err := ta.Configure(cli.Txn{
					Context: []string{"ip access-list extended many"},
					Lines:   []string{fmt.Sprintf("seq %d permit tcp any any eq %d", seq, 1000+seq)},
				})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(ta.Running().ACL(acl.IPv4, "many").Entries); n != 100 {
		t.Errorf("%d entries, want 100", n)
	}
}

func TestSaveStartReload(t *testing.T) {
	ta := newTestAgent(t)
	ta.mustConfigure(t, slxACL, slxBind)
	if err := ta.Save(); err != nil {
		t.Fatal(err)
	}
	saved, _ := os.ReadFile(ta.startup)
	if string(saved) != string(frameConfig(ta.RunningText())) {
		t.Fatalf("startup-config %q differs from running (framed)", saved)
	}
	running := ta.RunningText()

	// A fresh agent (no state file) starts from the startup-config.
	os.Remove(ta.state)
	tb := newTestAgent(t)
	tb.opts.StartupPath, tb.opts.StatePath = ta.startup, ""
	if _, err := tb.Start(); err != nil {
		t.Fatal(err)
	}
	if tb.RunningText() != running {
		t.Errorf("started with\n%s\nwant\n%s", tb.RunningText(), running)
	}

	// SIGHUP after editing the file: only the edit changes.
	edited := strings.Replace(running, " seq 20 permit ip any any\n", " seq 20 permit ip any any\n seq 30 deny udp any any\n", 1)
	if edited == running {
		t.Fatalf("edit did not apply to:\n%s", saved)
	}
	os.WriteFile(ta.startup, []byte(edited), 0o644)
	if _, err := tb.Reload(); err != nil {
		t.Fatal(err)
	}
	if tb.RunningText() != edited {
		t.Errorf("after reload:\n%s\nwant\n%s", tb.RunningText(), edited)
	}

	// A broken file keeps the running config.
	os.WriteFile(ta.startup, []byte("ip access-list extended check\n seq 10 permit bogus\n"), 0o644)
	if _, err := tb.Reload(); err == nil {
		t.Error("reload of a broken startup-config succeeded")
	}
	if tb.RunningText() != edited {
		t.Error("failed reload changed the running config")
	}
}

func TestStartAdoptsSavedRunningConfig(t *testing.T) {
	ta := newTestAgent(t)
	os.WriteFile(ta.startup, []byte("hostname from-startup\n"), 0o644)
	ta.mustConfigure(t, slxACL, slxBind) // writes the state file

	tb := newTestAgent(t)
	tb.opts.StartupPath, tb.opts.StatePath = ta.startup, ta.state
	if _, err := tb.Start(); err != nil {
		t.Fatal(err)
	}
	if tb.RunningText() != ta.RunningText() {
		t.Errorf("restarted agent runs\n%s\nwant the previous running-config\n%s", tb.RunningText(), ta.RunningText())
	}
}

func TestStartWithInvalidStartupConfigServes(t *testing.T) {
	ta := newTestAgent(t)
	os.WriteFile(ta.startup, []byte("ip access-list extended x\n seq 10 permit tcp any any eq 99999\n"), 0o644)
	if _, err := ta.Start(); err != nil {
		t.Fatalf("Start with an invalid startup-config: %v", err)
	}
	if ta.kernel.Applied != 0 {
		t.Error("kernel touched although the config is invalid")
	}
	if ta.StartupLoaded() {
		t.Error("StartupLoaded after an invalid startup-config")
	}
	// show startup-config names the file, the line and the bad token.
	text, err := ta.StartupText()
	if want := ta.startup + `:2: % Invalid input detected at '^' marker. (line "seq 10 permit tcp any any eq 99999", at "99999")`; err != nil || !strings.Contains(text, want) {
		t.Errorf("show startup-config = %q, %v; want it to contain %q", text, err, want)
	}
	if !strings.HasPrefix(text, "! % This startup-config was NOT loaded at start: ") || !strings.HasSuffix(text, "eq 99999\n") {
		t.Errorf("show startup-config:\n%s", text)
	}
}

func TestRepairDrift(t *testing.T) {
	ta := newTestAgent(t)
	ta.mustConfigure(t, slxACL, slxBind)
	want := ta.kernel.Current
	if repaired, err := ta.RepairDrift(); repaired || err != nil {
		t.Fatalf("in sync: RepairDrift = %v, %v", repaired, err)
	}
	ta.kernel.Set(nil) // nft delete table inet slxsh
	if repaired, err := ta.RepairDrift(); !repaired || err != nil {
		t.Fatalf("table deleted: RepairDrift = %v, %v", repaired, err)
	}
	if ta.kernel.Current != want {
		t.Error("table not restored")
	}
	ta.kernel.Set(&nft.Ruleset{Table: "slxsh"}) // emptied
	ta.RepairDrift()
	if ta.kernel.Current != want {
		t.Error("emptied table not restored")
	}
}

// TestCountersByDirection: `show access-list ip NAME in|out` (SLX) counts
// one direction; without a direction both are summed.
func TestCountersByDirection(t *testing.T) {
	ta := newTestAgent(t)
	ta.mustConfigure(t, slxACL, cli.Txn{Lines: []string{"interface management 0", "ip access-group check in", "ip access-group check out"}})
	in, _ := nft.CounterNames(acl.IPv4, "check", acl.In, 10)
	out, _ := nft.CounterNames(acl.IPv4, "check", acl.Out, 10)
	ta.kernel.Values = map[string]nft.CounterValue{in: {Packets: 5}, out: {Packets: 3}}
	for dir, want := range map[string]uint64{"": 8, "in": 5, "out": 3} {
		got, err := ta.Counters(acl.IPv4, "check", dir)
		if err != nil || len(got) == 0 || got[0].Matches != want {
			t.Errorf("Counters(%q) = %v, %v; want seq 10 with %d matches", dir, got, err, want)
		}
	}
}

// TestReplacedEntryCountsFromZero: an entry put at the seq of another in
// one block, or moved there by a resequence, counts from zero (the
// kernel's counters are named by seq); an entry re-sent unchanged and the
// entries a change leaves alone keep their counts.
func TestReplacedEntryCountsFromZero(t *testing.T) {
	ta := newTestAgent(t)
	ta.mustConfigure(t, cli.Txn{Lines: []string{"ip access-list extended check",
		"seq 10 permit tcp any any eq 22", "seq 20 deny tcp any any eq 80", "seq 30 permit ip any any"}}, slxBind)
	name := func(seq int) string { m, _ := nft.CounterNames(acl.IPv4, "check", acl.In, seq); return m }
	ta.kernel.Values = map[string]nft.CounterValue{name(10): {Packets: 2}, name(20): {Packets: 3}, name(30): {Packets: 4}}
	matches := func() map[int]uint64 {
		got, err := ta.Counters(acl.IPv4, "check", "")
		if err != nil {
			t.Fatal(err)
		}
		out := map[int]uint64{}
		for _, c := range got {
			if c.Seq != 0 {
				out[c.Seq] = c.Matches
			}
		}
		return out
	}
	ta.mustConfigure(t, cli.Txn{Context: []string{"ip access-list extended check"}, Lines: []string{"seq 10 permit tcp any any eq 22", "no seq 20", "seq 20 permit udp any any eq 53"}})
	if got := matches(); got[10] != 2 || got[20] != 0 || got[30] != 4 {
		t.Errorf("after replacing seq 20 in one block: %v, want 10:2 20:0 30:4", got)
	}
	ta.kernel.Values[name(20)] = nft.CounterValue{Packets: 5} // the udp entry's 2
	// resequence 10 5: 10 stays, 20 moves to 15, 30 moves to 20.
	ta.mustConfigure(t, cli.Txn{Context: []string{"ip access-list extended check"}, Lines: []string{"resequence 10 5"}})
	if got := matches(); got[10] != 2 || got[20] != 0 {
		t.Errorf("after resequence: %v, want 10 kept at 2 and the entry moved to 20 from zero, not seq 20's 2", got)
	}
}

// TestBaselinesPruned: after clear access-list counters, an entry deleted
// and added again counts from its own zero, the entries a change leaves
// alone keep their baselines, and a deleted list takes its baselines with
// it (pruneBaselinesLocked walks only what the change touched).
func TestBaselinesPruned(t *testing.T) {
	ta := newTestAgent(t)
	ta.mustConfigure(t, cli.Txn{Lines: []string{"ip access-list extended check",
		"seq 10 permit tcp any any eq 22", "seq 20 permit tcp any any eq 80"}}, slxBind,
		cli.Txn{Lines: []string{"ip access-list extended other", "seq 10 permit ip any any"}})
	m10, _ := nft.CounterNames(acl.IPv4, "check", acl.In, 10)
	m20, _ := nft.CounterNames(acl.IPv4, "check", acl.In, 20)
	o10, _ := nft.CounterNames(acl.IPv4, "other", acl.In, 10)
	ta.kernel.Values = map[string]nft.CounterValue{m10: {Packets: 5}, m20: {Packets: 7}, o10: {Packets: 3}}
	if err := ta.ClearCounters(acl.IPv4, ""); err != nil {
		t.Fatal(err)
	}
	ta.mustConfigure(t, cli.Txn{Context: []string{"ip access-list extended check"}, Lines: []string{"no seq 20"}},
		cli.Txn{Lines: []string{"no ip access-list extended other"}})
	ta.mu.Lock()
	_, has10 := ta.baseline[m10]
	_, has20 := ta.baseline[m20]
	_, hasO := ta.baseline[o10]
	ta.mu.Unlock()
	if !has10 || has20 || hasO {
		t.Errorf("baselines: seq 10 %v (want kept), deleted seq 20 %v, deleted list %v (want gone)", has10, has20, hasO)
	}
	// Added again: a new kernel counter that counts 2 shows 2.
	ta.mustConfigure(t, cli.Txn{Context: []string{"ip access-list extended check"}, Lines: []string{"seq 20 permit tcp any any eq 80"}})
	ta.kernel.Values[m20] = nft.CounterValue{Packets: 9}
	got, _ := ta.Counters(acl.IPv4, "check", "")
	if len(got) < 2 || got[0].Matches != 0 || got[1].Matches != 9 {
		t.Errorf("after re-adding seq 20: %v, want seq 10 at 0 (cleared), seq 20 at 9 (its own)", got)
	}
}

// TestBaselinesAcrossReloadAndUnbind: an identical reload (every entry
// parsed anew) keeps the baselines of clear access-list counters (review:
// the pointer walk dropped them all); unbinding a list in a direction drops
// its baselines there, since its kernel counters go with the binding.
func TestBaselinesAcrossReloadAndUnbind(t *testing.T) {
	ta := newTestAgent(t)
	ta.mustConfigure(t, cli.Txn{Lines: []string{"ip access-list extended check",
		"seq 10 permit tcp any any eq 22", "seq 20 permit tcp any any eq 80"}}, slxBind)
	m10, _ := nft.CounterNames(acl.IPv4, "check", acl.In, 10)
	ta.kernel.Values = map[string]nft.CounterValue{m10: {Packets: 5}}
	if err := ta.ClearCounters(acl.IPv4, ""); err != nil {
		t.Fatal(err)
	}
	if err := ta.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := ta.Reload(); err != nil {
		t.Fatal(err)
	}
	if got, _ := ta.Counters(acl.IPv4, "check", ""); len(got) == 0 || got[0].Seq != 10 || got[0].Matches != 0 {
		t.Errorf("after clear and an identical reload: %v, want seq 10 at 0", got)
	}
	ta.mustConfigure(t, cli.Txn{Context: []string{"interface management 0"}, Lines: []string{"no ip access-group check in"}})
	ta.mustConfigure(t, slxBind)
	ta.kernel.Values[m10] = nft.CounterValue{Packets: 9} // the new kernel counter's own 9
	if got, _ := ta.Counters(acl.IPv4, "check", ""); len(got) == 0 || got[0].Matches != 9 {
		t.Errorf("after unbind and bind again: %v, want seq 10 at 9", got)
	}
}

func TestCountersAndClear(t *testing.T) {
	ta := newTestAgent(t)
	ta.mustConfigure(t, slxACL, slxBind)
	m10, r10 := nft.CounterNames(acl.IPv4, "check", acl.In, 10)
	m20, _ := nft.CounterNames(acl.IPv4, "check", acl.In, 20)
	why10 := nft.ReasonCounterName(nft.EntryRef{Family: acl.IPv4, ACL: "check", Dir: acl.In, Seq: 10}, nft.RoleConnlimit)
	implicit := nft.ImplicitDenyCounter(acl.IPv4, "check", acl.In)
	ta.kernel.Values = map[string]nft.CounterValue{m10: {Packets: 15}, r10: {Packets: 2}, why10: {Packets: 2}, m20: {Packets: 7}, implicit: {Packets: 4}}
	got, err := ta.Counters(acl.IPv4, "check", "")
	if err != nil {
		t.Fatal(err)
	}
	// Seq 10's refusals by reason; the ACL's own line (seq 0): the
	// implicit deny's refusals, and the blocked ones.
	want := []cli.EntryCounters{{Seq: 10, Matches: 15, Refused: 2, Reasons: map[string]uint64{"connlimit": 2}}, {Seq: 20, Matches: 7},
		{Refused: 4, Reasons: map[string]uint64{"blocked": 0}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Counters = %v, want %v", got, want)
	}
	if err := ta.ClearCounters(acl.IPv4, "check"); err != nil {
		t.Fatal(err)
	}
	ta.kernel.Values[m10] = nft.CounterValue{Packets: 16}
	got, _ = ta.Counters(acl.IPv4, "check", "")
	if got[0].Matches != 1 || got[0].Refused != 0 || got[1].Matches != 0 || got[0].Reasons["connlimit"] != 0 || got[2].Refused != 0 {
		t.Errorf("after clear: %v, want 1/0 and 0", got)
	}
	// Prometheus sees the kernel's monotonic values.
	counts, _ := ta.Counts()
	if len(counts) != 2 || counts[0].Matches != 16 || counts[0].Refused != 2 {
		t.Errorf("Counts = %+v", counts)
	}
	if err := ta.ClearCounters(acl.IPv4, "nope"); err == nil || !strings.HasPrefix(err.Error(), "% Error:") {
		t.Errorf("clearing a missing ACL: %v", err)
	}
}

// TestUnknownUserWarns: an entry of a list applied nowhere whose user does
// not resolve is accepted with a warning when it is entered (applying the
// list is refused, as Compile cannot resolve it), not at every later line.
func TestUnknownUserWarns(t *testing.T) {
	ta := newTestAgent(t)
	ta.opts.LookupUser = func(name string) (uint32, error) {
		if name == "bob" {
			return 1000, nil
		}
		return 0, errors.New("no such user on this host")
	}
	warns, err := ta.Configure(cli.Txn{Context: []string{"ip access-list extended out"}, Lines: []string{"seq 10 permit tcp any any user nosuch", "seq 20 permit tcp any any user bob"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "% Warning: ip access-list extended out seq 10: user nosuch: no such user on this host; the list cannot be applied until it resolves"
	if len(warns) != 1 || warns[0] != want {
		t.Errorf("warnings = %q, want %q", warns, want)
	}
	// Told once: a later line does not repeat it.
	if warns, err := ta.Configure(cli.Txn{Context: []string{"ip access-list extended out"}, Lines: []string{"seq 30 permit ip any any"}}); err != nil || len(warns) != 0 {
		t.Errorf("later line: %q, %v", warns, err)
	}
	if !strings.Contains(ta.RunningText(), "seq 10 permit tcp any any user nosuch\n") {
		t.Error("entry not kept")
	}
}

func TestMissingInterfaceWarns(t *testing.T) {
	ta := newTestAgent(t)
	ta.mustConfigure(t, slxACL)
	warns, err := ta.Configure(cli.Txn{Lines: []string{"interface slxnope0", "ip access-group check in"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || !strings.HasPrefix(warns[0], "% Warning: interface slxnope0 does not exist") {
		t.Errorf("warnings = %q", warns)
	}
	if !strings.Contains(ta.RunningText(), "interface slxnope0\n ip access-group check in\n") {
		t.Error("binding on a missing interface not accepted")
	}
}

// TestRevertOutOfRange: a revert timer the shell would not send (0, a
// negative, more than a day, one whose duration overflows) is refused with
// an error and arms nothing: before, 153722868 minutes overflowed to a
// deadline in the past and reverted at once.
func TestRevertOutOfRange(t *testing.T) {
	ta := newTestAgent(t)
	ta.mustConfigure(t, slxACL, slxBind)
	for _, m := range []int{0, -1, cli.MaxRevertMinutes + 1, 153722868, 99999999999} {
		err := ta.Revert(m)
		if err == nil || !strings.HasPrefix(err.Error(), "% Error: revert timer") {
			t.Errorf("Revert(%d) = %v, want %% Error: revert timer ...", m, err)
		}
	}
	if err := ta.Revert(cli.MaxRevertMinutes); err != nil {
		t.Fatalf("Revert(%d): %v", cli.MaxRevertMinutes, err)
	}
	if err := ta.Confirm(); err != nil {
		t.Fatal(err)
	}
}

func TestRevertTimer(t *testing.T) {
	ta := newTestAgent(t)
	ta.opts.RevertUnit = 20 * time.Millisecond
	ta.mustConfigure(t, slxACL, slxBind)
	before := ta.RunningText()

	// Not confirmed: the previous config comes back.
	if err := ta.Revert(1); err != nil {
		t.Fatal(err)
	}
	if err := ta.Revert(1); err == nil {
		t.Error("a second revert timer was armed")
	}
	ta.mustConfigure(t, cli.Txn{Lines: []string{"interface management 0", "no ip access-group check in"}})
	deadline := time.Now().Add(5 * time.Second)
	for ta.RunningText() != before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if ta.RunningText() != before {
		t.Fatalf("not reverted:\n%s", ta.RunningText())
	}
	if ta.kernel.Current.String() != ta.NftablesText() || !strings.Contains(ta.NftablesText(), "jump ip_check_in") {
		t.Error("the kernel was not reverted with the running config")
	}

	// Confirmed: the change stays. A change made while the timer runs
	// (by any shell) is told that the revert would take it too; one made
	// after the confirm is not.
	if err := ta.Revert(1); err != nil {
		t.Fatal(err)
	}
	warns, err := ta.Configure(cli.Txn{Lines: []string{"hostname confirmed"}})
	if err != nil || len(warns) != 1 || !strings.HasPrefix(warns[0], "% Warning: a configure revert timer is running") {
		t.Errorf("a change under the revert timer: warnings %q, %v", warns, err)
	}
	if err := ta.Confirm(); err != nil {
		t.Fatal(err)
	}
	if warns, err := ta.Configure(cli.Txn{Lines: []string{"hostname confirmed2"}}); err != nil || len(warns) != 0 {
		t.Errorf("a change after the confirm: warnings %q, %v", warns, err)
	}
	ta.mustConfigure(t, cli.Txn{Lines: []string{"hostname confirmed"}})
	time.Sleep(60 * time.Millisecond)
	if !strings.Contains(ta.RunningText(), "host-name confirmed") {
		t.Error("confirmed change was reverted")
	}
	if err := ta.Confirm(); err == nil {
		t.Error("confirm without a timer succeeded")
	}
}

func TestMissingInterfaceWarnsOnce(t *testing.T) {
	ta := newTestAgent(t)
	ta.mustConfigure(t, slxACL)
	if warns, _ := ta.Configure(cli.Txn{Lines: []string{"interface slxnope0", "ip access-group check in"}}); len(warns) != 1 {
		t.Fatalf("binding: warnings %q", warns)
	}
	if warns, _ := ta.Configure(cli.Txn{Lines: []string{"hostname other"}}); len(warns) != 0 {
		t.Errorf("unrelated change repeats the warning: %q", warns)
	}
	if warns, _ := ta.Replace(ta.Running(), "reload"); len(warns) != 1 {
		t.Errorf("reload: warnings %q, want the missing interface again", warns)
	}
}

func TestRecompileFollowsTheHost(t *testing.T) {
	ta := newTestAgent(t)
	uid := uint32(1000)
	ta.opts.Compile = func(c *acl.Config) (*nft.Ruleset, error) {
		return nft.Compile(c, nft.Options{MgmtInterface: "lo",
			LookupUser: func(string) (uint32, error) { return uid, nil }})
	}
	out := cli.Txn{Lines: []string{"ip access-list extended own", "permit tcp any any eq 22 user alice", "interface management 0", "ip access-group own out"}}
	ta.mustConfigure(t, out)
	if changed, err := ta.Recompile(); changed || err != nil {
		t.Fatalf("nothing changed: Recompile = %v, %v", changed, err)
	}
	uid = 1001 // the user database, which the ruleset depends on
	if changed, err := ta.Recompile(); !changed || err != nil {
		t.Fatalf("host changed: Recompile = %v, %v", changed, err)
	}
	if !strings.Contains(ta.kernel.Current.String(), `meta skuid 1001`) || ta.NftablesText() != ta.kernel.Current.String() {
		t.Error("recompiled ruleset not installed")
	}
	// A config that depends on nothing of the host is not compiled again.
	calls := 0
	ta.opts.Compile = func(c *acl.Config) (*nft.Ruleset, error) {
		calls++
		return nft.Compile(c, nft.Options{MgmtInterface: "lo"})
	}
	ta.mustConfigure(t, cli.Txn{Lines: []string{"interface management 0", "no ip access-group own out", "exit", "no ip access-list extended own"}}, slxACL, slxBind)
	calls = 0
	if changed, err := ta.Recompile(); changed || err != nil || calls != 0 {
		t.Errorf("host-independent config: Recompile = %v, %v after %d compiles", changed, err, calls)
	}
	// Unless management 0 follows the default route.
	ta.opts.MgmtFollowsRoute = true
	if _, err := ta.Recompile(); err != nil || calls != 1 {
		t.Errorf("management 0 following the route: %d compiles, %v", calls, err)
	}
}

// unboundUnderRevert configures the example, arms a revert timer of one
// unit and unbinds the list; it returns the config the timer returns to.
func unboundUnderRevert(t *testing.T, ta *testAgent, unit time.Duration) string {
	t.Helper()
	ta.opts.RevertUnit = unit
	ta.mustConfigure(t, slxACL, slxBind)
	before := ta.RunningText()
	if err := ta.Revert(1); err != nil {
		t.Fatal(err)
	}
	ta.mustConfigure(t, cli.Txn{Lines: []string{"interface management 0", "no ip access-group check in"}})
	return before
}

func TestRevertTimerSurvivesRestart(t *testing.T) {
	ta := newTestAgent(t)
	before := unboundUnderRevert(t, ta, 200*time.Millisecond)
	ta.mu.Lock()
	ta.revert.Stop() // the agent dies before the timer fires
	ta.mu.Unlock()

	tb := newTestAgent(t)
	tb.opts.StatePath = ta.state
	if _, err := tb.Start(); err != nil {
		t.Fatal(err)
	}
	if tb.RunningText() == before {
		t.Fatal("restarted agent did not adopt the unconfirmed config")
	}
	deadline := time.Now().Add(5 * time.Second)
	for tb.RunningText() != before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if tb.RunningText() != before {
		t.Fatalf("restarted agent did not revert:\n%s", tb.RunningText())
	}
	if _, err := os.Stat(ta.state + ".revert"); err == nil {
		t.Error("revert file left after the revert")
	}
}

// After every change the state file holds acl.Format of the running
// config, byte for byte (the agent formats only the entries a change
// makes), including after renumbering and refused changes.
func TestStateFileFollowsChanges(t *testing.T) {
	ta := newTestAgent(t)
	if _, err := ta.Start(); err != nil {
		t.Fatal(err)
	}
	ta.mustConfigure(t, slxACL, slxBind)
	changes := [][]string{
		{"ip access-list extended check", "seq 15 deny udp any any eq 53", "remark dns"},
		{"ip access-list extended check", "no seq 10"},
		{"ip access-list extended check", "seq 15 deny udp any any eq 53"}, // identical: no change
		{"ip access-list extended check", "seq 16 deny udp any any eq 53"}, // refused: a duplicate
		{"ip access-list extended check", "resequence 100 5"},
		{"time-range office", "periodic weekdays 08:00 to 18:00", "ip access-list extended check", "permit tcp any any eq 80 time-range office"},
		{"ipv6 access-list extended six", "permit ipv6 any any", "ip access-list extended check", "no permit ip any any"},
	}
	for _, lines := range changes {
		_, _ = ta.Configure(cli.Txn{Lines: lines})
		saved, err := os.ReadFile(ta.state)
		if want := ta.savedState(); err != nil || string(saved) != string(want) {
			t.Fatalf("after %q the state file is\n%s\nwant\n%s", lines, saved, want)
		}
	}
}

// A revert the kernel refuses is tried again, and its file stays until
// the previous config is back (an agent killed meanwhile reverts at its
// restart).
func TestRevertRefusedTriesAgain(t *testing.T) {
	ta := newTestAgent(t)
	defer func(d time.Duration) { revertRetry = d }(revertRetry)
	revertRetry = 100 * time.Millisecond
	before := unboundUnderRevert(t, ta, 150*time.Millisecond)
	ta.mu.Lock()
	ta.kernel.FailNext = errors.New("no memory")
	ta.mu.Unlock()
	refused := func() bool {
		ta.mu.Lock()
		defer ta.mu.Unlock()
		return ta.kernel.FailNext == nil
	}
	for end := time.Now().Add(5 * time.Second); !refused() && time.Now().Before(end); {
		time.Sleep(5 * time.Millisecond)
	}
	if !refused() || ta.RunningText() == before {
		t.Fatal("the refused revert did not happen as refused")
	}
	if _, err := os.Stat(ta.state + ".revert"); err != nil {
		t.Errorf("revert file gone after a refused revert: %v", err)
	}
	for end := time.Now().Add(5 * time.Second); ta.RunningText() != before && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	if ta.RunningText() != before {
		t.Fatalf("not reverted after the retry:\n%s", ta.RunningText())
	}
	if _, err := os.Stat(ta.state + ".revert"); err == nil {
		t.Error("revert file left after the revert")
	}
}

// TestCompileErrorNamesItsLine: an error that only the compiler finds
// names the line of the block that made its entry or interface what it
// is, not the block's last line (a scripted block reports that line).
func TestCompileErrorNamesItsLine(t *testing.T) {
	ta := newTestAgent(t)
	o := nft.Options{MgmtInterface: "lo", LookupUser: func(name string) (uint32, error) {
		return 0, errors.New("no such user on this host")
	}}
	ta.opts.Compile = func(c *acl.Config) (*nft.Ruleset, error) { return nft.Compile(c, o) }
	block := []string{
		"ip access-list extended a",
		"seq 10 permit tcp any any eq 80",
		"seq 20 permit tcp any any eq 22%s",
		"seq 30 permit ip any any",
		"exit",
		"interface %s",
		"ip access-group a %s",
		"end",
	}
	for _, c := range []struct {
		opt, itf, dir string
		line          int
		msg           string
	}{
		{"", "ethernet 0/3", "in", 6, "interface ethernet 0/3: no Linux interface is mapped"},
		{" user nosuch", "management 0", "out", 2, "ip access-list extended a seq 20: user nosuch"},
	} {
		lines := slices.Clone(block)
		lines[2], lines[5], lines[6] = fmt.Sprintf(lines[2], c.opt), fmt.Sprintf(lines[5], c.itf), fmt.Sprintf(lines[6], c.dir)
		before := ta.RunningText()
		_, err := ta.Configure(cli.Txn{Lines: lines})
		var le *cli.LineError
		if !errors.As(err, &le) || le.Line != c.line || !strings.Contains(le.Error(), c.msg) {
			t.Errorf("%s %s: error %v (%+v), want line %d (%q) with %q", c.itf, c.dir, err, le, c.line, lines[c.line], c.msg)
		}
		if ta.RunningText() != before {
			t.Errorf("%s %s: the refused block changed the running-config", c.itf, c.dir)
		}
	}
	// An entry the block does not change has no line of it: the error
	// stays the block's (the shell names its last line).
	ta.mustConfigure(t, cli.Txn{Lines: []string{"ip access-list extended a", "seq 20 permit tcp any any eq 22 user nosuch"}})
	_, err := ta.Configure(cli.Txn{Lines: []string{"interface management 0", "ip access-group a out", "end"}})
	var le *cli.LineError
	if err == nil || errors.As(err, &le) || !strings.Contains(err.Error(), "seq 20: user nosuch") {
		t.Errorf("binding a list with an unknown user: %v (%+v), want its error without a line", err, le)
	}
}
