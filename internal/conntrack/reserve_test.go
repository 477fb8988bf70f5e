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

// TestCountOldIsPlan: the streamed count of the start (countOld) holds
// the same reservations and marks the same sessions as Plan and
// oldMarksOf of an attribution of the same flows, closed flows, IPv6
// flows, flows under two bindings and flows of no pending set included.
func TestCountOldIsPlan(t *testing.T) {
	in := &acl.ACL{Name: "x", Family: acl.IPv4, Entries: []*acl.Entry{
		{Seq: 10, Action: acl.Permit, Proto: 6, DstPort: eq(22), Connlimits: []acl.Connlimit{*limit(2, acl.PerSource, 0), *limit(9, acl.Total, 0)}},
		{Seq: 20, Action: acl.Permit, Proto: 6, Connlimits: limits(3, acl.Total, 0)}}}
	six := &acl.ACL{Name: "y", Family: acl.IPv6, Entries: []*acl.Entry{
		{Seq: 10, Action: acl.Permit, Proto: 6, Connlimits: limits(4, acl.PerPrefix, 64)}}}
	bs := []Binding{{ACL: in, Dir: acl.In}, {ACL: in, Dir: acl.Out}, {ACL: six, Dir: acl.In}}
	flows := []Flow{
		tcp("10.0.0.1", "10.0.0.2", 22, 1), tcp("10.0.0.1", "10.0.0.2", 22, 2), tcp("10.0.0.1", "10.0.0.2", 22, 3),
		tcp("10.0.0.3", "10.0.0.2", 22, 4), tcp("10.0.0.4", "10.0.0.2", 80, 5), tcp("10.0.0.5", "10.0.0.2", 22, 6),
		tcp("2001:db8::1", "2001:db8::2", 22, 7), tcp("2001:db8::3", "2001:db8::2", 22, 8),
	}
	flows[5].TCPState = tcpTimeWait
	flows[2].Mark = AdoptMark
	in10 := EntryID{ACL: "x", Family: acl.IPv4, Dir: acl.In, Seq: 10}
	sets := []LimitSet{
		{Name: "s10", Entry: in10, Key: acl.PerSource, Over: 2},
		{Name: "s10t", Entry: in10, Key: acl.Total, Over: 9},
		{Name: "o20", Entry: EntryID{ACL: "x", Family: acl.IPv4, Dir: acl.Out, Seq: 20}, Key: acl.Total, Over: 3},
		{Name: "y10", Entry: EntryID{ACL: "y", Family: acl.IPv6, Dir: acl.In, Seq: 10}, Key: acl.PerPrefix, PrefixLen: 64, Over: 4},
	}
	a := Attribute(bs, flows, nil)
	wantPlan, wantMarks := Plan(sets, a), oldMarksOf(sets, a)
	gotPlan, gotMarks, err := countOld(func(fn func(Flow)) error {
		for _, f := range flows {
			fn(f)
		}
		return nil
	}, bs, nil, sets)
	if err != nil {
		t.Fatal(err)
	}
	if len(wantPlan) < 4 {
		t.Fatalf("the test plans too little: %v", wantPlan)
	}
	if diff := cmp.Diff(wantPlan, gotPlan); diff != "" {
		t.Errorf("countOld's plan (-Plan +countOld):\n%s", diff)
	}
	marked := func(m *oldMarks) map[Flow]bool {
		out := map[Flow]bool{}
		for _, k := range m.v4 {
			out[k.k.flow(flowRec{mark: k.mark})] = true
		}
		for _, k := range m.v6 {
			out[k.k.flow(flowRec{mark: k.mark})] = true
		}
		return out
	}
	if diff := cmp.Diff(marked(wantMarks), marked(gotMarks)); diff != "" || len(gotMarks.v4)+len(gotMarks.v6) != 7 {
		t.Errorf("countOld marks %d sessions, want 7 (-oldMarksOf +countOld):\n%s", len(gotMarks.v4)+len(gotMarks.v6), diff)
	}
}
