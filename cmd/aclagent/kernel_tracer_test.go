package main

// Issue 14's acceptance through the real binaries: packet-tracer's counts
// and verdicts against real connections in namespaces.

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/netns"
)

// tracer runs packet-tracer for a connection from the client to port 22 of
// the server arriving on management 0, with extra words appended.
func tracer(ag *agentProc, extra string) string {
	return ag.mustShell("", "-c", fmt.Sprintf("packet-tracer input management 0 tcp %s 34000 %s 22%s",
		netns.PairClient4, netns.PairServer4, extra))
}

func expectTrace(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("packet-tracer output lacks %q:\n%s", w, out)
		}
	}
}

// TestKernelPacketTracer: the SLX example with 2 sessions open, the tracer
// says seq 10, key C 2/3, admit; after the 3rd opens it says refuse
// (connlimit, reset) and the 4th real connection is refused. An ACL that
// is not applied, traced as if bound, counts the 3 sessions already open
// (what its kernel count would start from). A time-range entry outside its
// range is skipped and the implicit deny is named (both in an ACL that is
// not applied: compile refuses time-range entries so far). Last, with no
// entry left that admits C, the tracer says implicit deny and a real
// connection is reset.
func TestKernelPacketTracer(t *testing.T) {
	p, ag := sessionsSetup(t, "keep", fmt.Sprintf(slxEntry, 3))
	var open []net.Conn
	open = append(open, openN(t, p, 2)...)
	expectShown(t, ag, p.Client, 22, "check", "10", 3, map[string]int{netns.PairClient4: 2})

	out := tracer(ag, " detail")
	expectTrace(t, out, "Result: ip access-group check in on management 0 (s0)",
		"Result: seq 10 decides", fmt.Sprintf("connlimit 3 per-source, key %s: 2/3", netns.PairClient4),
		"under limit", "counts: kernel", "Action: admit", "Reason: permit, seq 10",
		`comment "iif=s0 acl=check"`, `comment "acl=check dir=in seq=10 connlimit"`,
		`comment "acl=check dir=in seq=10 permit"`)
	if strings.Contains(out, "seq=20") {
		t.Errorf("detail shows rules of seq 20, which the connection never reaches:\n%s", out)
	}

	open = append(open, p.Client.Expect(t, "", ssh, netns.Connected))
	expectShown(t, ag, p.Client, 22, "check", "10", 3, map[string]int{netns.PairClient4: 3})
	out = tracer(ag, " detail")
	expectTrace(t, out, fmt.Sprintf("key %s: 3/3", netns.PairClient4), "at limit: the next connection is refused",
		"Action: refuse (reset)", "Reason: connlimit, seq 10", `comment "acl=check dir=in seq=10 connlimit"`)
	if strings.Contains(out, "seq=10 permit") {
		t.Errorf("detail of a refused connection shows the permit rule:\n%s", out)
	}
	p.Client.Expect(t, "", ssh, netns.Reset) // the tracer was right

	ag.mustShell("configure terminal\ntime-range past\nabsolute end 00:00 01 Jan 2020\n" +
		"ip access-list extended strict\nseq 10 permit tcp any any eq 80\nseq 20 permit tcp any any eq 22 time-range past\n" +
		"ip access-list extended wide\nseq 10 permit tcp any any eq 22 connlimit 5\nend\n")
	out = tracer(ag, " access-list wide")
	expectTrace(t, out, "(as if applied: it is not)", fmt.Sprintf("key %s: 3/5", netns.PairClient4),
		"Action: admit", "Reason: permit, seq 10")
	out = tracer(ag, " access-list strict detail")
	expectTrace(t, out, "no match (destination port)", "skipped (time-range past is not active)",
		"implicit deny ip any any", "Action: refuse (reset)", "Reason: implicit deny", "not compiled: ")

	ag.mustShell("configure terminal\nip access-list extended check\nno seq 20\nno seq 10\n" +
		"seq 10 permit tcp host 10.9.9.9 any eq 22\nend\n")
	out = tracer(ag, " detail")
	expectTrace(t, out, "no match (source address)", "Reason: implicit deny", "Action: refuse (reset)",
		`comment "acl=check dir=in implicit-deny"`)
	p.Client.Expect(t, "", ssh, netns.Reset)
	for _, c := range open {
		c.Close()
	}
}
