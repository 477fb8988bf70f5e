package acl_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
)

// fixture returns a config with time-range "office", an IPv4 list "inacl"
// applied in on management 0 and an IPv4 list "outacl" applied out.
func fixture(t *testing.T) *acl.Config {
	t.Helper()
	c := acl.New()
	for _, err := range []error{
		second(c.EnsureTimeRange("office")),
		second(c.EnsureACL(acl.IPv4, "inacl")),
		second(c.EnsureACL(acl.IPv4, "outacl")),
		second(c.EnsureACL(acl.IPv6, "six")),
		c.SetAccessGroup(acl.IfManagement, "0", acl.IPv4, acl.In, "inacl"),
		c.SetAccessGroup(acl.IfManagement, "0", acl.IPv4, acl.Out, "outacl"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func second[T any](_ T, err error) error { return err }

func TestValidateEntryErrors(t *testing.T) {
	wild := acl.Addr{Kind: acl.AddrWildcard, Base: netip.MustParseAddr("10.0.0.0"), Wildcard: netip.MustParseAddr("0.255.0.255")}
	tcp := func(mod func(e *acl.Entry)) *acl.Entry {
		e := &acl.Entry{Seq: 10, Action: acl.Permit, Proto: acl.ProtoTCP}
		mod(e)
		return e
	}
	tests := []struct {
		name string
		f    acl.Family
		acl  string
		e    *acl.Entry
		want string
	}{
		{"seq 0", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Seq = 0 }), "seq 0 out of range 1-65535"},
		{"seq high", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Seq = 65536 }), "seq 65536 out of range 1-65535"},
		{"empty remark", acl.IPv4, "outacl", &acl.Entry{Seq: 1, Action: acl.Remark}, "remark text is empty"},
		{"remark spaces", acl.IPv4, "outacl", &acl.Entry{Seq: 1, Action: acl.Remark, Remark: " x"}, "remark has leading or trailing spaces"},
		{"remark control", acl.IPv4, "outacl", &acl.Entry{Seq: 1, Action: acl.Remark, Remark: "a\nb"}, "remark has control characters"},
		{"remark long", acl.IPv4, "outacl", &acl.Entry{Seq: 1, Action: acl.Remark, Remark: strings.Repeat("x", 256)}, "remark is longer than 255 characters"},
		{"remark with options", acl.IPv4, "outacl", &acl.Entry{Seq: 1, Action: acl.Remark, Remark: "x", Log: true}, "a remark carries nothing but its text"},
		{"remark text on permit", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Remark = "x" }), "only a remark carries remark text"},
		{"action", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Action = 9 }), "unknown action 9"},
		{"proto", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Proto = 256 }), "protocol 256 out of range 0-255"},
		{"v6 addr in v4", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Src = host("2001:db8::1") }), "source 2001:db8::1 is not an IPv4 address"},
		{"v4 addr in v6", acl.IPv6, "six", tcp(func(e *acl.Entry) { e.Dst = pfx("10.0.0.0/8") }), "destination 10.0.0.0 is not an IPv6 address"},
		{"prefix length v4", acl.IPv4, "outacl", tcp(func(e *acl.Entry) {
			e.Src = acl.Addr{Kind: acl.AddrPrefix, Prefix: netip.PrefixFrom(netip.MustParseAddr("10.0.0.0"), 33)}
		}), "source prefix is invalid"},
		{"host bits", acl.IPv4, "outacl", tcp(func(e *acl.Entry) {
			e.Src = acl.Addr{Kind: acl.AddrPrefix, Prefix: netip.MustParsePrefix("10.0.0.1/8")}
		}), "source prefix 10.0.0.1/8 has host bits set"},
		{"prefix zero", acl.IPv4, "outacl", tcp(func(e *acl.Entry) {
			e.Dst = acl.Addr{Kind: acl.AddrPrefix, Prefix: netip.MustParsePrefix("0.0.0.0/0")}
		}), "destination prefix 0.0.0.0/0 must be written any"},
		{"contiguous wildcard", acl.IPv4, "outacl", tcp(func(e *acl.Entry) {
			e.Src = acl.Addr{Kind: acl.AddrWildcard, Base: netip.MustParseAddr("10.0.0.0"), Wildcard: netip.MustParseAddr("0.0.0.255")}
		}), "source wildcard 0.0.0.255 is contiguous and must be written as a prefix"},
		{"wildcard bits", acl.IPv4, "outacl", tcp(func(e *acl.Entry) {
			e.Src = acl.Addr{Kind: acl.AddrWildcard, Base: netip.MustParseAddr("10.1.0.0"), Wildcard: wild.Wildcard}
		}), "source 10.1.0.0 has wildcard bits set"},
		{"wildcard family", acl.IPv6, "six", tcp(func(e *acl.Entry) { e.Src = wild }), "source 10.0.0.0 is not an IPv6 address"},
		{"any with address", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Src = acl.Addr{Prefix: netip.MustParsePrefix("1.0.0.0/8")} }), "source any carries an address"},
		{"ports on ip", acl.IPv4, "outacl", &acl.Entry{Seq: 1, Proto: acl.ProtoAny, DstPort: acl.PortMatch{Op: acl.PortEq, Lo: 22}}, `port operator "eq" needs protocol tcp, udp or sctp`},
		{"ports on icmp", acl.IPv4, "outacl", &acl.Entry{Seq: 1, Proto: acl.ProtoICMP, SrcPort: acl.PortMatch{Op: acl.PortRange, Lo: 1, Hi: 2}}, `port operator "range" needs protocol tcp, udp or sctp`},
		{"range reversed", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.DstPort = acl.PortMatch{Op: acl.PortRange, Lo: 20, Hi: 10} }), "destination port range 20 10 is reversed"},
		{"lt 0", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.DstPort = acl.PortMatch{Op: acl.PortLt} }), "destination port lt 0 matches nothing"},
		{"gt max", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.SrcPort = acl.PortMatch{Op: acl.PortGt, Lo: 65535} }), "source port gt 65535 matches nothing"},
		{"eq with hi", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.SrcPort = acl.PortMatch{Op: acl.PortEq, Lo: 1, Hi: 2} }), "source port eq carries a second port"},
		{"port op", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.SrcPort = acl.PortMatch{Op: 9} }), "unknown source port operator 9"},
		{"connlimit high", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Connlimits = []acl.Connlimit{{N: 65536}} }), "connlimit 65536 out of range 0-65535"},
		{"connlimit negative", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Connlimits = []acl.Connlimit{{N: -1}} }), "connlimit -1 out of range 0-65535"},
		{"per-prefix v4", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Connlimits = []acl.Connlimit{{N: 1, Key: acl.PerPrefix, PrefixLen: 33}} }), "per-prefix length 33 out of range 1-32"},
		{"per-prefix v6", acl.IPv6, "six", tcp(func(e *acl.Entry) { e.Connlimits = []acl.Connlimit{{N: 1, Key: acl.PerPrefix, PrefixLen: 129}} }), "per-prefix length 129 out of range 1-128"},
		{"per-prefix 0", acl.IPv6, "six", tcp(func(e *acl.Entry) { e.Connlimits = []acl.Connlimit{{N: 1, Key: acl.PerPrefix}} }), "per-prefix length 0 out of range 1-128"},
		{"len without per-prefix", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Connlimits = []acl.Connlimit{{N: 1, PrefixLen: 8}} }), "connlimit prefix length without per-prefix"},
		{"connlimit key", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Connlimits = []acl.Connlimit{{N: 1, Key: 7}} }), "unknown connlimit key 7"},
		{"two connlimits on one key", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Connlimits = []acl.Connlimit{{N: 1}, {N: 5}} }), "two connlimits on one key (per-source): give each limit its own key"},
		{"per-prefix 32 is per-source", acl.IPv4, "outacl", tcp(func(e *acl.Entry) {
			e.Connlimits = []acl.Connlimit{{N: 1}, {N: 5, Key: acl.PerPrefix, PrefixLen: 32}}
		}), "two connlimits on one key (per-source): give each limit its own key"},
		{"five connlimits", acl.IPv6, "six", tcp(func(e *acl.Entry) {
			e.Connlimits = []acl.Connlimit{{N: 1}, {N: 2, Key: acl.PerPrefix, PrefixLen: 64}, {N: 3, Key: acl.PerPrefix, PrefixLen: 56}, {N: 4, Key: acl.PerPrefix, PrefixLen: 48}, {N: 5, Key: acl.Total}}
		}), "at most 4 connlimits on one entry"},
		{"rate 0", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Rate = &acl.Rate{N: 0} }), "rate 0 out of range 1-1000000000"},
		{"rate period", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Rate = &acl.Rate{N: 1, Per: 9} }), "unknown rate period 9"},
		{"burst", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Rate = &acl.Rate{N: 1, Burst: -1} }), "burst -1 out of range 1-1000000000"},
		{"rate key", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Rate = &acl.Rate{N: 1, Key: acl.PerDestination} }), "rate counts per-source or total only"},
		{"quota 0", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Quota = &acl.Quota{N: 0, Per: acl.Hour} }), "quota 0 bytes out of range 1 byte to 1 EiB"},
		{"quota huge", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Quota = &acl.Quota{N: 1 << 31, Unit: acl.GBytes, Per: acl.Hour} }), "quota 2147483648 gbytes out of range 1 byte to 1 EiB"},
		{"quota per second", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Quota = &acl.Quota{N: 1, Per: acl.Second} }), "quota is per minute, hour or day, not per second"},
		{"quota unit", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Quota = &acl.Quota{N: 1, Unit: 4, Per: acl.Hour} }), "unknown quota unit 4"},
		{"block-for range", acl.IPv4, "outacl", tcp(func(e *acl.Entry) {
			e.Connlimits = []acl.Connlimit{{N: 1}}
			e.BlockFor = &acl.BlockFor{Seconds: 86401}
		}), "block-for 86401 out of range 1-86400 seconds"},
		{"block-for without limit", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.BlockFor = &acl.BlockFor{Seconds: 5} }), "block-for needs a connlimit, rate or quota on the entry"},
		{"unknown time-range", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.TimeRange = "night" }), `time-range "night" does not exist`},
		{"load-limit 0", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.LoadLimit = &acl.LoadLimit{} }), "load-limit 0.00 out of range 0.01-999.99"},
		{"load-limit high", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.LoadLimit = &acl.LoadLimit{Hundredths: 100000} }), "load-limit 1000.00 out of range 0.01-999.99"},
		{"user name", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Owner = &acl.Owner{User: "-x"} }), `invalid user name "-x"`},
		{"user and uid", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Owner = &acl.Owner{User: "bob", UID: 3} }), `user "bob" carries a uid`},
		{"uid", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Owner = &acl.Owner{UID: -1} }), "uid -1 out of range 0-4294967294"},
		{"user in", acl.IPv4, "inacl", tcp(func(e *acl.Entry) { e.Owner = &acl.Owner{User: "bob"} }), `user/uid only applies out, and access-list "inacl" is applied to interface management 0 in`},
		{"refuse message udp", acl.IPv4, "outacl", &acl.Entry{Seq: 1, Proto: acl.ProtoUDP, Refuse: acl.Refuse{Kind: acl.RefuseMessage, Message: "x"}}, "refuse message needs protocol tcp"},
		{"refuse message empty", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Refuse = acl.Refuse{Kind: acl.RefuseMessage} }), "refuse message is empty"},
		{"refuse message control", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Refuse = acl.Refuse{Kind: acl.RefuseMessage, Message: "a\r\n"} }), "refuse message has control characters"},
		{"refuse message long", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Refuse = acl.Refuse{Kind: acl.RefuseMessage, Message: strings.Repeat("x", 201)} }), "refuse message is longer than 200 bytes"},
		{"refuse drop with text", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Refuse = acl.Refuse{Kind: acl.RefuseDrop, Message: "x"} }), "refuse drop carries a message"},
		{"refuse kind", acl.IPv4, "outacl", tcp(func(e *acl.Entry) { e.Refuse = acl.Refuse{Kind: 8} }), "unknown refuse kind 8"},
		{"hard-drop limits", acl.IPv4, "outacl", tcp(func(e *acl.Entry) {
			e.Action = acl.HardDrop
			e.Connlimits = []acl.Connlimit{{N: 1}}
			e.Refuse = acl.Refuse{Kind: acl.RefuseReset}
		}), "hard-drop always drops and takes no connlimit, refuse"},
		{"hard-drop load-limit", acl.IPv4, "outacl", tcp(func(e *acl.Entry) {
			e.Action = acl.HardDrop
			e.LoadLimit = &acl.LoadLimit{Hundredths: 5}
		}), "hard-drop always drops and takes no load-limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fixture(t)
			err := acl.ValidateEntry(c, tt.f, tt.acl, tt.e)
			var ae *acl.Error
			if !errors.As(err, &ae) {
				t.Fatalf("ValidateEntry = %v, want *acl.Error %q", err, tt.want)
			}
			if ae.Msg != tt.want {
				t.Errorf("ValidateEntry = %q, want %q", ae.Msg, tt.want)
			}
			// AddEntry refuses it too and changes nothing.
			if tt.e.Seq >= 1 && tt.e.Seq <= acl.MaxSeq {
				before := acl.Format(c)
				if err := c.AddEntry(tt.f, tt.acl, tt.e); err == nil {
					t.Errorf("AddEntry accepted the entry")
				}
				if after := acl.Format(c); after != before {
					t.Errorf("failed AddEntry changed the config:\n%s", after)
				}
			}
		})
	}
}

func TestValidateEntryAccepts(t *testing.T) {
	c := fixture(t)
	ok := []struct {
		f   acl.Family
		acl string
		e   *acl.Entry
	}{
		{acl.IPv4, "outacl", &acl.Entry{Seq: 1, Proto: acl.ProtoTCP, Owner: &acl.Owner{User: "www-data"}}},
		{acl.IPv4, "outacl", &acl.Entry{Seq: 1, Proto: acl.ProtoUDP, Refuse: acl.Refuse{Kind: acl.RefuseReset}}},
		{acl.IPv4, "inacl", &acl.Entry{Seq: 1, Proto: acl.ProtoTCP, Connlimits: []acl.Connlimit{{N: 0}}, TimeRange: "office", Refuse: acl.Refuse{Kind: acl.RefuseMessage, Message: `"hi" \o/`}}},
		{acl.IPv4, "inacl", &acl.Entry{Seq: 65535, Action: acl.HardDrop, Proto: acl.ProtoAny, Log: true, Count: true}},
		{acl.IPv6, "six", &acl.Entry{Seq: 1, Action: acl.Deny, Proto: acl.ProtoTCP, Connlimits: []acl.Connlimit{{N: 65535, Key: acl.PerPrefix, PrefixLen: 128}}, BlockFor: &acl.BlockFor{Seconds: 86400}}},
		{acl.IPv6, "six", &acl.Entry{Seq: 1, Proto: acl.ProtoSCTP, SrcPort: acl.PortMatch{Op: acl.PortRange, Lo: 5, Hi: 5}, Quota: &acl.Quota{N: 1 << 30, Unit: acl.GBytes, Per: acl.Day}}},
		{acl.IPv4, "", &acl.Entry{Seq: 1, Action: acl.Remark, Remark: "any text, even \"quotes\""}},
	}
	for i, tt := range ok {
		if err := acl.ValidateEntry(c, tt.f, tt.acl, tt.e); err != nil {
			t.Errorf("%d: ValidateEntry(%s) = %v", i, acl.FormatEntry(tt.f, tt.e), err)
		}
	}
	// Without a config, cross-references are not checked.
	if err := acl.ValidateEntry(nil, acl.IPv4, "x", &acl.Entry{Seq: 1, TimeRange: "nowhere", Owner: &acl.Owner{UID: 5}}); err != nil {
		t.Errorf("ValidateEntry(nil config) = %v", err)
	}
}

// TestValidateConfig builds a config by hand with one problem of each kind
// and checks that Validate reports every one with its path.
func TestValidateConfig(t *testing.T) {
	c := &acl.Config{
		Hostname:         "bad host",
		ExistingSessions: 5,
		TimeRanges: []*acl.TimeRange{
			{Name: "b", Periodic: []acl.Periodic{{Days: acl.Daily, Start: 60, End: 60}}},
			{Name: "a", Absolute: &acl.Absolute{Start: &acl.DateTime{Year: 2026, Month: 2, Day: 30}}},
		},
		ACLs: []*acl.ACL{
			{Name: "check", Family: acl.IPv4, Entries: []*acl.Entry{
				{Seq: 20, Proto: acl.ProtoAny, TimeRange: "zzz"},
				{Seq: 10, Proto: acl.ProtoTCP, Owner: &acl.Owner{UID: 1}},
				{Seq: 30, Proto: acl.ProtoAny, TimeRange: "zzz"},
			}},
			{Name: "aaa", Family: acl.IPv4},
			{Name: "six", Family: acl.IPv6, Entries: []*acl.Entry{
				{Seq: 10, Proto: acl.ProtoAny, Src: host("10.0.0.1")},
			}},
		},
		Interfaces: []*acl.Interface{
			{Kind: acl.IfManagement, Name: "1"},
			{Kind: acl.IfEthernet, Name: "0/1", Groups: [2][2]string{{"check", "nope"}, {"", ""}}},
		},
	}
	err := acl.Validate(c)
	var got []string
	for _, e := range unjoin(err) {
		var ae *acl.Error
		if !errors.As(e, &ae) {
			t.Fatalf("error %v is not an *acl.Error", e)
		}
		got = append(got, ae.Path+": "+ae.Msg)
	}
	want := []string{
		`hostname: invalid hostname "bad host"`,
		`connlimit existing-sessions: unknown policy 5`,
		`time-range b: periodic 01:00 starts and ends at the same time`,
		`time-range a: time ranges not sorted or duplicated`,
		`time-range a: Feb 2026 has no day 30`,
		`ip access-list extended check seq 20: time-range "zzz" does not exist`,
		`ip access-list extended check seq 10: entries not sorted by seq or seq duplicated`,
		`ip access-list extended check seq 30: time-range "zzz" does not exist`,
		`ip access-list extended check seq 30: entry duplicates seq 20`,
		`ip access-list extended aaa: access lists not sorted or duplicated`,
		`ipv6 access-list extended six seq 10: source 10.0.0.1 is not an IPv6 address`,
		`interface management 1: management interface must be 0, not "1"`,
		`interface ethernet 0/1: ip access-group check in: user/uid entries (seq 10) only apply outbound (access-group ... out)`,
		`interface ethernet 0/1: ip access-group nope out: access-list "nope" does not exist`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Validate errors:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// Entries that share a bucket of the duplicate finder (all of them here)
// are told apart by their content, exactly: entries that differ by
// `count` or `refuse reset` alone are no duplicates (they were accepted
// so, and a saved config that holds them must load).
func TestValidateDuplicatesInOneBucket(t *testing.T) {
	defer acl.OneBucket()()
	entry := func(seq int, port uint16, count bool) *acl.Entry {
		return &acl.Entry{Seq: seq, Proto: acl.ProtoTCP, DstPort: acl.PortMatch{Op: acl.PortEq, Lo: port}, Count: count}
	}
	reset := entry(50, 24, false)
	reset.Refuse.Kind = acl.RefuseReset
	c := &acl.Config{ACLs: []*acl.ACL{{Name: "a", Family: acl.IPv4, Entries: []*acl.Entry{
		entry(10, 22, false), entry(20, 23, true), entry(30, 23, true), entry(40, 22, false), entry(45, 24, false), reset,
		entry(60, 22, true),
	}}}}
	var got []string
	for _, e := range unjoin(acl.Validate(c)) {
		got = append(got, e.Error())
	}
	want := []string{
		"ip access-list extended a seq 30: entry duplicates seq 20",
		"ip access-list extended a seq 40: entry duplicates seq 10",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Validate errors:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
