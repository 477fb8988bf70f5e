package agent

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/conntrack"
	"github.com/slxsh/slxsh/internal/nft"
)

// endingSoon is a tracked agent whose `time-range soon` ends at a whole
// second about 1.5 s from now (in a zone that makes it a whole local
// minute), with seq 5 (connlimit 3, soon) and seq 10 (connlimit 4) on
// port 22 bound in; global is a global line before (or ""), more are
// entries after them.
func endingSoon(t *testing.T, global string, more ...string) (*testAgent, *fakeTracker, time.Time) {
	ta, tr := newTrackedAgent(t)
	end := time.Now().Add(1500 * time.Millisecond).Truncate(time.Second)
	ta.opts.Zone = time.FixedZone("T", -int(end.Unix()%60))
	le := end.In(ta.opts.Zone)
	lines := append([]string{global,
		"time-range soon",
		fmt.Sprintf("absolute end %s", acl.DateTime{Year: le.Year(), Month: int(le.Month()), Day: le.Day(), Hour: le.Hour(), Minute: le.Minute()}),
		"exit",
		"ip access-list extended check",
		"seq 5 permit tcp any any eq 22 connlimit 3 time-range soon",
		"seq 10 permit tcp any any eq 22 connlimit 4",
	}, more...)
	ta.mustConfigure(t, cli.Txn{Lines: lines}, slxBind)
	return ta, tr, end
}

// TestCrossBoundaryRenewsAcrossTheSwitch: a range that ends in a second
// concerns the limit of its own entry and of the later entry that shares
// its connections, not that of an entry on another port. Crossing the
// switch renews exactly those two, with their gates closed before the
// instant and the sessions counted after it, and resets nothing although
// the config says `existing-sessions reset`.
func TestCrossBoundaryRenewsAcrossTheSwitch(t *testing.T) {
	ta, tr, end := endingSoon(t, "connlimit existing-sessions reset", "seq 15 permit tcp any any eq 80 connlimit 2", "seq 20 permit ip any any")
	at, names, ok := ta.nextSwitch()
	if !ok || !at.Equal(end) || !slices.Equal(names, []string{"soon"}) {
		t.Fatalf("next switch %v %v %v, want %v [soon]", at, names, ok, end)
	}
	if d := ta.untilSwitch(time.Now()); d <= 0 || d > time.Until(end) {
		t.Errorf("untilSwitch = %v, want before the switch (%v away)", d, time.Until(end))
	}
	ta.kernel.Renewed, tr.installed = nil, nil
	if time.Now().After(end) {
		t.Fatal("the range ended before the test crossed it; the machine is too slow for this test")
	}
	done, err := ta.CrossBoundary(at, names)
	if err != nil || !done {
		t.Fatalf("CrossBoundary: %v, %v", done, err)
	}
	var want []string
	for _, s := range nft.LimitSets(ta.ruleset) {
		if s.Entry.Seq == 5 || s.Entry.Seq == 10 {
			want = append(want, s.Name)
		}
	}
	if len(want) != 2 || !slices.Equal(ta.kernel.Renewed, want) {
		t.Errorf("renewed %v, want the limits of seq 5 and 10: %v", ta.kernel.Renewed, want)
	}
	if len(tr.installed) != 1 || tr.installed[0].at.Before(end) || tr.installed[0].policy != acl.Keep {
		t.Errorf("sessions counted %+v, want once after %v with existing-sessions keep", tr.installed, end)
	}
	// The range never switches again: nothing to cross.
	if _, _, ok := ta.nextSwitch(); ok {
		t.Error("a next switch after the range's end")
	}
}

// TestLimitRanges: only ranges whose switch changes what a limit sees.
func TestLimitRanges(t *testing.T) {
	cfg, err := cli.ApplyLines(acl.New(), cli.Txn{Lines: []string{
		"time-range a", "periodic daily 08:00 to 09:00", "exit",
		"time-range b", "periodic daily 10:00 to 11:00", "exit",
		"time-range c", "periodic daily 12:00 to 13:00", "exit",
		"ip access-list extended x",
		"seq 1 permit tcp any any eq 80 time-range a", // before a limit on port 80
		"seq 2 permit tcp any any eq 22 time-range b", // no limit after it shares its port
		"seq 3 permit tcp any any eq 80 connlimit 2",
		"seq 4 permit tcp any any eq 25 connlimit 2 time-range c",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := limitRanges(cfg); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("limitRanges = %v, want [a c]", got)
	}
}

// TestCrossBoundaryLate: a switch the agent reaches only after its instant
// (a change held it) is still crossed, at once and for every range, and
// then done with; nothing waits for a switch in the past.
func TestCrossBoundaryLate(t *testing.T) {
	ta, tr, end := endingSoon(t, "")
	time.Sleep(time.Until(end) + 50*time.Millisecond)
	at, names, ok := ta.nextSwitch()
	if !ok || !at.Equal(end) {
		t.Fatalf("a switch 50 ms past is not found: %v %v %v", at, names, ok)
	}
	if d := ta.untilSwitch(time.Now()); d != 0 {
		t.Errorf("untilSwitch = %v for a switch past, want 0", d)
	}
	ta.kernel.Renewed, tr.installed = nil, nil
	if err := ta.crossNextSwitch(); err != nil {
		t.Fatal(err)
	}
	if len(ta.kernel.Renewed) != 2 || len(tr.installed) != 1 {
		t.Errorf("late crossing renewed %v, counted %d times; want seq 5 and 10 once", ta.kernel.Renewed, len(tr.installed))
	}
	if _, _, ok := ta.nextSwitch(); ok {
		t.Error("the switch is still pending after it was crossed")
	}
}

// TestOldSwitchOfANewRangeIsNotCrossed: a range added with a start an hour
// past, on an agent up for longer, has no switch to cross: the change
// counted its limits as of now.
func TestOldSwitchOfANewRangeIsNotCrossed(t *testing.T) {
	ta, _ := newTrackedAgent(t)
	ta.opts.Zone = time.UTC
	ta.switchFrom = time.Now().Add(-3 * time.Hour)
	st := time.Now().Add(-time.Hour).UTC()
	ta.mustConfigure(t, cli.Txn{Lines: []string{
		"time-range since",
		fmt.Sprintf("absolute start %s", acl.DateTime{Year: st.Year(), Month: int(st.Month()), Day: st.Day(), Hour: st.Hour(), Minute: st.Minute()}),
		"exit",
		"ip access-list extended check",
		"seq 5 permit tcp any any eq 22 connlimit 3 time-range since",
	}}, slxBind)
	if at, _, ok := ta.nextSwitch(); ok {
		t.Errorf("a switch to cross at %v, an hour before the range was configured", at)
	}
}

// TestTamperedLimitsRenewed: the limit sets whose elements (or whose
// layers' elements) someone else changed are renewed at the next drift
// check; other tampered sets (not connlimit) renew nothing.
func TestTamperedLimitsRenewed(t *testing.T) {
	ta, _ := newTrackedAgent(t)
	ta.mustConfigure(t, cli.Txn{Lines: []string{
		"ip access-list extended check",
		"seq 10 permit tcp any any eq 22 connlimit 3",
		"seq 20 permit tcp any any eq 80 connlimit 2",
		"seq 30 permit tcp any any eq 81 rate 2 per minute",
	}}, slxBind)
	ta.kernel.Renewed = nil
	rate := ta.setOfKind(nft.SetRate)
	ta.kernel.TamperedSets = []string{nft.LayerSetName("ip_check_in_10_src_3", 1), "ip_check_in_20_src_2", rate}
	if _, err := ta.RepairDrift(); err != nil {
		t.Fatal(err)
	}
	want := []string{"ip_check_in_10_src_3", "ip_check_in_20_src_2"}
	if slices.Sort(ta.kernel.Renewed); !slices.Equal(ta.kernel.Renewed, want) {
		t.Errorf("renewed %v, want %v", ta.kernel.Renewed, want)
	}
}

// TestQuotaKeysAtLimit: show access-list counts a key whose quota window
// has used its quota as at its limit, and one under it not; a source at
// its connlimit and over its quota is one key at the limit, not two, and
// the others add up.
func TestQuotaKeysAtLimit(t *testing.T) {
	atConnlimit := func(key string) conntrack.KeyCount {
		return conntrack.KeyCount{ACL: "check", Family: acl.IPv4, Dir: acl.In, Seq: 10, Kind: acl.PerSource, Key: key, Sessions: 2, Limit: 2, AtLimit: true}
	}
	for _, c := range []struct {
		name, options string
		quotas        []nft.QuotaUse
		keys          []conntrack.KeyCount
		want          int
	}{
		{"quota", "quota 1 kbytes per minute per-source",
			[]nft.QuotaUse{{Key: "10.0.0.1", Used: 1024, Quota: 1024}, {Key: "10.0.0.2", Used: 1500, Quota: 1024}, {Key: "10.0.0.3", Used: 1023, Quota: 1024}},
			nil, 2},
		// 10.0.0.1 at both once, .2 over its quota, .3 at its connlimit.
		{"connlimit and quota", "connlimit 2 quota 1 kbytes per minute per-source",
			[]nft.QuotaUse{{Key: "10.0.0.1", Used: 1024, Quota: 1024}, {Key: "10.0.0.2", Used: 1500, Quota: 1024}},
			[]conntrack.KeyCount{atConnlimit("10.0.0.1"), atConnlimit("10.0.0.3")}, 3},
	} {
		ta, tr := newTrackedAgent(t)
		ta.mustConfigure(t, cli.Txn{Lines: []string{"ip access-list extended check", "seq 10 permit tcp any any eq 80 " + c.options}}, slxBind)
		ta.kernel.Quotas = map[string][]nft.QuotaUse{ta.setOfKind(nft.SetQuota): c.quotas}
		tr.keys = c.keys
		cs, err := ta.Counters(acl.IPv4, "check", "")
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 0 || cs[0].Seq != 10 || cs[0].AtLimit != c.want {
			t.Errorf("%s: counters %+v, want seq 10 with %d keys at limit", c.name, cs, c.want)
		}
	}
}

// setOfKind is the name of the last set of kind k in the installed ruleset.
func (ta *testAgent) setOfKind(k nft.SetKind) string {
	var name string
	for _, s := range ta.ruleset.Sets {
		if s.Kind == k {
			name = s.Name
		}
	}
	return name
}
