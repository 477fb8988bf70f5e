package agent

import (
	"os"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/nft"
)

// TestClearedCountersSurviveRestart: a restarted agent that adopts the
// table shows the counters from the last clear, not the kernel's totals.
func TestClearedCountersSurviveRestart(t *testing.T) {
	ta := newTestAgent(t)
	ta.mustConfigure(t, slxACL, slxBind)
	m10, r10 := nft.CounterNames(acl.IPv4, "check", acl.In, 10)
	ta.kernel.Values = map[string]nft.CounterValue{m10: {Packets: 15}, r10: {Packets: 2}}
	if err := ta.ClearCounters(acl.IPv4, ""); err != nil {
		t.Fatal(err)
	}
	ta.kernel.Values[m10] = nft.CounterValue{Packets: 18}

	// Restart on the same kernel table (kill -9: nothing is saved at exit).
	tb := newTestAgent(t)
	tb.kernel = ta.kernel
	tb.opts.Kernel, tb.opts.StatePath = ta.kernel, ta.state
	if _, err := tb.Start(); err != nil {
		t.Fatal(err)
	}
	got, err := tb.Counters(acl.IPv4, "check", "")
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Matches != 3 || got[0].Refused != 0 {
		t.Errorf("after restart: seq 10 %d matches, %d refused; want 3, 0 (since the clear)", got[0].Matches, got[0].Refused)
	}

	// The table deleted and restored: its counters start from zero, and so
	// does show, also once they grow past the old baselines.
	tb.kernel.Set(nil)
	tb.kernel.Values = map[string]nft.CounterValue{}
	if repaired, err := tb.RepairDrift(); !repaired || err != nil {
		t.Fatalf("RepairDrift = %v, %v", repaired, err)
	}
	tb.kernel.Values[m10] = nft.CounterValue{Packets: 20}
	if got, _ := tb.Counters(acl.IPv4, "check", ""); got[0].Matches != 20 {
		t.Errorf("after the table was recreated: %d matches, want 20", got[0].Matches)
	}
	if _, err := os.Stat(ta.state + ".counters"); err == nil {
		t.Error("baselines of recreated counters still saved")
	}
}

// TestStartFromStartupForgetsBaselines: an agent that does not adopt (no
// state: a new boot) ignores baselines left behind.
func TestStartFromStartupForgetsBaselines(t *testing.T) {
	ta := newTestAgent(t)
	os.MkdirAll(ta.state[:len(ta.state)-len("/running-config")], 0o755)
	os.WriteFile(ta.state+".counters", []byte(`{"x":5}`), 0o600)
	if _, err := ta.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ta.state + ".counters"); err == nil {
		t.Error("stale baselines kept")
	}
}
