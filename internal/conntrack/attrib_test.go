package conntrack

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/slxsh/slxsh/internal/acl"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// tcp builds an open TCP flow "src:sport -> dst:dport" started age seconds after t0.
func tcp(src, dst string, dport uint16, age int) Flow {
	return Flow{Proto: 6, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst),
		SrcPort: uint16(40000 + age), DstPort: dport, TCPState: 3,
		Start: t0.Add(time.Duration(age) * time.Second)}
}

func host(s string) acl.Addr { return acl.NewHostAddr(netip.MustParseAddr(s)) }
func pfx(s string) acl.Addr  { return acl.NewPrefixAddr(netip.MustParsePrefix(s)) }

func eq(p uint16) acl.PortMatch { return acl.PortMatch{Op: acl.PortEq, Lo: p} }

func limits(n int, k acl.KeyKind, plen int) []acl.Connlimit {
	return []acl.Connlimit{*limit(n, k, plen)}
}

func limit(n int, k acl.KeyKind, plen int) *acl.Connlimit {
	return &acl.Connlimit{N: n, Key: k, PrefixLen: plen}
}

func bind(name string, f acl.Family, d acl.Direction, es ...*acl.Entry) []Binding {
	return []Binding{{ACL: &acl.ACL{Name: name, Family: f, Entries: es}, Dir: d, Ifaces: []string{"s0"}}}
}

func TestCounts(t *testing.T) {
	permitAny := &acl.Entry{Seq: 100, Action: acl.Permit, Proto: acl.ProtoAny}
	tests := []struct {
		name  string
		bs    []Binding
		flows []Flow
		want  []KeyCount
	}{{
		name: "SLX example per source, other port not counted",
		bs: bind("check", acl.IPv4, acl.In,
			&acl.Entry{Seq: 10, Action: acl.Permit, Proto: 6, Src: host("10.0.0.1"), Dst: host("10.0.0.2"),
				DstPort: eq(22), Connlimits: limits(3, acl.PerSource, 0)},
			permitAny),
		flows: []Flow{tcp("10.0.0.1", "10.0.0.2", 22, 1), tcp("10.0.0.1", "10.0.0.2", 22, 2),
			tcp("10.0.0.1", "10.0.0.2", 22, 3), tcp("10.0.0.1", "10.0.0.2", 80, 4),
			tcp("10.0.0.3", "10.0.0.2", 22, 5)},
		want: []KeyCount{{ACL: "check", Seq: 10, Key: "10.0.0.1", Sessions: 3, Limit: 3, AtLimit: true}},
	}, {
		name: "per-prefix 24 shares one key, closed TCP not counted",
		bs: bind("p", acl.IPv4, acl.In,
			&acl.Entry{Seq: 10, Action: acl.Permit, Proto: 6, Connlimits: limits(3, acl.PerPrefix, 24)}),
		flows: []Flow{tcp("10.0.0.1", "10.9.0.2", 22, 1), tcp("10.0.0.7", "10.9.0.2", 22, 2),
			tcp("10.0.1.7", "10.9.0.2", 22, 3),
			func() Flow { f := tcp("10.0.0.8", "10.9.0.2", 22, 4); f.TCPState = tcpTimeWait; return f }()},
		want: []KeyCount{
			{ACL: "p", Seq: 10, Key: "10.0.0.0/24", Sessions: 2, Limit: 3},
			{ACL: "p", Seq: 10, Key: "10.0.1.0/24", Sessions: 1, Limit: 3},
		},
	}, {
		name: "first match: an earlier unlimited permit takes the flow",
		bs: bind("fm", acl.IPv4, acl.In,
			&acl.Entry{Seq: 5, Action: acl.Permit, Proto: 6, Src: host("10.0.0.1")},
			&acl.Entry{Seq: 10, Action: acl.Permit, Proto: acl.ProtoAny, Connlimits: limits(2, acl.Total, 0)}),
		flows: []Flow{tcp("10.0.0.1", "10.0.0.2", 22, 1), tcp("10.0.0.3", "10.0.0.2", 22, 2),
			tcp("10.0.0.4", "10.0.0.2", 22, 3)},
		want: []KeyCount{{ACL: "fm", Seq: 10, Key: "total", Sessions: 2, Limit: 2, AtLimit: true}},
	}, {
		name: "limited deny counts and passes on; at limit at N-1",
		bs: bind("d", acl.IPv4, acl.In,
			&acl.Entry{Seq: 10, Action: acl.Deny, Proto: 6, Connlimits: limits(3, acl.PerSource, 0)},
			&acl.Entry{Seq: 20, Action: acl.Permit, Proto: 6, DstPort: eq(22), Connlimits: limits(5, acl.PerDestination, 0)}),
		flows: []Flow{tcp("10.0.0.1", "10.0.0.2", 22, 1), tcp("10.0.0.1", "10.0.0.2", 22, 2),
			tcp("10.0.0.5", "10.0.0.2", 22, 3)},
		want: []KeyCount{
			{ACL: "d", Seq: 10, Key: "10.0.0.1", Sessions: 2, Limit: 3, AtLimit: true},
			{ACL: "d", Seq: 10, Key: "10.0.0.5", Sessions: 1, Limit: 3},
			{ACL: "d", Seq: 20, Key: "10.0.0.2", Sessions: 3, Limit: 5},
		},
	}, {
		name: "IPv6 ACL ignores IPv4 flows; wildcard and ports",
		bs: bind("v6", acl.IPv6, acl.In,
			&acl.Entry{Seq: 10, Action: acl.Permit, Proto: 6, Src: pfx("2001:db8::/64"),
				DstPort: acl.PortMatch{Op: acl.PortRange, Lo: 20, Hi: 23}, Connlimits: limits(1, acl.PerPrefix, 64)}),
		flows: []Flow{tcp("2001:db8::1", "2001:db8:1::2", 22, 1), tcp("2001:db8::2", "2001:db8:1::2", 22, 2),
			tcp("2001:db8::3", "2001:db8:1::2", 80, 3), tcp("10.0.0.1", "10.0.0.2", 22, 4)},
		want: []KeyCount{{ACL: "v6", Family: acl.IPv6, Seq: 10, Kind: acl.PerPrefix, PrefixLen: 64, Key: "2001:db8::/64", Sessions: 2, Limit: 1, AtLimit: true}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Attribute(tt.bs, tt.flows, nil).Counts()
			// Which limit of the entry is TestCountsSeveralLimits's.
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(KeyCount{}, "Kind", "PrefixLen")); diff != "" {
				t.Errorf("Counts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWildcardMatch(t *testing.T) {
	w, err := acl.NewWildcardAddr(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("0.0.255.0"))
	if err != nil {
		t.Fatal(err)
	}
	e := &acl.Entry{Proto: acl.ProtoAny, Src: w}
	for src, want := range map[string]bool{"10.0.7.1": true, "10.0.0.1": true, "10.0.7.2": false, "10.1.0.1": false} {
		if got := Matches(e, tcp(src, "10.9.9.9", 1, 0)); got != want {
			t.Errorf("wildcard 10.0.0.1 0.0.255.0 vs %s = %v, want %v", src, got, want)
		}
	}
}

func TestExcessNewestFirst(t *testing.T) {
	bs := bind("x", acl.IPv4, acl.In,
		&acl.Entry{Seq: 10, Action: acl.Permit, Proto: 6, DstPort: eq(22), Connlimits: limits(2, acl.PerSource, 0)},
		&acl.Entry{Seq: 20, Action: acl.Deny, Proto: 6, DstPort: eq(23)},
		&acl.Entry{Seq: 30, Action: acl.Permit, Proto: 6, DstPort: eq(80)})
	flows := []Flow{
		tcp("10.0.0.1", "10.0.0.2", 22, 5), tcp("10.0.0.1", "10.0.0.2", 22, 1), // kept: the 2 oldest
		tcp("10.0.0.1", "10.0.0.2", 22, 3),
		tcp("10.0.0.1", "10.0.0.2", 22, 9),
		tcp("10.0.0.1", "10.0.0.2", 22, 2),
		tcp("10.0.0.1", "10.0.0.2", 23, 4), // denied
		tcp("10.0.0.1", "10.0.0.2", 80, 6), // permitted
		tcp("10.0.0.1", "10.0.0.2", 99, 7), // implicit deny
		tcp("10.0.0.3", "10.0.0.2", 22, 8), // other source, within its limit
	}
	var got []uint16
	for _, f := range Attribute(bs, flows, nil).Excess() {
		got = append(got, f.SrcPort-40000)
	}
	want := []uint16{9, 7, 5, 4, 3}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Excess ages (-want +got):\n%s", diff)
	}
}

func TestSelect(t *testing.T) {
	bs := bind("x", acl.IPv4, acl.In,
		&acl.Entry{Seq: 10, Action: acl.Permit, Proto: 6, DstPort: eq(22), Connlimits: limits(5, acl.PerSource, 0)},
		&acl.Entry{Seq: 20, Action: acl.Permit, Proto: 6, DstPort: eq(80), Connlimits: limits(5, acl.Total, 0)},
		&acl.Entry{Seq: 30, Action: acl.Permit, Proto: 6, DstPort: eq(443)},
		&acl.Entry{Seq: 40, Action: acl.Deny, Proto: acl.ProtoAny})
	flows := []Flow{tcp("10.0.0.1", "10.0.0.2", 22, 1), tcp("10.0.0.3", "10.0.0.2", 22, 2),
		tcp("10.0.0.1", "10.0.0.2", 80, 3), tcp("10.0.0.4", "10.0.0.2", 443, 4), tcp("10.0.0.5", "10.0.0.2", 25, 5)}
	a := Attribute(bs, flows, nil)
	for _, tc := range []struct {
		seq  int
		src  string
		want int
	}{{0, "", 4}, {10, "", 2}, {20, "", 1}, {30, "", 1}, {0, "10.0.0.1", 2}, {10, "10.0.0.3", 1}, {20, "10.0.0.3", 0}, {40, "", 0},
		{0, "10.0.0.1 10.0.0.4", 3}, {10, "10.0.0.1 10.0.0.3 10.0.0.9", 2}} {
		var srcs []netip.Addr
		for _, s := range strings.Fields(tc.src) {
			srcs = append(srcs, netip.MustParseAddr(s))
		}
		if got := len(a.Select("x", acl.IPv4, tc.seq, srcs...)); got != tc.want {
			t.Errorf("Select(seq %d, source %q) = %d flows, want %d", tc.seq, tc.src, got, tc.want)
		}
	}
}

type fakeLoc map[string]string // source address -> in interface

func (l fakeLoc) InIf(f Flow) string  { return l[f.Src.String()] }
func (l fakeLoc) OutIf(f Flow) string { return "" }

func TestLocatorRestrictsBindings(t *testing.T) {
	bs := bind("m", acl.IPv4, acl.In,
		&acl.Entry{Seq: 10, Action: acl.Permit, Proto: 6, Connlimits: limits(1, acl.PerSource, 0)})
	flows := []Flow{tcp("10.0.0.1", "10.0.0.2", 22, 1), tcp("10.1.0.1", "10.0.0.2", 22, 2)}
	a := Attribute(bs, flows, fakeLoc{"10.0.0.1": "s0", "10.1.0.1": "eth9"})
	want := []KeyCount{{ACL: "m", Seq: 10, Key: "10.0.0.1", Sessions: 1, Limit: 1, AtLimit: true}}
	if diff := cmp.Diff(want, a.Counts()); diff != "" {
		t.Errorf("Counts (-want +got):\n%s", diff)
	}
	if len(a.Excess()) != 0 {
		t.Errorf("Excess = %v, want none (the other flow does not pass a bound interface)", a.Excess())
	}
}

func TestBindings(t *testing.T) {
	c := acl.New()
	c.ACLs = []*acl.ACL{{Name: "a", Family: acl.IPv4}, {Name: "b", Family: acl.IPv6}}
	c.Interfaces = []*acl.Interface{
		{Kind: acl.IfManagement, Name: "0", Groups: [2][2]string{{"a", ""}, {"", "b"}}},
		{Kind: acl.IfLinux, Name: "eth1", Groups: [2][2]string{{"a", "missing"}, {"", ""}}},
	}
	got := Bindings(c, func(i *acl.Interface) string {
		if i.Kind == acl.IfManagement {
			return "mgmt0"
		}
		return i.Name
	})
	type b struct {
		Name   string
		Dir    acl.Direction
		Ifaces []string
	}
	var gotB []b
	for _, x := range got {
		gotB = append(gotB, b{x.ACL.Name, x.Dir, x.Ifaces})
	}
	want := []b{{"a", acl.In, []string{"eth1", "mgmt0"}}, {"b", acl.Out, []string{"mgmt0"}}}
	if diff := cmp.Diff(want, gotB); diff != "" {
		t.Errorf("Bindings (-want +got):\n%s", diff)
	}
}

func TestMarkResetKeepsOtherBits(t *testing.T) {
	f := &Fake{Flows: []Flow{tcp("10.0.0.1", "10.0.0.2", 22, 1), tcp("10.0.0.1", "10.0.0.2", 22, 2)}}
	f.Flows[0].Mark = 0x5
	if err := MarkReset(f, f.Flows[:1]); err != nil {
		t.Fatal(err)
	}
	if f.Flows[0].Mark != 0x5|ResetMark || f.Flows[1].Mark != 0 {
		t.Errorf("marks = %#x, %#x; want %#x, 0", f.Flows[0].Mark, f.Flows[1].Mark, 0x5|ResetMark)
	}
}

func TestKeyOfPrefixEdges(t *testing.T) {
	f := tcp("10.0.0.9", "10.0.0.2", 22, 0)
	for _, tc := range []struct {
		c    *acl.Connlimit
		want string
	}{
		{limit(1, acl.PerPrefix, 0), TotalKey},
		{limit(1, acl.PerPrefix, 32), "10.0.0.9"},
		{limit(1, acl.PerPrefix, 16), "10.0.0.0/16"},
		{limit(1, acl.PerDestination, 0), "10.0.0.2"},
		{limit(1, acl.Total, 0), TotalKey},
	} {
		if got := KeyOf(tc.c, f); got != tc.want {
			t.Errorf("KeyOf(%+v) = %q, want %q", *tc.c, got, tc.want)
		}
	}
	mapped := f
	mapped.Src = netip.AddrFrom16(f.Src.As16())
	if got := KeyOf(limit(1, acl.PerPrefix, 24), mapped); got != "10.0.0.0/24" {
		t.Errorf("KeyOf of an IPv4-mapped source = %q, want 10.0.0.0/24", got)
	}
}

func TestDenyWithUnseenConditionDoesNotRefuse(t *testing.T) {
	bs := bind("t", acl.IPv4, acl.In,
		&acl.Entry{Seq: 10, Action: acl.Deny, Proto: 6, DstPort: eq(22), TimeRange: "nights"},
		&acl.Entry{Seq: 20, Action: acl.Deny, Proto: 6, DstPort: eq(23)},
		&acl.Entry{Seq: 30, Action: acl.Permit, Proto: acl.ProtoAny})
	flows := []Flow{tcp("10.0.0.1", "10.0.0.2", 22, 1), tcp("10.0.0.1", "10.0.0.2", 23, 2)}
	ex := Attribute(bs, flows, nil).Excess()
	if len(ex) != 1 || ex[0].DstPort != 23 {
		t.Errorf("Excess = %v, want only the port 23 session", ex)
	}
}

// Several connlimits on one entry: each flow counts under every limit, each
// under its own key, and the excess of any limit is excess.
func TestCountsSeveralLimits(t *testing.T) {
	e := &acl.Entry{Seq: 10, Action: acl.Permit, Proto: 6, DstPort: eq(22),
		Connlimits: []acl.Connlimit{{N: 1}, {N: 3, Key: acl.PerPrefix, PrefixLen: 24}}}
	flows := []Flow{tcp("1.2.3.4", "10.0.0.2", 22, 1), tcp("1.2.3.4", "10.0.0.2", 22, 2),
		tcp("1.2.3.5", "10.0.0.2", 22, 3), tcp("1.2.3.6", "10.0.0.2", 22, 4)}
	a := Attribute(bind("c", acl.IPv4, acl.In, e), flows, nil)
	id := EntryID{ACL: "c", Family: acl.IPv4, Dir: acl.In, Seq: 10}
	want := []KeyCount{
		{ACL: "c", Seq: 10, Key: "1.2.3.4", Sessions: 2, Limit: 1, AtLimit: true},
		{ACL: "c", Seq: 10, Key: "1.2.3.5", Sessions: 1, Limit: 1, AtLimit: true},
		{ACL: "c", Seq: 10, Key: "1.2.3.6", Sessions: 1, Limit: 1, AtLimit: true},
		{ACL: "c", Seq: 10, Kind: acl.PerPrefix, PrefixLen: 24, Key: "1.2.3.0/24", Sessions: 4, Limit: 3, AtLimit: true},
	}
	if diff := cmp.Diff(want, a.Counts()); diff != "" {
		t.Errorf("Counts (-want +got):\n%s", diff)
	}
	if got := a.Limits[LimitID{id, acl.PerPrefix, 24}]; got == nil || got.N != 3 {
		t.Errorf("limit of the /24: %v", got)
	}
	// Over the source limit: the newer session of 1.2.3.4; over the /24
	// (3): the newest of the four. Newest first.
	var got []string
	for _, f := range a.Excess() {
		got = append(got, f.Src.String()+":"+strconv.Itoa(int(f.SrcPort)))
	}
	if strings.Join(got, " ") != "1.2.3.6:40004 1.2.3.4:40002" {
		t.Errorf("Excess = %v", got)
	}
}
