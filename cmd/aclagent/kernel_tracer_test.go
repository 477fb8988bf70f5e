package main

// Issue 14's acceptance through the real binaries: packet-tracer's counts
// and verdicts against real connections in namespaces.

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"

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
// not applied: compile refuses time-range entries so far, and detail then
// says the as-if binding does not compile). Last, with no
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
		"implicit deny ip any any", "Action: refuse (reset)", "Reason: implicit deny", "Type: NFTABLES")

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

// TestKernelTracerSample is the kernel half of the tracer's property test
// (internal/conntrack TestTracerAgreesWithSimulator): for a sample of
// random ACLs with limits applied on management 0, before every real
// connection attempt from the client packet-tracer's verdict is the
// kernel's outcome (admit: connected, reset: reset, drop: timed out).
func TestKernelTracerSample(t *testing.T) {
	p, ag := slxSetup(t)
	r := rand.New(rand.NewPCG(14, 1))
	srcs := []string{"any", "host " + netns.PairClient4, "host 10.9.9.9"}
	limits := []string{"", "", " connlimit 0", " connlimit 1", " connlimit 2 refuse drop", " connlimit 3 total", " connlimit 2 per-prefix 24"}
	seen := map[netns.Outcome]int{}
	for round := range 10 {
		var open []net.Conn
		cfg := "configure terminal\ninterface management 0\nno ip access-group check in\nexit\nno ip access-list extended check\nip access-list extended check\n"
		if round == 0 {
			cfg = "configure terminal\nip access-list extended check\n"
		}
		for i := range 1 + r.IntN(3) {
			action := []string{"permit", "permit", "permit", "deny", "hard-drop"}[r.IntN(5)]
			e := fmt.Sprintf("seq %d %s tcp %s host %s eq 22", 10*(i+1), action, srcs[r.IntN(len(srcs))], netns.PairServer4)
			if action != "hard-drop" {
				e += limits[r.IntN(len(limits))]
			}
			cfg += e + "\n"
		}
		if r.IntN(2) == 0 {
			cfg += "seq 100 permit ip any any\n"
		}
		cfg += "exit\ninterface management 0\nip access-group check in\nend\n"
		ag.mustShell(cfg)
		for i := range 5 {
			out := ag.mustShell("", "-c", fmt.Sprintf("packet-tracer input management 0 tcp %s 34000 %s 22 | include Action",
				netns.PairClient4, netns.PairServer4))
			want := map[string]netns.Outcome{"Action: admit": netns.Connected, "Action: refuse (reset)": netns.Reset,
				"Action: refuse (drop)": netns.TimedOut}[strings.TrimSpace(out)]
			if strings.TrimSpace(out) != "Action: admit" && want == netns.Connected {
				t.Fatalf("round %d: unexpected verdict %q", round, out)
			}
			c, got, err := p.Client.Dial("", ssh, netns.DialTimeout)
			if got != want {
				t.Fatalf("round %d attempt %d: tracer says %q, the kernel: %v (%v)\n%s\n%s", round, i, strings.TrimSpace(out), got, err,
					ag.running(), ag.mustShell("", "-c", "show access-list sessions ip check"))
			}
			seen[got]++
			if got == netns.Connected {
				open = append(open, c)
			}
		}
		for _, c := range open {
			c.Close()
		}
	}
	t.Logf("outcomes: %v", seen)
	if seen[netns.Connected] < 5 || seen[netns.Reset] < 5 || seen[netns.TimedOut] < 1 {
		t.Errorf("the sample lacks a kind of outcome: %v", seen)
	}
}

// TestKernelTracerLoadLimit: packet-tracer reads an entry's load-limit
// flag from the kernel: armed (load 3.00 over 1.50) it says refuse
// (load-limit, reset) and a real connection is reset; once the agent has
// disarmed it (load 0.50) it says admit and a real connection gets in.
func TestKernelTracerLoadLimit(t *testing.T) {
	p, ag, loadavg := loadLimitSetup(t)
	expectTrace(t, tracer(ag, ""), "seq 10 load-limit", "1-minute load 3.00, limit 1.50; kernel flag armed: refusing",
		"Action: refuse (reset)", "Reason: load-limit, seq 10")
	p.Client.Expect(t, "", ssh, netns.Reset)

	os.WriteFile(loadavg, []byte("0.50 2.00 1.00 1/100 1\n"), 0o644)
	var out string
	for range 30 { // the agent disarms within ~1 s; allow 3
		time.Sleep(100 * time.Millisecond)
		if out = tracer(ag, ""); strings.Contains(out, "kernel flag not armed") {
			break
		}
	}
	expectTrace(t, out, "1-minute load 0.50, limit 1.50; kernel flag not armed", "Action: admit", "Reason: permit, seq 10")
	p.Client.Expect(t, "", ssh, netns.Connected).Close()
}
