package acl_test

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/acl/acltest"
)

func seqs(a *acl.ACL) []int {
	var s []int
	for _, e := range a.Entries {
		s = append(s, e.Seq)
	}
	return s
}

func permitPort(p uint16) *acl.Entry {
	return &acl.Entry{Action: acl.Permit, Proto: acl.ProtoTCP, DstPort: acl.PortMatch{Op: acl.PortEq, Lo: p}}
}

func newACL(t *testing.T, f acl.Family, name string) *acl.Config {
	t.Helper()
	c := acl.New()
	if _, err := c.EnsureACL(f, name); err != nil {
		t.Fatal(err)
	}
	return c
}

// wantMsg checks that err is an *acl.Error with exactly msg.
func wantMsg(t *testing.T, err error, msg string) {
	t.Helper()
	var ae *acl.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error = %v, want *acl.Error %q", err, msg)
	}
	if ae.Msg != msg {
		t.Errorf("error = %q, want %q", ae.Msg, msg)
	}
}

func TestAutoSeq(t *testing.T) {
	c := newACL(t, acl.IPv4, "a")
	add := func(seq int, port uint16) error {
		e := permitPort(port)
		e.Seq = seq
		return c.AddEntry(acl.IPv4, "a", e)
	}
	for i, step := range []struct{ seq, want int }{{0, 10}, {0, 20}, {15, 15}, {0, 30}, {5, 5}, {0, 40}} {
		if err := add(step.seq, uint16(100+i)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := seqs(c.ACL(acl.IPv4, "a")), []int{5, 10, 15, 20, 30, 40}; !reflect.DeepEqual(got, want) {
		t.Errorf("seqs = %v, want %v", got, want)
	}
	// The first entry of a list numbered explicitly: auto continues from it.
	c2 := newACL(t, acl.IPv4, "b")
	e := permitPort(1)
	e.Seq = 7
	if err := c2.AddEntry(acl.IPv4, "b", e); err != nil {
		t.Fatal(err)
	}
	if err := c2.AddEntry(acl.IPv4, "b", permitPort(2)); err != nil {
		t.Fatal(err)
	}
	if got := seqs(c2.ACL(acl.IPv4, "b")); !reflect.DeepEqual(got, []int{7, 17}) {
		t.Errorf("seqs = %v, want [7 17]", got)
	}
	// Auto past the top is refused; explicit seqs below still work.
	if err := add(65530, 1); err != nil {
		t.Fatal(err)
	}
	wantMsg(t, add(0, 2), `next sequence number 65540 is over 65535; resequence access-list "a"`)
	if err := add(65535, 3); err != nil {
		t.Fatal(err)
	}
}

// TestAddEntryIdentical: an entry identical to one in the list, with its
// seq or without one, and a remark with the same text, change nothing and
// are no error (IOS; automation re-sends lines).
func TestAddEntryIdentical(t *testing.T) {
	c := newACL(t, acl.IPv4, "a")
	if err := c.AddEntry(acl.IPv4, "a", permitPort(22)); err != nil {
		t.Fatal(err)
	}
	if err := c.AddEntry(acl.IPv4, "a", &acl.Entry{Action: acl.Remark, Remark: "ssh"}); err != nil {
		t.Fatal(err)
	}
	before := acl.Format(c)
	same := permitPort(22)
	same.Seq = 10
	remark := &acl.Entry{Action: acl.Remark, Remark: "ssh"}
	for _, e := range []*acl.Entry{permitPort(22), same, remark, {Action: acl.Remark, Remark: "ssh", Seq: 20}} {
		if err := c.AddEntry(acl.IPv4, "a", e); err != nil {
			t.Errorf("identical %+v: %v", e, err)
		}
	}
	if got := acl.Format(c); got != before {
		t.Errorf("identical entries changed the list:\n%s", got)
	}
	other := &acl.Entry{Action: acl.Remark, Remark: "other", Seq: 20}
	wantMsg(t, c.AddEntry(acl.IPv4, "a", other), `seq 20 already exists in access-list "a"`)
}

func TestAddEntryRefusals(t *testing.T) {
	c := newACL(t, acl.IPv4, "a")
	if err := c.AddEntry(acl.IPv4, "a", permitPort(22)); err != nil {
		t.Fatal(err)
	}
	before := acl.Format(c)
	e := permitPort(23)
	e.Seq = 10
	wantMsg(t, c.AddEntry(acl.IPv4, "a", e), `seq 10 already exists in access-list "a"`)
	if e.Seq != 10 {
		t.Errorf("failed AddEntry changed e.Seq to %d", e.Seq)
	}
	dup := permitPort(22)
	dup.Seq = 20
	wantMsg(t, c.AddEntry(acl.IPv4, "a", dup), "entry already exists as seq 10")
	if dup.Seq != 20 {
		t.Errorf("failed AddEntry set e.Seq to %d", dup.Seq)
	}
	wantMsg(t, c.AddEntry(acl.IPv4, "nope", permitPort(1)), `access-list "nope" does not exist`)
	wantMsg(t, c.AddEntry(acl.IPv6, "a", permitPort(1)), `access-list "a" does not exist`)
	if acl.Format(c) != before {
		t.Errorf("failed AddEntry changed the config")
	}
	// Identical remarks are allowed under their own seq (separators); a
	// repeated one without seq is the same remark. Entries differing only
	// in an option are different entries.
	for _, seq := range []int{0, 0, 30} {
		if err := c.AddEntry(acl.IPv4, "a", &acl.Entry{Action: acl.Remark, Remark: "---", Seq: seq}); err != nil {
			t.Fatal(err)
		}
	}
	logged := permitPort(22)
	logged.Log = true
	if err := c.AddEntry(acl.IPv4, "a", logged); err != nil {
		t.Fatal(err)
	}
	if got := seqs(c.ACL(acl.IPv4, "a")); !reflect.DeepEqual(got, []int{10, 20, 30, 40}) {
		t.Errorf("seqs = %v", got)
	}
}

func TestDeleteSeqAndMatching(t *testing.T) {
	c := newACL(t, acl.IPv4, "a")
	for _, p := range []uint16{1, 2, 3} {
		if err := c.AddEntry(acl.IPv4, "a", permitPort(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.AddEntry(acl.IPv4, "a", &acl.Entry{Action: acl.Remark, Remark: "note"}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteSeq(acl.IPv4, "a", 20); err != nil {
		t.Fatal(err)
	}
	wantMsg(t, c.DeleteSeq(acl.IPv4, "a", 20), `seq 20 does not exist in access-list "a"`)
	m := permitPort(3)
	m.Seq = 999 // ignored
	if err := c.DeleteMatching(acl.IPv4, "a", m); err != nil {
		t.Fatal(err)
	}
	wantMsg(t, c.DeleteMatching(acl.IPv4, "a", permitPort(3)), `no such entry in access-list "a"`)
	if err := c.DeleteMatching(acl.IPv4, "a", &acl.Entry{Action: acl.Remark, Remark: "note"}); err != nil {
		t.Fatal(err)
	}
	if got := seqs(c.ACL(acl.IPv4, "a")); !reflect.DeepEqual(got, []int{10}) {
		t.Errorf("seqs = %v, want [10]", got)
	}
	wantMsg(t, c.DeleteSeq(acl.IPv4, "b", 10), `access-list "b" does not exist`)
}

func TestResequence(t *testing.T) {
	c := newACL(t, acl.IPv4, "a")
	for i, s := range []int{3, 4, 100, 7000} {
		e := permitPort(uint16(i + 1))
		e.Seq = s
		if err := c.AddEntry(acl.IPv4, "a", e); err != nil {
			t.Fatal(err)
		}
	}
	a := c.ACL(acl.IPv4, "a")
	order := func() []uint16 {
		var p []uint16
		for _, e := range a.Entries {
			p = append(p, e.DstPort.Lo)
		}
		return p
	}
	if err := c.Resequence(acl.IPv4, "a", 10, 10); err != nil {
		t.Fatal(err)
	}
	if got := seqs(a); !reflect.DeepEqual(got, []int{10, 20, 30, 40}) {
		t.Errorf("resequence 10 10: %v", got)
	}
	if err := c.Resequence(acl.IPv4, "a", 1, 5); err != nil {
		t.Fatal(err)
	}
	if got := seqs(a); !reflect.DeepEqual(got, []int{1, 6, 11, 16}) {
		t.Errorf("resequence 1 5: %v", got)
	}
	if got := order(); !reflect.DeepEqual(got, []uint16{1, 2, 3, 4}) {
		t.Errorf("resequence reordered entries: %v", got)
	}
	// 65532 + 3*1 = 65535 fits; 65533 does not.
	if err := c.Resequence(acl.IPv4, "a", 65532, 1); err != nil {
		t.Fatal(err)
	}
	wantMsg(t, c.Resequence(acl.IPv4, "a", 65533, 1), "resequencing 4 entries from 65533 by 1 goes over 65535")
	wantMsg(t, c.Resequence(acl.IPv4, "a", 0, 10), "start 0 out of range 1-65535")
	wantMsg(t, c.Resequence(acl.IPv4, "a", 10, 0), "step 0 out of range 1-65535")
	wantMsg(t, c.Resequence(acl.IPv4, "x", 10, 10), `access-list "x" does not exist`)
	if got := seqs(a); !reflect.DeepEqual(got, []int{65532, 65533, 65534, 65535}) {
		t.Errorf("failed resequence changed seqs: %v", got)
	}
	// Auto-seq after the top is refused until resequenced.
	if err := c.AddEntry(acl.IPv4, "a", permitPort(9)); err == nil {
		t.Errorf("AddEntry after seq 65535 succeeded")
	}
	if err := c.Resequence(acl.IPv4, "a", 10, 10); err != nil {
		t.Fatal(err)
	}
	if err := c.AddEntry(acl.IPv4, "a", permitPort(9)); err != nil {
		t.Fatal(err)
	}
	if got := seqs(a); !reflect.DeepEqual(got, []int{10, 20, 30, 40, 50}) {
		t.Errorf("seqs = %v", got)
	}
	// An empty list resequences fine.
	c2 := newACL(t, acl.IPv6, "e")
	if err := c2.Resequence(acl.IPv6, "e", 65535, 65535); err != nil {
		t.Errorf("resequence of an empty list: %v", err)
	}
}

func TestDeleteACLWhileApplied(t *testing.T) {
	c := newACL(t, acl.IPv4, "check")
	if _, err := c.EnsureACL(acl.IPv6, "check"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetAccessGroup(acl.IfManagement, "0", acl.IPv4, acl.In, "check"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetAccessGroup(acl.IfEthernet, "0/1", acl.IPv6, acl.Out, "check"); err != nil {
		t.Fatal(err)
	}
	wantMsg(t, c.DeleteACL(acl.IPv4, "check"), `access-list "check" is applied to interface management 0 in`)
	wantMsg(t, c.DeleteACL(acl.IPv6, "check"), `access-list "check" is applied to interface ethernet 0/1 out`)
	wantMsg(t, c.ClearAccessGroup(acl.IfManagement, "0", acl.IPv4, acl.In, "other"), `access-list "other" is not applied to interface management 0 in`)
	wantMsg(t, c.ClearAccessGroup(acl.IfManagement, "0", acl.IPv4, acl.Out, "check"), `no ip access-group is applied to interface management 0 out`)
	wantMsg(t, c.ClearAccessGroup(acl.IfLinux, "eth9", acl.IPv4, acl.Out, "check"), `interface eth9 does not exist`)
	if err := c.ClearAccessGroup(acl.IfManagement, "0", acl.IPv4, acl.In, "check"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteACL(acl.IPv4, "check"); err != nil {
		t.Fatal(err)
	}
	if c.ACL(acl.IPv4, "check") != nil || c.ACL(acl.IPv6, "check") == nil {
		t.Errorf("DeleteACL removed the wrong list")
	}
	wantMsg(t, c.DeleteACL(acl.IPv4, "check"), `access-list "check" does not exist`)
	// The interface block stays, with no groups.
	if i := c.Interface(acl.IfManagement, "0"); i == nil || i.Groups != [2][2]string{} {
		t.Errorf("interface management 0 = %+v", i)
	}
}

func TestAccessGroups(t *testing.T) {
	c := newACL(t, acl.IPv4, "a")
	if _, err := c.EnsureACL(acl.IPv4, "b"); err != nil {
		t.Fatal(err)
	}
	wantMsg(t, c.SetAccessGroup(acl.IfLinux, "eth0", acl.IPv4, acl.In, "zz"), `access-list "zz" does not exist`)
	wantMsg(t, c.SetAccessGroup(acl.IfLinux, "eth0", acl.IPv6, acl.In, "a"), `access-list "a" does not exist`)
	wantMsg(t, c.SetAccessGroup(acl.IfEthernet, "1", acl.IPv4, acl.In, "a"), `ethernet interface "1" must be SLOT/PORT`)
	if c.Interface(acl.IfLinux, "eth0") != nil {
		t.Errorf("failed SetAccessGroup created the interface")
	}
	// One list per interface, family and direction: the second replaces.
	for _, n := range []string{"a", "b"} {
		if err := c.SetAccessGroup(acl.IfLinux, "eth0", acl.IPv4, acl.In, n); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.Interface(acl.IfLinux, "eth0").Groups[acl.IPv4][acl.In]; got != "b" {
		t.Errorf("in group = %q, want b", got)
	}
	// user/uid: AddEntry refuses it in a list applied in; SetAccessGroup in
	// refuses a list that has one; out is fine both ways.
	owner := &acl.Entry{Proto: acl.ProtoTCP, Owner: &acl.Owner{User: "bob"}}
	wantMsg(t, c.AddEntry(acl.IPv4, "b", owner), `user/uid only applies out, and access-list "b" is applied to interface eth0 in`)
	if err := c.AddEntry(acl.IPv4, "a", owner); err != nil {
		t.Fatal(err)
	}
	wantMsg(t, c.SetAccessGroup(acl.IfLinux, "eth1", acl.IPv4, acl.In, "a"), `access-list "a" has user/uid entries (seq 10), which only apply outbound (access-group ... out)`)
	if err := c.SetAccessGroup(acl.IfLinux, "eth1", acl.IPv4, acl.Out, "a"); err != nil {
		t.Fatal(err)
	}
	if err := acl.Validate(c); err != nil {
		t.Errorf("Validate = %v", err)
	}
}

func TestInterfaces(t *testing.T) {
	c := acl.New()
	bad := []struct {
		kind acl.IfKind
		name string
		msg  string
	}{
		{acl.IfManagement, "1", `management interface must be 0, not "1"`},
		{acl.IfEthernet, "0/", `ethernet interface "0/" must be SLOT/PORT`},
		{acl.IfEthernet, "01/1", `ethernet interface "01/1" must be SLOT/PORT`},
		{acl.IfEthernet, "a/1", `ethernet interface "a/1" must be SLOT/PORT`},
		{acl.IfEthernet, "0/1/2", `ethernet interface "0/1/2" must be SLOT/PORT`},
		{acl.IfLinux, "", `"" is not a valid interface name`},
		{acl.IfLinux, "a-very-long-name", `"a-very-long-name" is not a valid interface name`},
		{acl.IfLinux, "eth/0", `"eth/0" is not a valid interface name`},
		{acl.IfLinux, "eth 0", `"eth 0" is not a valid interface name`},
		{acl.IfLinux, "..", `".." is not a valid interface name`},
		{acl.IfLinux, "eth", `"eth" is not a valid interface name`},
		{acl.IfLinux, "m", `"m" is not a valid interface name`},
		{acl.IfLinux, "management", `"management" is not a valid interface name`},
		{acl.IfLinux, "eth?", `"eth?" is not a valid interface name`},
	}
	for _, b := range bad {
		_, err := c.EnsureInterface(b.kind, b.name)
		wantMsg(t, err, b.msg)
	}
	for _, n := range []struct {
		kind acl.IfKind
		name string
	}{{acl.IfLinux, "wg0"}, {acl.IfEthernet, "1/2"}, {acl.IfEthernet, "0/10"}, {acl.IfManagement, "0"}, {acl.IfLinux, "eth0"}, {acl.IfEthernet, "0/9"}} {
		if _, err := c.EnsureInterface(n.kind, n.name); err != nil {
			t.Fatal(err)
		}
	}
	var labels []string
	for _, i := range c.Interfaces {
		labels = append(labels, i.Label())
	}
	if got, want := strings.Join(labels, ","), "management 0,ethernet 0/9,ethernet 0/10,ethernet 1/2,eth0,wg0"; got != want {
		t.Errorf("interfaces = %s, want %s", got, want)
	}
	if err := c.DeleteInterface(acl.IfEthernet, "0/10"); err != nil {
		t.Fatal(err)
	}
	wantMsg(t, c.DeleteInterface(acl.IfEthernet, "0/10"), "interface ethernet 0/10 does not exist")
	if err := acl.Validate(c); err != nil {
		t.Errorf("Validate = %v", err)
	}
}

func TestNames(t *testing.T) {
	c := acl.New()
	for _, n := range []string{"", "-a", "_a", "a b", "a!", strings.Repeat("x", 64)} {
		_, err := c.EnsureACL(acl.IPv4, n)
		wantMsg(t, err, `invalid access-list name "`+n+`"`)
		_, err = c.EnsureTimeRange(n)
		wantMsg(t, err, `invalid time-range name "`+n+`"`)
	}
	for _, n := range []string{"a", "A-b_c.d", "101", strings.Repeat("x", 63)} {
		if _, err := c.EnsureACL(acl.IPv4, n); err != nil {
			t.Errorf("EnsureACL(%q) = %v", n, err)
		}
	}
	a1, _ := c.EnsureACL(acl.IPv4, "a")
	a2, _ := c.EnsureACL(acl.IPv4, "a")
	if a1 != a2 || len(c.ACLs) != 4 {
		t.Errorf("EnsureACL of an existing list created another")
	}
	wantMsg(t, c.SetHostname("bad name"), `invalid hostname "bad name"`)
	if err := c.SetHostname("sw-1.lab"); err != nil || c.Hostname != "sw-1.lab" {
		t.Errorf("SetHostname = %v, %q", err, c.Hostname)
	}
}

func TestCloneIndependent(t *testing.T) {
	c := acltest.Example()
	n := c.Clone()
	if !reflect.DeepEqual(n, c) {
		t.Fatalf("Clone differs")
	}
	// Entries are shared (immutable); the lists holding them are not.
	if n.ACL(acl.IPv4, "check").Entries[0] != c.ACL(acl.IPv4, "check").Entries[0] {
		t.Errorf("Clone copied an entry")
	}
	before := acl.Format(c)
	if err := n.DeleteSeq(acl.IPv4, "check", 10); err != nil {
		t.Fatal(err)
	}
	if err := n.AddEntry(acl.IPv4, "check", &acl.Entry{Seq: 10, Action: acl.Remark, Remark: "new"}); err != nil {
		t.Fatal(err)
	}
	n.Interface(acl.IfManagement, "0").Groups[acl.IPv4][acl.In] = ""
	n.TimeRange("office").Periodic[0].Start = 1
	n.TimeRange("office").Absolute.Start.Year = 2030
	n.ACL(acl.IPv4, "check").Entries = nil
	n.Hostname = "other"
	if err := n.Resequence(acl.IPv6, "check6", 1, 1); err != nil {
		t.Fatal(err)
	}
	if after := acl.Format(c); after != before {
		t.Errorf("changing the clone changed the original:\n%s", after)
	}
}

func TestTimeRanges(t *testing.T) {
	c := acl.New()
	if _, err := c.EnsureTimeRange("office"); err != nil {
		t.Fatal(err)
	}
	wantMsg(t, c.AddPeriodic("nope", acl.Periodic{Start: 1}), `time-range "nope" does not exist`)
	p1 := acl.Periodic{Days: acl.Weekend, Start: 22 * 60, End: 6 * 60}
	p2 := acl.Periodic{Days: acl.Monday, Start: 0, End: 30}
	p3 := acl.Periodic{Days: acl.Daily, Start: 8 * 60, End: 9 * 60}
	for _, p := range []acl.Periodic{p1, p2, p3} {
		if err := c.AddPeriodic("office", p); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.AddPeriodic("office", p2); err != nil {
		t.Errorf("re-adding a clause the range holds: %v", err)
	}
	wantMsg(t, c.AddPeriodic("office", acl.Periodic{Start: 60, End: 60}), "periodic 01:00 starts and ends at the same time")
	wantMsg(t, c.AddPeriodic("office", acl.Periodic{Start: 0, End: 1440}), "periodic times must be 00:00-23:59")
	wantMsg(t, c.AddPeriodic("office", acl.Periodic{Days: 10, Start: 0, End: 1}), "unknown periodic days 10")
	if got := c.TimeRange("office").Periodic; !reflect.DeepEqual(got, []acl.Periodic{p3, p1, p2}) {
		t.Errorf("periodic clauses = %v, want sorted daily, weekend, monday", got)
	}
	if err := c.DeletePeriodic("office", p1); err != nil {
		t.Fatal(err)
	}
	wantMsg(t, c.DeletePeriodic("office", p1), "periodic weekend 22:00 to 06:00 does not exist")

	d := func(y, mo, dd, h, mi int) *acl.DateTime {
		return &acl.DateTime{Year: y, Month: mo, Day: dd, Hour: h, Minute: mi}
	}
	wantMsg(t, c.SetAbsolute("office", &acl.Absolute{}), "absolute needs a start or an end")
	wantMsg(t, c.SetAbsolute("office", &acl.Absolute{Start: d(2026, 5, 1, 10, 0), End: d(2026, 5, 1, 9, 59)}), "absolute end 09:59 01 May 2026 is before start 10:00 01 May 2026")
	wantMsg(t, c.SetAbsolute("office", &acl.Absolute{Start: d(2025, 2, 29, 0, 0)}), "Feb 2025 has no day 29")
	wantMsg(t, c.SetAbsolute("office", &acl.Absolute{End: d(2100, 1, 1, 0, 0)}), "year 2100 out of range 1970-2099")
	wantMsg(t, c.SetAbsolute("office", &acl.Absolute{End: d(2026, 13, 1, 0, 0)}), "month 13 out of range 1-12")
	wantMsg(t, c.SetAbsolute("office", &acl.Absolute{End: d(2026, 1, 1, 24, 0)}), "time 24:00 out of range 00:00-23:59")
	if c.TimeRange("office").Absolute != nil {
		t.Errorf("failed SetAbsolute set the clause")
	}
	abs := &acl.Absolute{Start: d(2024, 2, 29, 0, 0), End: d(2024, 2, 29, 0, 0)}
	if err := c.SetAbsolute("office", abs); err != nil {
		t.Fatal(err)
	}
	abs.Start.Year = 2000 // the config keeps its own copy
	if got := c.TimeRange("office").Absolute.Start.Year; got != 2024 {
		t.Errorf("SetAbsolute kept the caller's pointer")
	}

	// A referenced time range cannot be deleted.
	if _, err := c.EnsureACL(acl.IPv6, "six"); err != nil {
		t.Fatal(err)
	}
	if err := c.AddEntry(acl.IPv6, "six", &acl.Entry{Proto: acl.ProtoAny, TimeRange: "office"}); err != nil {
		t.Fatal(err)
	}
	wantMsg(t, c.DeleteTimeRange("office"), `time-range "office" is used by ipv6 access-list extended six seq 10`)
	if err := c.DeleteSeq(acl.IPv6, "six", 10); err != nil {
		t.Fatal(err)
	}
	other := &acl.Absolute{Start: d(2024, 3, 1, 0, 0)}
	wantMsg(t, c.DeleteAbsolute("office", other), `absolute start 00:00 01 Mar 2024 does not exist (time-range "office" has absolute start 00:00 29 Feb 2024 end 00:00 29 Feb 2024)`)
	if c.TimeRange("office").Absolute == nil {
		t.Errorf("DeleteAbsolute of another clause removed the one there is")
	}
	// The bounds given must be the clause's; those left out are any.
	if err := c.DeleteAbsolute("office", &acl.Absolute{End: d(2024, 2, 29, 0, 0)}); err != nil || c.TimeRange("office").Absolute != nil {
		t.Errorf("DeleteAbsolute(end only) = %v", err)
	}
	if err := c.SetAbsolute("office", &acl.Absolute{Start: d(2024, 2, 29, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteAbsolute("office", &acl.Absolute{}); err != nil || c.TimeRange("office").Absolute != nil {
		t.Errorf("DeleteAbsolute() = %v", err)
	}
	wantMsg(t, c.DeleteAbsolute("office", nil), `time-range "office" has no absolute`)
	if err := c.DeleteTimeRange("office"); err != nil {
		t.Fatal(err)
	}
	wantMsg(t, c.DeleteTimeRange("office"), `time-range "office" does not exist`)
}

func TestClock(t *testing.T) {
	for s, want := range map[string]int{"00:00": 0, "08:30": 510, "23:59": 1439} {
		if got, err := acl.ParseClock(s); err != nil || got != want {
			t.Errorf("ParseClock(%q) = %d, %v", s, got, err)
		}
		if got := acl.FormatClock(want); got != s {
			t.Errorf("FormatClock(%d) = %q", want, got)
		}
	}
	for _, s := range []string{"", "8:30", "24:00", "12:60", "-1:00", "+1:00", "12:+1", "ab:cd", "12-30", "123:4"} {
		if _, err := acl.ParseClock(s); err == nil {
			t.Errorf("ParseClock(%q) succeeded", s)
		}
	}
}

func TestAddrConstructors(t *testing.T) {
	ip := netip.MustParseAddr
	tests := []struct {
		base, wild string
		want       string
		kind       acl.AddrKind
	}{
		{"10.1.2.3", "0.0.0.255", "10.1.2.0/24", acl.AddrPrefix},
		{"10.1.2.3", "0.0.0.0", "host 10.1.2.3", acl.AddrPrefix},
		{"10.1.2.3", "255.255.255.255", "any", acl.AddrAny},
		{"10.1.2.3", "0.0.255.0", "10.1.0.3 0.0.255.0", acl.AddrWildcard},
		{"10.1.2.3", "0.255.0.255", "10.0.2.0 0.255.0.255", acl.AddrWildcard},
		{"2001:db8::1", "::ffff:ffff", "2001:db8::/96", acl.AddrPrefix},
		{"2001:db8::ab00:0:0:1", "::ff00:0:0:ff00", "2001:db8::1 ::ff00:0:0:ff00", acl.AddrWildcard},
	}
	for _, tt := range tests {
		a, err := acl.NewWildcardAddr(ip(tt.base), ip(tt.wild))
		if err != nil {
			t.Errorf("NewWildcardAddr(%s, %s) = %v", tt.base, tt.wild, err)
			continue
		}
		if a.String() != tt.want || a.Kind != tt.kind {
			t.Errorf("NewWildcardAddr(%s, %s) = %s (kind %d), want %s", tt.base, tt.wild, a, a.Kind, tt.want)
		}
	}
	if _, err := acl.NewWildcardAddr(ip("10.0.0.1"), ip("::1")); err == nil {
		t.Errorf("NewWildcardAddr accepted mixed families")
	}
	if _, err := acl.NewWildcardAddr(netip.Addr{}, ip("0.0.0.1")); err == nil {
		t.Errorf("NewWildcardAddr accepted an invalid address")
	}
	if a := acl.NewPrefixAddr(netip.MustParsePrefix("10.1.2.3/8")); a.String() != "10.0.0.0/8" {
		t.Errorf("NewPrefixAddr = %s", a)
	}
	if a := acl.NewPrefixAddr(netip.MustParsePrefix("::/0")); a != acl.AnyAddr {
		t.Errorf("NewPrefixAddr(::/0) = %s, want any", a)
	}
	if a := acl.NewHostAddr(ip("2001:db8::5")); !a.IsHost() || a.String() != "host 2001:db8::5" {
		t.Errorf("NewHostAddr = %s", a)
	}
}

func TestServicesAndProtocols(t *testing.T) {
	for name, want := range map[string]uint16{"ssh": 22, "telnet": 23, "ftp": 21, "ftp-data": 20, "smtp": 25, "domain": 53, "http": 80, "www": 80, "https": 443, "pop3": 110, "imap": 143, "ntp": 123, "snmp": 161, "bgp": 179, "ldap": 389, "syslog": 514, "tftp": 69} {
		if got, ok := acl.ServicePort(name); !ok || got != want {
			t.Errorf("ServicePort(%q) = %d, %v; want %d", name, got, ok, want)
		}
	}
	if _, ok := acl.ServicePort("22"); ok {
		t.Errorf("ServicePort accepted a number")
	}
	names := acl.ServiceNames()
	if len(names) < 50 || !strings.Contains(strings.Join(names, ","), ",ssh,") {
		t.Errorf("ServiceNames = %v", names)
	}
	protos := []struct {
		f    acl.Family
		name string
		want int
		ok   bool
	}{
		{acl.IPv4, "ip", acl.ProtoAny, true}, {acl.IPv6, "ipv6", acl.ProtoAny, true},
		{acl.IPv6, "ip", 0, false}, {acl.IPv4, "ipv6", 0, false},
		{acl.IPv4, "icmp", 1, true}, {acl.IPv6, "icmp", 58, true},
		{acl.IPv4, "tcp", 6, true}, {acl.IPv4, "udp", 17, true}, {acl.IPv4, "sctp", 132, true},
		{acl.IPv4, "0", 0, true}, {acl.IPv4, "255", 255, true}, {acl.IPv4, "256", 0, false},
		{acl.IPv4, "06", 0, false}, {acl.IPv4, "-1", 0, false}, {acl.IPv4, "gre", 0, false},
	}
	for _, p := range protos {
		got, ok := acl.ProtoByName(p.f, p.name)
		if got != p.want || ok != p.ok {
			t.Errorf("ProtoByName(%s, %q) = %d, %v; want %d, %v", p.f, p.name, got, ok, p.want, p.ok)
		}
		if ok && p.name[0] > '9' && acl.ProtoName(p.f, got) != p.name {
			t.Errorf("ProtoName(%s, %d) = %q, want %q", p.f, got, acl.ProtoName(p.f, got), p.name)
		}
	}
}

// AddEntry finds duplicates as well at a list's first use (a scan of the
// entries, as on the fresh clone of every transaction) as with the index
// built at its next use.
func TestAddEntryDuplicateOnClone(t *testing.T) {
	c := newACL(t, acl.IPv4, "a")
	for _, p := range []uint16{22, 23, 24} {
		if err := c.AddEntry(acl.IPv4, "a", permitPort(p)); err != nil {
			t.Fatal(err)
		}
	}
	before := acl.Format(c)
	for _, adds := range []int{1, 2, 3} { // the first scans, the next use an index
		n := c.Clone()
		for range adds {
			dup := permitPort(23)
			dup.Seq = 50
			wantMsg(t, n.AddEntry(acl.IPv4, "a", dup), "entry already exists as seq 20")
			if err := n.AddEntry(acl.IPv4, "a", permitPort(24)); err != nil {
				t.Errorf("identical entry without seq: %v", err)
			}
		}
		if got := acl.Format(n); got != before {
			t.Errorf("%d adds of duplicates changed the list:\n%s", adds, got)
		}
	}
}

// An entry re-sent with `count` or `refuse reset` (spellings of defaults)
// is the entry: a no-op at its seq or without one, and what `no ...`
// deletes; one that is invalid so stays an error. Two entries that differ
// so alone at their own seqs stay two (a saved config holding them loads).
func TestSpellingsOfDefaults(t *testing.T) {
	c := acl.New()
	c.EnsureACL(acl.IPv4, "a")
	add := func(e acl.Entry) error { return c.AddEntry(acl.IPv4, "a", &e) }
	ssh := acl.Entry{Seq: 10, Action: acl.Permit, Proto: acl.ProtoTCP, DstPort: acl.PortMatch{Op: acl.PortEq, Lo: 22}}
	if err := add(ssh); err != nil {
		t.Fatal(err)
	}
	counted, reset := ssh, ssh
	counted.Count = true
	reset.Refuse.Kind = acl.RefuseReset
	noSeq := counted
	noSeq.Seq = 0
	for _, e := range []acl.Entry{counted, reset, noSeq} {
		if err := add(e); err != nil {
			t.Errorf("re-sent %+v: %v", e, err)
		}
	}
	if l := c.ACL(acl.IPv4, "a"); len(l.Entries) != 1 || l.Entries[0].Count || l.Entries[0].Refuse.Kind != acl.RefuseDefault {
		t.Fatalf("entries after re-sends: %+v", l.Entries)
	}
	drop := acl.Entry{Seq: 20, Action: acl.HardDrop, Proto: acl.ProtoUDP}
	if err := add(drop); err != nil {
		t.Fatal(err)
	}
	drop.Refuse.Kind = acl.RefuseReset
	if err := add(drop); err == nil {
		t.Error("hard-drop with refuse reset re-sent onto a hard-drop: accepted")
	}
	// At its own seq it is another entry.
	counted.Seq = 30
	if err := add(counted); err != nil {
		t.Errorf("seq 30 with count beside seq 10 without: %v", err)
	}
	if err := acl.Validate(c); err != nil {
		t.Errorf("Validate: %v", err)
	}
	counted.Seq = 0
	if err := c.DeleteMatching(acl.IPv4, "a", &counted); err != nil || c.ACL(acl.IPv4, "a").Entry(30) != nil || c.ACL(acl.IPv4, "a").Entry(10) == nil {
		t.Errorf("no permit ... count: %v; it deletes seq 30 (the entry itself) first", err)
	}
	if err := c.DeleteMatching(acl.IPv4, "a", &reset); err != nil || c.ACL(acl.IPv4, "a").Entry(10) != nil {
		t.Errorf("no permit ... refuse reset: %v; seq 10 is that entry", err)
	}
}

// TestEquivalentSpellings: `range P P` is `eq P` and a quota is its bytes,
// however spelled: re-sent in the other spelling, at its seq or without
// one, the entry is a no-op (SPEC §4: in any equivalent spelling), and `no`
// in the other spelling deletes it. Duplicates stay exact: the other
// spelling at a seq of its own is its own entry, so saved configs that
// hold such pairs (accepted before) still load.
func TestEquivalentSpellings(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b acl.Entry
	}{
		{"range P P", acl.Entry{DstPort: acl.PortMatch{Op: acl.PortEq, Lo: 8080}},
			acl.Entry{DstPort: acl.PortMatch{Op: acl.PortRange, Lo: 8080, Hi: 8080}}},
		{"source range P P", acl.Entry{SrcPort: acl.PortMatch{Op: acl.PortRange, Lo: 1024, Hi: 1024}},
			acl.Entry{SrcPort: acl.PortMatch{Op: acl.PortEq, Lo: 1024}}},
		{"quota units", acl.Entry{Quota: &acl.Quota{N: 1, Unit: acl.KBytes, Per: acl.Minute}},
			acl.Entry{Quota: &acl.Quota{N: 1024, Unit: acl.Bytes, Per: acl.Minute}}},
		{"quota units down", acl.Entry{Quota: &acl.Quota{N: 2048, Unit: acl.MBytes, Per: acl.Day}},
			acl.Entry{Quota: &acl.Quota{N: 2, Unit: acl.GBytes, Per: acl.Day}}},
	} {
		c := acl.New()
		c.EnsureACL(acl.IPv4, "a")
		a, b := tc.a, tc.b
		a.Seq, a.Action, a.Proto = 10, acl.Permit, acl.ProtoTCP
		b.Seq, b.Action, b.Proto = 10, acl.Permit, acl.ProtoTCP
		if err := c.AddEntry(acl.IPv4, "a", &a); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if err := c.AddEntry(acl.IPv4, "a", &b); err != nil {
			t.Errorf("%s: re-sent at its seq in the other spelling: %v", tc.name, err)
		}
		noSeq := b
		noSeq.Seq = 0
		if err := c.AddEntry(acl.IPv4, "a", &noSeq); err != nil {
			t.Errorf("%s: re-sent without seq in the other spelling: %v", tc.name, err)
		}
		if n := len(c.ACL(acl.IPv4, "a").Entries); n != 1 {
			t.Errorf("%s: %d entries after re-sends, want 1", tc.name, n)
		}
		other := b
		other.Seq = 20
		if err := c.AddEntry(acl.IPv4, "a", &other); err != nil {
			t.Errorf("%s: the other spelling at a seq of its own: %v", tc.name, err)
		}
		if err := acl.Validate(c); err != nil {
			t.Errorf("%s: a config with both spellings does not validate: %v", tc.name, err)
		}
		del := b
		del.Seq = 0
		if err := c.DeleteMatching(acl.IPv4, "a", &del); err != nil {
			t.Errorf("%s: no ... in the other spelling: %v", tc.name, err)
		}
	}
}

// TestQuotaOutOfRangeHasNoSpelling: an amount whose bytes overflow is no
// spelling of a valid quota (review: 17179869185 gbytes wrapped to 1024
// mbytes, so `no ...` deleted that entry and a re-send was a silent no-op).
func TestQuotaOutOfRangeHasNoSpelling(t *testing.T) {
	c := acl.New()
	c.EnsureACL(acl.IPv4, "a")
	if err := c.AddEntry(acl.IPv4, "a", &acl.Entry{Seq: 10, Action: acl.Permit, Proto: acl.ProtoTCP, Quota: &acl.Quota{N: 1024, Unit: acl.MBytes, Per: acl.Day}}); err != nil {
		t.Fatal(err)
	}
	bad := acl.Entry{Action: acl.Permit, Proto: acl.ProtoTCP, Quota: &acl.Quota{N: 1<<34 + 1, Unit: acl.GBytes, Per: acl.Day}}
	b1, b2 := bad, bad
	if err := c.AddEntry(acl.IPv4, "a", &b1); err == nil {
		t.Error("a quota out of range without seq was accepted")
	}
	if err := c.DeleteMatching(acl.IPv4, "a", &b2); err == nil || len(c.ACL(acl.IPv4, "a").Entries) != 1 {
		t.Error("no ... with a quota out of range deleted the 1024 mbytes entry")
	}
}
