package nft

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
)

// TestTracedRules: the rules packet-tracer's detail shows, selected by
// comment: the base chain up to the jump for the interface, the entries
// evaluated, the deciding one up to where it decides.
func TestTracedRules(t *testing.T) {
	c := acl.New()
	c.ACLs = []*acl.ACL{{Name: "check", Family: acl.IPv4, Entries: []*acl.Entry{
		{Seq: 10, Action: acl.Permit, Proto: acl.ProtoTCP, Src: acl.NewHostAddr(netip.MustParseAddr("10.0.0.1")),
			DstPort: acl.PortMatch{Op: acl.PortEq, Lo: 22}, Connlimits: []acl.Connlimit{{N: 3}}},
		{Seq: 20, Action: acl.Permit, Proto: acl.ProtoAny},
	}}}
	c.Interfaces = []*acl.Interface{
		{Kind: acl.IfLinux, Name: "eth0", Groups: [2][2]string{{"check", ""}}},
		{Kind: acl.IfLinux, Name: "eth1", Groups: [2][2]string{{"check", ""}}},
	}
	rs, err := Compile(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	comments := func(rules []*Rule) string {
		var cs []string
		for _, r := range rules {
			cs = append(cs, r.Comment)
		}
		return strings.Join(cs, "|")
	}
	for _, tc := range []struct {
		ifname  string
		seqs    []int
		decided int
		stop    TraceStop
		want    string
	}{
		{"eth1", []int{10}, 10, StopAll, "ghost-answered|established|adopted-syn|adopt|pickup|iif=eth0 acl=check|iif=eth1 acl=check|" +
			"acl=check dir=in seq=10|acl=check dir=in seq=10 depth|acl=check dir=in seq=10 connlimit|" +
			"acl=check dir=in seq=10 connlimit-full|acl=check dir=in seq=10 permit"},
		{"eth0", []int{10}, 10, StopConnlimit, "ghost-answered|established|adopted-syn|adopt|pickup|iif=eth0 acl=check|" +
			"acl=check dir=in seq=10|acl=check dir=in seq=10 depth|acl=check dir=in seq=10 connlimit"},
		{"eth0", []int{10, 20}, 20, StopAll, "ghost-answered|established|adopted-syn|adopt|pickup|iif=eth0 acl=check|" +
			"acl=check dir=in seq=10|acl=check dir=in seq=10 depth|acl=check dir=in seq=10 connlimit|" +
			"acl=check dir=in seq=10 connlimit-full|acl=check dir=in seq=10 permit|acl=check dir=in seq=20"},
		{"eth0", []int{10, 20}, 0, StopAll, "ghost-answered|established|adopted-syn|adopt|pickup|iif=eth0 acl=check|" +
			"acl=check dir=in seq=10|acl=check dir=in seq=10 depth|acl=check dir=in seq=10 connlimit|" +
			"acl=check dir=in seq=10 connlimit-full|acl=check dir=in seq=10 permit|acl=check dir=in seq=20|acl=check dir=in implicit-deny"},
	} {
		if got := comments(rs.TracedRules(acl.IPv4, "check", acl.In, tc.ifname, false, tc.seqs, tc.decided, tc.stop)); got != tc.want {
			t.Errorf("%s %v decided %d stop %d:\n got %s\nwant %s", tc.ifname, tc.seqs, tc.decided, tc.stop, got, tc.want)
		}
	}
}
