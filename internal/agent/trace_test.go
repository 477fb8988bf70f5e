package agent

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/conntrack"
)

// gatedTracker is a fakeTracker that tells which limits are still gated.
type gatedTracker struct {
	*fakeTracker
	gated []conntrack.EntryID
}

func (g gatedTracker) Gated() []conntrack.EntryID { return g.gated }

// TestPacketTrace: the agent's trace takes its counts from the session
// side for the ACL's direction only, refuses at the kernel's at-limit,
// under a gate still closed and for a blocked source, evaluates an ACL as
// if bound with a configuration in which it is bound, and with detail
// lists the compiled rules.
func TestPacketTrace(t *testing.T) {
	ta, tr := newTrackedAgent(t)
	ta.mustConfigure(t, slxACL, slxBind)
	slx := cli.TraceArgs{Kind: acl.IfManagement, Name: "0", Dir: acl.In, Packet: acl.Packet{Proto: acl.ProtoTCP,
		Src: netip.MustParseAddr("10.24.12.107"), Dst: netip.MustParseAddr("10.24.12.129"), SPort: 34000, DPort: 22}}
	key := func(dir acl.Direction, n int, at bool) conntrack.KeyCount {
		return conntrack.KeyCount{ACL: "check", Dir: dir, Seq: 10, Key: "10.24.12.107", Sessions: n, Limit: 3, AtLimit: at}
	}
	trace := func(a cli.TraceArgs) cli.PacketTrace {
		t.Helper()
		pt, err := ta.PacketTrace(a)
		if err != nil {
			t.Fatal(err)
		}
		return pt
	}
	tr.keys = []conntrack.KeyCount{key(acl.In, 2, false), key(acl.Out, 3, true)}
	pt := trace(slx)
	if l := pt.Trace.Limits; !pt.Trace.Admit || pt.Trace.Seq != 10 || len(l) != 1 || l[0].Sessions != 2 || l[0].Limit != 3 {
		t.Errorf("2 open in, 3 out: %+v", pt.Trace)
	}
	if pt.Linux != "lo" || pt.Counts != "kernel (as show access-list sessions)" {
		t.Errorf("interface %q, counts %q", pt.Linux, pt.Counts)
	}
	tr.keys = []conntrack.KeyCount{key(acl.In, 3, true)}
	if pt := trace(slx); pt.Trace.Admit || pt.Trace.Reason != "connlimit" || pt.Trace.Refusal != "reset" {
		t.Errorf("at limit: %+v", pt.Trace)
	}
	tr.keys = nil
	ta.opts.Sessions = gatedTracker{tr, []conntrack.EntryID{{ACL: "check", Family: acl.IPv4, Dir: acl.In, Seq: 10}}}
	if pt := trace(slx); pt.Trace.Admit || pt.Trace.Reason != "connlimit" {
		t.Errorf("gated: %+v", pt.Trace)
	}
	ta.opts.Sessions = tr

	// As if bound out on eth1: the ACL is unchanged, the trace is out.
	asIf := slx
	asIf.Kind, asIf.Name, asIf.Dir, asIf.ACL, asIf.Detail = acl.IfLinux, "eth1", acl.Out, "check", true
	tr.keys = []conntrack.KeyCount{key(acl.In, 3, true), key(acl.Out, 1, false)}
	pt = trace(asIf)
	if !pt.AsIfBound || !pt.Trace.Admit || pt.Trace.Limits[0].Sessions != 1 {
		t.Errorf("as if bound out: %+v", pt)
	}
	if rules := strings.Join(pt.Rules, "\n"); !strings.Contains(rules, `comment "oif=eth1 acl=check"`) ||
		!strings.Contains(rules, `comment "acl=check dir=out seq=10 permit"`) {
		t.Errorf("detail of the as-if binding:\n%s", rules)
	}
	if strings.Contains(ta.RunningText(), "eth1") {
		t.Error("tracing as if bound changed the running config")
	}

	// Errors.
	bad := slx
	bad.ACL = "nosuch"
	if _, err := ta.PacketTrace(bad); err == nil || !strings.HasPrefix(err.Error(), "% Error: ip access-list \"nosuch\" does not exist") {
		t.Errorf("unknown ACL: %v", err)
	}
	bad = slx
	bad.Packet.Dst = netip.MustParseAddr("2001:db8::1")
	if _, err := ta.PacketTrace(bad); err == nil || !strings.HasPrefix(err.Error(), "% Error: source") {
		t.Errorf("mixed families: %v", err)
	}
}
