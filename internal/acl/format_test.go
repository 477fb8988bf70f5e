package acl_test

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/acl/acltest"
)

func TestFormatExample(t *testing.T) {
	c := acltest.Example()
	if err := acl.Validate(c); err != nil {
		t.Fatalf("Validate(Example) = %v", err)
	}
	if got := acl.Format(c); got != acltest.ExampleText {
		t.Errorf("Format(Example) =\n%s\nwant\n%s", got, acltest.ExampleText)
	}
}

func TestFormatEmptyAndBareBlocks(t *testing.T) {
	c := acl.New()
	if got := acl.Format(c); got != "" {
		t.Errorf("Format(empty) = %q, want \"\"", got)
	}
	if _, err := c.EnsureInterface(acl.IfEthernet, "0/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.EnsureInterface(acl.IfLinux, "eth0"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.EnsureInterface(acl.IfEthernet, "0/10"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.EnsureInterface(acl.IfEthernet, "0/2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.EnsureACL(acl.IPv6, "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.EnsureACL(acl.IPv4, "z"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.EnsureTimeRange("t"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetAbsolute("t", &acl.Absolute{End: &acl.DateTime{Year: 2027, Month: 2, Day: 28, Hour: 9, Minute: 5}}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetAccessGroup(acl.IfEthernet, "0/2", acl.IPv6, acl.Out, "b"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetAccessGroup(acl.IfEthernet, "0/2", acl.IPv4, acl.Out, "z"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetAccessGroup(acl.IfEthernet, "0/2", acl.IPv4, acl.In, "z"); err != nil {
		t.Fatal(err)
	}
	want := `time-range t
 absolute end 09:05 28 Feb 2027
!
ip access-list extended z
!
ipv6 access-list extended b
!
interface ethernet 0/1
!
interface ethernet 0/2
 ip access-group z in
 ip access-group z out
 ipv6 access-group b out
!
interface ethernet 0/10
!
interface eth0
!
`
	if got := acl.Format(c); got != want {
		t.Errorf("Format =\n%s\nwant\n%s", got, want)
	}
}

func host(s string) acl.Addr { return acl.NewHostAddr(netip.MustParseAddr(s)) }
func pfx(s string) acl.Addr  { return acl.NewPrefixAddr(netip.MustParsePrefix(s)) }

func TestFormatEntry(t *testing.T) {
	base := func(mod func(e *acl.Entry)) *acl.Entry {
		e := &acl.Entry{Seq: 10, Action: acl.Permit, Proto: acl.ProtoTCP}
		mod(e)
		return e
	}
	wild, err := acl.NewWildcardAddr(netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("0.255.0.255"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		f    acl.Family
		e    *acl.Entry
		want string
	}{
		{acl.IPv4, &acl.Entry{Seq: 5, Action: acl.Remark, Remark: "ssh from the jump host"}, "seq 5 remark ssh from the jump host"},
		{acl.IPv4, &acl.Entry{Seq: 1, Action: acl.Permit, Proto: acl.ProtoAny}, "seq 1 permit ip any any"},
		{acl.IPv6, &acl.Entry{Seq: 1, Action: acl.Deny, Proto: acl.ProtoAny}, "seq 1 deny ipv6 any any"},
		{acl.IPv4, &acl.Entry{Seq: 2, Action: acl.HardDrop, Proto: acl.ProtoICMP}, "seq 2 hard-drop icmp any any"},
		{acl.IPv6, &acl.Entry{Seq: 2, Action: acl.Permit, Proto: acl.ProtoICMPv6}, "seq 2 permit icmp any any"},
		{acl.IPv4, &acl.Entry{Seq: 2, Action: acl.Permit, Proto: acl.ProtoICMPv6}, "seq 2 permit 58 any any"},
		{acl.IPv4, &acl.Entry{Seq: 3, Action: acl.Permit, Proto: 47}, "seq 3 permit 47 any any"},
		{acl.IPv4, &acl.Entry{Seq: 3, Action: acl.Permit, Proto: 0}, "seq 3 permit 0 any any"},
		{acl.IPv4, &acl.Entry{Seq: 3, Action: acl.Permit, Proto: acl.ProtoUDP, Src: pfx("10.0.0.0/8"), Dst: wild}, "seq 3 permit udp 10.0.0.0/8 10.0.2.0 0.255.0.255"},
		{acl.IPv4, &acl.Entry{Seq: 3, Action: acl.Permit, Proto: acl.ProtoSCTP, Src: host("1.2.3.4"), Dst: host("5.6.7.8")}, "seq 3 permit sctp host 1.2.3.4 host 5.6.7.8"},
		{acl.IPv6, &acl.Entry{Seq: 3, Action: acl.Permit, Proto: acl.ProtoTCP, Src: host("2001:db8::1"), Dst: pfx("2001:db8::/32")}, "seq 3 permit tcp host 2001:db8::1 2001:db8::/32"},
		{acl.IPv4, base(func(e *acl.Entry) {
			e.SrcPort = acl.PortMatch{Op: acl.PortRange, Lo: 1024, Hi: 65535}
			e.DstPort = acl.PortMatch{Op: acl.PortNeq, Lo: 22}
		}), "seq 10 permit tcp any range 1024 65535 any neq 22"},
		{acl.IPv4, base(func(e *acl.Entry) { e.DstPort = acl.PortMatch{Op: acl.PortLt, Lo: 1024} }), "seq 10 permit tcp any any lt 1024"},
		{acl.IPv4, base(func(e *acl.Entry) { e.SrcPort = acl.PortMatch{Op: acl.PortGt, Lo: 1023} }), "seq 10 permit tcp any gt 1023 any"},
		{acl.IPv4, base(func(e *acl.Entry) { e.Connlimits = []acl.Connlimit{{N: 3}} }), "seq 10 permit tcp any any connlimit 3"},
		{acl.IPv4, base(func(e *acl.Entry) { e.Connlimits = []acl.Connlimit{{N: 1}, {N: 5, Key: acl.PerPrefix, PrefixLen: 24}} }), "seq 10 permit tcp any any connlimit 1 connlimit 5 per-prefix 24"},
		{acl.IPv4, base(func(e *acl.Entry) { e.Connlimits = []acl.Connlimit{{N: 0, Key: acl.Total}} }), "seq 10 permit tcp any any connlimit 0 total"},
		{acl.IPv4, base(func(e *acl.Entry) { e.Connlimits = []acl.Connlimit{{N: 5, Key: acl.PerDestination}} }), "seq 10 permit tcp any any connlimit 5 per-destination"},
		{acl.IPv6, base(func(e *acl.Entry) { e.Connlimits = []acl.Connlimit{{N: 5, Key: acl.PerPrefix, PrefixLen: 64}} }), "seq 10 permit tcp any any connlimit 5 per-prefix 64"},
		{acl.IPv4, base(func(e *acl.Entry) { e.Rate = &acl.Rate{N: 10, Per: acl.Second} }), "seq 10 permit tcp any any rate 10 per second"},
		{acl.IPv4, base(func(e *acl.Entry) { e.Rate = &acl.Rate{N: 10, Per: acl.Minute, Burst: 5, Key: acl.Total} }), "seq 10 permit tcp any any rate 10 per minute burst 5 total"},
		{acl.IPv4, base(func(e *acl.Entry) { e.Quota = &acl.Quota{N: 100, Unit: acl.MBytes, Per: acl.Hour} }), "seq 10 permit tcp any any quota 100 mbytes per hour"},
		{acl.IPv4, base(func(e *acl.Entry) { e.Quota = &acl.Quota{N: 7, Unit: acl.Bytes, Per: acl.Day, PerSource: true} }), "seq 10 permit tcp any any quota 7 bytes per day per-source"},
		{acl.IPv4, base(func(e *acl.Entry) {
			e.Connlimits = []acl.Connlimit{{N: 1}}
			e.BlockFor = &acl.BlockFor{Seconds: 60}
		}), "seq 10 permit tcp any any connlimit 1 block-for 60"},
		{acl.IPv4, base(func(e *acl.Entry) {
			e.Quota = &acl.Quota{N: 1, Unit: acl.GBytes, Per: acl.Minute}
			e.BlockFor = &acl.BlockFor{Seconds: 600, Flush: true}
		}), "seq 10 permit tcp any any quota 1 gbytes per minute block-for 600 flush"},
		{acl.IPv4, base(func(e *acl.Entry) { e.TimeRange = "office" }), "seq 10 permit tcp any any time-range office"},
		{acl.IPv4, base(func(e *acl.Entry) { e.LoadLimit = &acl.LoadLimit{Hundredths: 150} }), "seq 10 permit tcp any any load-limit 1.50"},
		{acl.IPv4, base(func(e *acl.Entry) { e.LoadLimit = &acl.LoadLimit{Hundredths: 7} }), "seq 10 permit tcp any any load-limit 0.07"},
		{acl.IPv4, base(func(e *acl.Entry) { e.Owner = &acl.Owner{User: "www-data"} }), "seq 10 permit tcp any any user www-data"},
		{acl.IPv4, base(func(e *acl.Entry) { e.Owner = &acl.Owner{UID: 0} }), "seq 10 permit tcp any any uid 0"},
		{acl.IPv4, base(func(e *acl.Entry) { e.Refuse = acl.Refuse{Kind: acl.RefuseDrop} }), "seq 10 permit tcp any any refuse drop"},
		{acl.IPv4, base(func(e *acl.Entry) { e.Refuse = acl.Refuse{Kind: acl.RefuseReset} }), "seq 10 permit tcp any any refuse reset"},
		{acl.IPv4, base(func(e *acl.Entry) { e.Refuse = acl.Refuse{Kind: acl.RefuseMessage, Message: `busy "now" \ later`} }), `seq 10 permit tcp any any refuse message "busy \"now\" \\ later"`},
		{acl.IPv4, base(func(e *acl.Entry) { e.Log = true }), "seq 10 permit tcp any any log"},
		{acl.IPv4, base(func(e *acl.Entry) { e.Count = true }), "seq 10 permit tcp any any count"},
		{acl.IPv4, base(func(e *acl.Entry) {
			// Every option at once, to pin the canonical order.
			e.Src, e.SrcPort = host("10.0.0.1"), acl.PortMatch{Op: acl.PortGt, Lo: 1023}
			e.Dst, e.DstPort = pfx("10.0.1.0/24"), acl.PortMatch{Op: acl.PortEq, Lo: 22}
			e.Count, e.Log = true, true
			e.Refuse = acl.Refuse{Kind: acl.RefuseMessage, Message: "bye"}
			e.Owner = &acl.Owner{User: "alice"}
			e.LoadLimit = &acl.LoadLimit{Hundredths: 99999}
			e.TimeRange = "office"
			e.BlockFor = &acl.BlockFor{Seconds: 30, Flush: true}
			e.Quota = &acl.Quota{N: 10, Unit: acl.KBytes, Per: acl.Minute, PerSource: true}
			e.Rate = &acl.Rate{N: 2, Per: acl.Day, Burst: 3}
			e.Connlimits = []acl.Connlimit{{N: 4, Key: acl.PerPrefix, PrefixLen: 24}}
		}), `seq 10 permit tcp host 10.0.0.1 gt 1023 10.0.1.0/24 eq 22 connlimit 4 per-prefix 24 rate 2 per day burst 3 quota 10 kbytes per minute per-source block-for 30 flush time-range office load-limit 999.99 user alice refuse message "bye" log count`},
	}
	for _, tt := range tests {
		if got := acl.FormatEntry(tt.f, tt.e); got != tt.want {
			t.Errorf("FormatEntry =\n %s\nwant\n %s", got, tt.want)
		}
	}
}

func TestQuoteMessage(t *testing.T) {
	for _, s := range []string{"x", `a "b" c`, `back\slash`, `\"`, `"`, `\`, "  spaced  ", "ünï"} {
		q := acl.QuoteMessage(s)
		got, err := acl.UnquoteMessage(q)
		if err != nil || got != s {
			t.Errorf("UnquoteMessage(QuoteMessage(%q) = %q) = %q, %v", s, q, got, err)
		}
	}
	for _, q := range []string{``, `"`, `x`, `"a`, `a"`, `"a"b"`, `"\"`, `"\n"`, `"a\"`} {
		if got, err := acl.UnquoteMessage(q); err == nil {
			t.Errorf("UnquoteMessage(%s) = %q, want an error", q, got)
		}
	}
}

func TestParseLoadLimit(t *testing.T) {
	good := map[string]int{"1": 100, "1.5": 150, "1.50": 150, "0.01": 1, "999.99": 99999, "12.07": 1207, "007": 700}
	for s, want := range good {
		l, err := acl.ParseLoadLimit(s)
		if err != nil || l.Hundredths != want {
			t.Errorf("ParseLoadLimit(%q) = %v, %v; want %d", s, l, err, want)
		}
		if err == nil && acl.FormatLoadLimit(l) != acl.FormatLoadLimit(acl.LoadLimit{Hundredths: want}) {
			t.Errorf("FormatLoadLimit mismatch for %q", s)
		}
	}
	for _, s := range []string{"", "0", "0.00", "1000", "1.", ".5", "1.234", "-1", "+1", "1e2", "a", "1.x", "1000.00"} {
		if l, err := acl.ParseLoadLimit(s); err == nil {
			t.Errorf("ParseLoadLimit(%q) = %v, want an error", s, l)
		}
	}
}

// TestRandom checks that random configurations are valid, format
// deterministically, clone equal, and over many draws cover every form.
func TestRandom(t *testing.T) {
	want := []string{
		"switch-attributes host-name ", "connlimit existing-sessions reset", "time-range ", " periodic ", " absolute start", " absolute end",
		"ip access-list extended", "ipv6 access-list extended", " remark ",
		" permit ", " deny ", " hard-drop ", " ip any", " ipv6 ", " tcp ", " udp ", " sctp ", " icmp ",
		" any ", " host ", "/", " eq ", " neq ", " lt ", " gt ", " range ",
		" connlimit ", " per-prefix ", " per-destination", " total", " rate ", " burst ", " quota ",
		" bytes ", " kbytes ", " mbytes ", " gbytes ", " per-source", " block-for ", " flush", " time-range ",
		" load-limit ", " user ", " uid ", " refuse drop", " refuse reset", ` refuse message "`, `\"`, `\\`,
		" log", " count", "interface management 0", "interface ethernet ", "interface eth", " ip access-group ",
		" ipv6 access-group ", " in\n", " out\n",
	}
	var all strings.Builder
	for seed := range uint64(400) {
		r := rand.New(rand.NewPCG(seed, 1))
		c := acltest.Random(r)
		if err := acl.Validate(c); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if !reflect.DeepEqual(c.Clone(), c) {
			t.Fatalf("seed %d: Clone differs", seed)
		}
		c2 := acltest.Random(rand.New(rand.NewPCG(seed, 1)))
		if f1, f2 := acl.Format(c), acl.Format(c2); f1 != f2 {
			t.Fatalf("seed %d: Random or Format not deterministic", seed)
		}
		all.WriteString(acl.Format(c))
	}
	out := all.String()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("400 random configs never contain %q", w)
		}
	}
	// A wildcard: an address followed by a non-prefix mask.
	if !strings.Contains(out, " 0.255.") && !strings.Contains(out, ".15.") {
		t.Errorf("no non-contiguous wildcard in random configs")
	}
}
