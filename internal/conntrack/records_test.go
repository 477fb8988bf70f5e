package conntrack

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/slxsh/slxsh/internal/acl"
)

// TestTupleRoundTrip: a flow's record key gives back its original tuple,
// zone, mark and state, IPv4 in 4 bytes, IPv6 in 16, an IPv4-mapped
// address as IPv4 (as the index always had it).
func TestTupleRoundTrip(t *testing.T) {
	r := flowRec{mark: OldMark | 7, state: 3}
	for _, tt := range []struct {
		f    Flow
		v4   bool
		want *Flow // nil: f itself
	}{
		{f: Flow{Proto: 6, Src: netip.MustParseAddr("10.1.2.3"), Dst: netip.MustParseAddr("192.0.2.1"), SrcPort: 40000, DstPort: 22, Zone: 9},
			v4: true},
		{f: Flow{Proto: 17, Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("2001:db8:1::ff"), SrcPort: 53, DstPort: 65535, Zone: 65535}},
		{f: Flow{Proto: 6, Src: netip.MustParseAddr("::ffff:10.0.0.1"), Dst: netip.MustParseAddr("::ffff:10.0.0.2"), SrcPort: 1, DstPort: 80},
			v4: true, want: &Flow{Proto: 6, Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), SrcPort: 1, DstPort: 80}},
		{f: Flow{Proto: 58, Src: netip.MustParseAddr("fe80::1"), Dst: netip.MustParseAddr("ff02::1")}},
	} {
		want := tt.f
		if tt.want != nil {
			want = *tt.want
		}
		want.Mark, want.TCPState = r.mark, r.state
		var got Flow
		if k, ok := tuple4Of(tt.f); ok != tt.v4 {
			t.Errorf("%v: tuple4Of ok = %v, want %v", tt.f, ok, tt.v4)
		} else if ok {
			got = k.flow(r)
		} else {
			got = tuple6Of(tt.f).flow(r)
		}
		if got != want {
			t.Errorf("round trip of %v: got %+v, want %+v", tt.f, got, want)
		}
	}
}

// TestIndexRecordsCount: records put and dropped as a dump and events
// would (no kernel) count exactly what an attribution of the same flows
// counts, for IPv4 and IPv6 flows and for flows under several keys (two
// limits of an entry, two bindings: the slots beyond the first), also
// after attribution again under other bindings.
func TestIndexRecordsCount(t *testing.T) {
	in := &acl.ACL{Name: "check", Family: acl.IPv4, Entries: []*acl.Entry{
		{Seq: 10, Action: acl.Permit, Proto: 6, DstPort: eq(22), Connlimits: []acl.Connlimit{*limit(3, acl.PerSource, 0), *limit(100, acl.Total, 0), *limit(50, acl.PerPrefix, 24)}},
		{Seq: 20, Action: acl.Deny, Proto: 6, DstPort: eq(80), Connlimits: limits(2, acl.PerDestination, 0)},
		{Seq: 30, Action: acl.Permit, Proto: acl.ProtoAny}}}
	six := &acl.ACL{Name: "six", Family: acl.IPv6, Entries: []*acl.Entry{
		{Seq: 10, Action: acl.Permit, Proto: 6, DstPort: eq(22), Connlimits: limits(5, acl.PerPrefix, 64)}}}
	both := []Binding{{ACL: in, Dir: acl.In}, {ACL: in, Dir: acl.Out}, {ACL: six, Dir: acl.In}}
	one := []Binding{{ACL: in, Dir: acl.In}}

	var flows []Flow
	for i := range 40 {
		f := tcp(netip.AddrFrom4([4]byte{10, 0, byte(i % 3), byte(i % 7)}).String(), "192.0.2.1", 22, i)
		if i%4 == 0 {
			f.DstPort, f.Dst = 80, netip.AddrFrom4([4]byte{192, 0, 2, byte(i % 5)})
		}
		if i%5 == 0 {
			f.Mark = OldMark
		}
		if i%9 == 0 {
			f.TCPState = tcpTimeWait
		}
		flows = append(flows, f)
		g := tcp(netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, byte(i % 2), 15: byte(i)}).String(), "2001:db8::ff", 22, i)
		flows = append(flows, g)
	}
	x := &Index{}
	x.reset()
	check := func(bs []Binding, flows []Flow, step string) {
		t.Helper()
		if !sameBindings(bs, x.bs) {
			x.tableLocked(bs)
			x.reattributeLocked()
		}
		var got []KeyCount
		x.eachLocked(func(KeyID) bool { return true }, func(c KeyCount) { got = append(got, c) })
		sortCounts(got)
		want := Attribute(bs, flows, nil).Counts()
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: index differs from an attribution (-want +got):\n%s", step, diff)
		}
	}
	x.tableLocked(both)
	for _, f := range flows {
		x.putLocked(f, true)
	}
	check(both, flows, "after the dump")
	// Events: some flows end, some move to TIME_WAIT, some become old.
	var left []Flow
	for i, f := range flows {
		switch i % 6 {
		case 0:
			x.dropLocked(f)
			continue
		case 1:
			f.TCPState = tcpClose
			x.putLocked(f, false)
		case 2:
			f.Mark = OldMark
			x.putLocked(Flow{Proto: f.Proto, Src: f.Src, Dst: f.Dst, SrcPort: f.SrcPort, DstPort: f.DstPort, Mark: f.Mark}, false)
		}
		left = append(left, f)
	}
	check(both, left, "after events")
	check(one, left, "under one binding")
	check(both, left, "under both again")
	for _, f := range left {
		x.dropLocked(f)
	}
	check(both, nil, "after every end")
	if len(x.slotOf) != 0 || len(x.v4)+len(x.v6) != 0 {
		t.Errorf("after every end: %d slots and %d records left", len(x.slotOf), len(x.v4)+len(x.v6))
	}
}
