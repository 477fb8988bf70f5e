package conntrack

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/slxsh/slxsh/internal/acl"
)

func TestPlanAndShrink(t *testing.T) {
	bs := bind("x", acl.IPv4, acl.In,
		&acl.Entry{Seq: 10, Action: acl.Permit, Proto: 6, DstPort: eq(22), Connlimits: limits(5, acl.PerSource, 0)},
		&acl.Entry{Seq: 20, Action: acl.Permit, Proto: 6, Connlimits: limits(3, acl.Total, 0)})
	flows := []Flow{
		tcp("10.0.0.1", "10.0.0.2", 22, 1), tcp("10.0.0.1", "10.0.0.2", 22, 2), tcp("10.0.0.1", "10.0.0.2", 22, 3),
		tcp("10.0.0.3", "10.0.0.2", 22, 4),
		tcp("10.0.0.4", "10.0.0.2", 80, 5),
	}
	s10 := LimitSet{Name: "s10", Entry: EntryID{ACL: "x", Seq: 10}, Over: 5}
	s20 := LimitSet{Name: "s20", Entry: EntryID{ACL: "x", Seq: 20}, Key: acl.Total, Over: 3}
	a := Attribute(bs, flows, nil)
	plan := Plan([]LimitSet{s10, s20}, a)
	want := []Reservation{
		{Set: "s10", Key: "10.0.0.1", Depth: 3}, {Set: "s10", Key: "10.0.0.3", Depth: 1},
		{Set: "s20", Key: "total", Depth: 1},
	}
	if diff := cmp.Diff(want, plan); diff != "" {
		t.Fatalf("Plan (-want +got):\n%s", diff)
	}
	if n := len(OldFlows([]LimitSet{s10}, a)); n != 4 {
		t.Errorf("OldFlows(s10) = %d flows, want 4", n)
	}
	// Two of 10.0.0.1's old sessions and 10.0.0.3's end; meanwhile 10.0.0.9
	// appears with marked flows (old for another set): never raised.
	now := []Reservation{{Set: "s10", Key: "10.0.0.1", Depth: 1}, {Set: "s10", Key: "10.0.0.9", Depth: 4},
		{Set: "s20", Key: "total", Depth: 2}}
	got := Shrink(plan, now)
	want = []Reservation{{Set: "s10", Key: "10.0.0.1", Depth: 1}, {Set: "s20", Key: "total", Depth: 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Shrink (-want +got):\n%s", diff)
	}
}
