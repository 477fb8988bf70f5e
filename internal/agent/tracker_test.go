package agent

import (
	"errors"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/conntrack"
	"github.com/slxsh/slxsh/internal/nft"
)

// fakeTracker records the calls the agent makes around each apply.
type fakeTracker struct {
	kernel     *nft.Fake
	calls      []string
	prepareErr error
	keys       []conntrack.KeyCount
	// installed records when each Installed ran and under which
	// existing-sessions policy.
	installed []installCall
}

type installCall struct {
	at     time.Time
	policy acl.SessionPolicy
}

func (f *fakeTracker) Prepare(rs *nft.Ruleset) error {
	// Prepare must run before the ruleset is in the kernel.
	if f.kernel.Current == rs {
		f.calls = append(f.calls, "prepare-after-apply")
	} else {
		f.calls = append(f.calls, "prepare")
	}
	return f.prepareErr
}

func (f *fakeTracker) Installed(cfg *acl.Config, rs *nft.Ruleset) error {
	if f.kernel.Current != rs {
		f.calls = append(f.calls, "installed-before-apply")
	} else {
		f.calls = append(f.calls, "installed")
	}
	f.installed = append(f.installed, installCall{time.Now(), cfg.ExistingSessions})
	return nil
}

func (f *fakeTracker) Sessions(cfg *acl.Config, fam acl.Family, name string, seq int) ([]conntrack.KeyCount, error) {
	return f.keys, nil
}

// Totals sums f.keys per entry, as conntrack.Tracker.Totals does.
func (f *fakeTracker) Totals(*acl.Config) ([]conntrack.EntryTotal, error) {
	var out []conntrack.EntryTotal
	for _, k := range f.keys {
		id := conntrack.EntryID{ACL: k.ACL, Family: k.Family, Dir: k.Dir, Seq: k.Seq}
		i := slices.IndexFunc(out, func(t conntrack.EntryTotal) bool { return t.EntryID == id })
		if i < 0 {
			i = len(out)
			out = append(out, conntrack.EntryTotal{EntryID: id})
		}
		out[i].Sessions += k.Sessions
		if k.AtLimit {
			out[i].AtLimit++
		}
	}
	return out, nil
}

func (f *fakeTracker) Renewals() []string { return nil }

func (f *fakeTracker) Verify() error { return nil }

func (f *fakeTracker) Gated() []conntrack.EntryID { return nil }

func (f *fakeTracker) ClearSessions(_ *acl.Config, _ acl.Family, _ string, _ int, srcs ...netip.Addr) error {
	f.calls = append(f.calls, "clear-sessions")
	return nil
}

func newTrackedAgent(t *testing.T) (*testAgent, *fakeTracker) {
	ta := newTestAgent(t)
	tr := &fakeTracker{kernel: ta.kernel}
	ta.opts.Sessions = tr
	return ta, tr
}

func TestTrackerAroundEveryApply(t *testing.T) {
	ta, tr := newTrackedAgent(t)
	ta.mustConfigure(t, slxACL)
	ta.kernel.Set(nil)
	ta.RepairDrift()
	if got := strings.Join(tr.calls, ","); got != "prepare,installed,prepare,installed" {
		t.Errorf("tracker calls %q, want prepare and installed around the change and the drift repair", got)
	}

	// A failed Prepare aborts the change.
	tr.prepareErr = errors.New("netlink says no")
	before, applied := ta.RunningText(), ta.kernel.Applied
	if _, err := ta.Configure(slxBind); err == nil || !strings.HasPrefix(err.Error(), "% Error: cannot prepare session counting") {
		t.Errorf("Configure with a failing Prepare: %v", err)
	}
	if ta.RunningText() != before || ta.kernel.Applied != applied {
		t.Error("change applied although Prepare failed")
	}
}

func TestSessionsThroughAgent(t *testing.T) {
	ta, tr := newTrackedAgent(t)
	ta.mustConfigure(t, slxACL, slxBind)
	tr.keys = []conntrack.KeyCount{
		{ACL: "check", Family: acl.IPv4, Dir: acl.In, Seq: 10, Key: "10.24.12.107", Sessions: 3, Limit: 3, AtLimit: true},
		{ACL: "check", Family: acl.IPv4, Dir: acl.In, Seq: 10, Key: "10.24.12.108", Sessions: 1, Limit: 3},
	}
	c, err := ta.Counters(acl.IPv4, "check", "")
	if err != nil || c[0].AtLimit != 1 || c[1].AtLimit != 0 {
		t.Errorf("Counters = %+v, %v; want seq 10 with 1 key at limit", c, err)
	}
	if _, err := ta.Sessions(acl.IPv4, "nope", 0); err == nil || !strings.Contains(err.Error(), `"nope" does not exist`) {
		t.Errorf("sessions of a missing ACL: %v", err)
	}
	const noSeq = `% Error: seq 99 does not exist in access-list "check"`
	if _, err := ta.Sessions(acl.IPv4, "check", 99); err == nil || err.Error() != noSeq {
		t.Errorf("sessions of a missing seq: %v", err)
	}
	if err := ta.ClearSessions(acl.IPv4, "check", 99, netip.Addr{}); err == nil || err.Error() != noSeq {
		t.Errorf("clearing the sessions of a missing seq: %v", err)
	}
	if err := ta.ClearSessions(acl.IPv4, "check", 10, netip.Addr{}); err != nil {
		t.Error(err)
	}
	const v6 = `% Error: source ::1 is not an IPv4 address, and access-list "check" is an ip list`
	if err := ta.ClearSessions(acl.IPv4, "check", 10, netip.MustParseAddr("::1")); err == nil || err.Error() != v6 {
		t.Errorf("clearing the sessions of an IPv6 source on an IPv4 list: %v, want %q", err, v6)
	}
	if err := ta.ClearSessions(acl.IPv4, "check", 10, netip.MustParseAddr("::ffff:10.0.0.1")); err != nil {
		t.Errorf("an IPv4-mapped source: %v", err)
	}
	if n := strings.Count(strings.Join(tr.calls, " "), "clear-sessions"); n != 2 {
		t.Errorf("the tracker cleared sessions %d times, want twice (not for the missing seq, nor the IPv6 source)", n)
	}
	stats := ta.SessionStats()
	if len(stats) != 1 || stats[0].Seq != 10 || stats[0].Sessions != 4 || stats[0].AtLimit != 1 {
		t.Errorf("SessionStats = %+v", stats)
	}

	// Prometheus: counters from the kernel, sessions from the tracker.
	m, r := nft.CounterNames(acl.IPv4, "check", acl.In, 10)
	ta.kernel.Values = map[string]nft.CounterValue{m: {Packets: 9}, r: {Packets: 2}}
	rec := httptest.NewRecorder()
	MetricsHandler(ta.Agent).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`slxsh_acl_matches_total{acl="check",direction="in",family="ip",seq="10"} 9`,
		`slxsh_acl_refusals_total{acl="check",direction="in",family="ip",seq="10"} 2`,
		`slxsh_acl_sessions{acl="check",family="ip",seq="10"} 4`,
		`slxsh_acl_keys_at_limit{acl="check",family="ip",seq="10"} 1`,
		`slxsh_agent_counters_up 1`,
	} {
		if !strings.Contains(rec.Body.String(), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestResetOnlyOnANewConfiguration: under `connlimit existing-sessions
// reset`, the sessions are counted with reset after a change or a reload,
// and as under keep when nothing new is installed (a restarted agent
// adopting its table, a recompile): a restart must end no session.
func TestResetOnlyOnANewConfiguration(t *testing.T) {
	ta, tr := newTrackedAgent(t)
	ta.mustConfigure(t, cli.Txn{Lines: []string{"connlimit existing-sessions reset"}}, slxACL, slxBind)
	last := func() acl.SessionPolicy { return tr.installed[len(tr.installed)-1].policy }
	if last() != acl.Reset {
		t.Fatalf("after a change: counted under %v, want reset", last())
	}
	for why, want := range map[string]acl.SessionPolicy{"adopt": acl.Keep, "recompile": acl.Keep, "reload": acl.Reset, "drift repair": acl.Reset} {
		ta.kernel.Set(nil) // an apply to make
		if _, err := ta.Replace(ta.Running(), why); err != nil {
			t.Fatal(err)
		}
		if last() != want {
			t.Errorf("%s: counted under %v, want %v", why, last(), want)
		}
	}
}
