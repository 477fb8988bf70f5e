package conntrack

import (
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
)

// rangedConfig is seq 5 (connlimit 3, time-range soon, which ends at
// 10:00 1 Jan 2030 UTC) before seq 10 (connlimit 4) on port 22, and a
// deny of port 23 while soon is active.
func rangedConfig() *acl.Config {
	return &acl.Config{
		TimeRanges: []*acl.TimeRange{{Name: "soon", Absolute: &acl.Absolute{End: &acl.DateTime{Year: 2030, Month: 1, Day: 1, Hour: 10}}}},
		ACLs: []*acl.ACL{{Name: "check", Family: acl.IPv4, Entries: []*acl.Entry{
			{Seq: 5, Action: acl.Permit, Proto: 6, DstPort: eq(22), Connlimits: limits(3, acl.PerSource, 0), TimeRange: "soon"},
			{Seq: 6, Action: acl.Deny, Proto: 6, DstPort: eq(23), TimeRange: "soon"},
			{Seq: 10, Action: acl.Permit, Proto: 6, DstPort: eq(22), Connlimits: limits(4, acl.PerSource, 0)},
			{Seq: 20, Action: acl.Permit, Proto: acl.ProtoAny},
		}}},
	}
}

// TestActiveListsDecideAsTheKernelNow: the sessions of a source count
// under the ranged entry while its range is active and under the next
// entry once it is not (the kernel's decision at that moment), a ranged
// deny refuses only while active, and the list keeps its value while the
// states do, so that the session index attributes nothing again.
func TestActiveListsDecideAsTheKernelNow(t *testing.T) {
	cfg := rangedConfig()
	l := cfg.ACLs[0]
	flows := []Flow{tcp("10.0.0.1", "10.0.0.2", 22, 1), tcp("10.0.0.1", "10.0.0.2", 22, 2),
		tcp("10.0.0.1", "10.0.0.2", 22, 3), tcp("10.0.0.1", "10.0.0.2", 23, 4)}
	var c activeLists
	before, after := time.Date(2030, 1, 1, 9, 59, 59, 0, time.UTC), time.Date(2030, 1, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		at, same    time.Time
		seq         int
		refused23   bool
		wantEntries int
	}{{before, before.Add(-time.Hour), 5, true, 4}, {after, after.Add(time.Hour), 10, false, 2}} {
		got := c.at(cfg, l, tc.at, time.UTC)
		if len(got.Entries) != tc.wantEntries {
			t.Fatalf("at %v: %d entries, want %d", tc.at, len(got.Entries), tc.wantEntries)
		}
		if again := c.at(cfg, l, tc.same, time.UTC); again != got {
			t.Errorf("at %v: the list is another value for the same states", tc.at)
		}
		a := Attribute([]Binding{{ACL: got, Dir: acl.In, Ifaces: []string{"s0"}, AtNow: true}}, flows, nil)
		cs := a.Counts()
		if len(cs) != 1 || cs[0].Seq != tc.seq || cs[0].Sessions != 3 {
			t.Errorf("at %v: counts %+v, want the 3 sessions under seq %d", tc.at, cs, tc.seq)
		}
		if refused := len(a.Refused) == 1; refused != tc.refused23 {
			t.Errorf("at %v: port 23 refused %v, want %v", tc.at, refused, tc.refused23)
		}
	}
	plain := &acl.ACL{Name: "plain", Family: acl.IPv4, Entries: l.Entries[2:]}
	if c.at(cfg, plain, before, time.UTC) != plain {
		t.Error("a list without time ranges is not given as itself")
	}
}

// TestResetNeverOnATimeRange: `existing-sessions reset` judges with time
// ranges unseen (Bindings): the sessions of a permit whose range is over
// are not ended by an unrelated change, though no entry admits them now.
func TestResetNeverOnATimeRange(t *testing.T) {
	cfg := rangedConfig()
	cfg.ACLs[0].Entries = cfg.ACLs[0].Entries[:1] // seq 5 alone, then the implicit deny
	cfg.Interfaces = []*acl.Interface{{Kind: acl.IfLinux, Name: "s0", Groups: [2][2]string{{"check", ""}}}}
	flows := []Flow{tcp("10.0.0.1", "10.0.0.2", 22, 1), tcp("10.0.0.1", "10.0.0.2", 22, 2)}
	ifname := func(i *acl.Interface) string { return i.Name }
	if ex := Attribute(Bindings(cfg, ifname), flows, nil).Excess(); len(ex) != 0 {
		t.Errorf("reset would end %d sessions of a ranged permit", len(ex))
	}
	var c activeLists
	bs := Bindings(cfg, ifname)
	bs[0].ACL, bs[0].AtNow = c.at(cfg, bs[0].ACL, time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), time.UTC), true
	if a := Attribute(bs, flows, nil); len(a.Refused) != 2 {
		t.Errorf("after the range: %d refused now, want 2 (the views say no entry admits them)", len(a.Refused))
	}
}
