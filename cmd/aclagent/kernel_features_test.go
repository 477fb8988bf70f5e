package main

// Kernel tests of what the agent does beyond issue 4's acceptance: sessions
// open before a limit, existing-sessions reset, load-limit, block-for, the
// revert timer; through the real binaries, as kernel_test.go.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/netns"
)

// TestKernelExistingSessionsCounted: sessions open before a limit exists
// count against it when it is applied, and again after the table was
// deleted and restored by the agent.
func TestKernelExistingSessionsCounted(t *testing.T) {
	p, ag := slxSetup(t)
	ag.mustShell("configure terminal\nip access-list extended check\nseq 20 permit ip any any\nexit\ninterface management 0\nip access-group check in\nend\n")
	expectN(t, p.Client, ssh, 3, netns.Connected)

	ag.mustShell(fmt.Sprintf("configure terminal\nip access-list extended check\nseq 10 permit tcp host %s host %s eq 22 connlimit 3\nend\n", netns.PairClient4, netns.PairServer4))
	p.Client.Expect(t, "", ssh, netns.Reset)
	show := ag.mustShell("", "-c", "show access-list sessions ip check")
	if !regexp.MustCompile(`(?m)^   10\.0\.0\.1 +3/3  at limit \(3 open before the limit\)$`).MatchString(show) {
		t.Errorf("show access-list sessions does not show 10.0.0.1 at 3/3:\n%s", show)
	}
	show = ag.mustShell("", "-c", "show access-list ip check")
	if !strings.Contains(show, ", 1 at limit)") {
		t.Errorf("show access-list does not count the key at its limit:\n%s", show)
	}

	ag.ns.MustExec(t, "nft", "delete", "table", "inet", "slxsh")
	restored := false
	for i := 0; i < 20 && !restored; i++ { // poll for at most 2 s
		time.Sleep(100 * time.Millisecond)
		restored = strings.Contains(nftTable(ag.ns), `comment "acl=check dir=in seq=10"`)
	}
	if !restored {
		t.Fatalf("table not restored within 2 s:\n%s", ag.log)
	}
	p.Client.Expect(t, "", ssh, netns.Reset)
}

// loadLimitSetup starts an agent that reads the load from a file (at
// 3.00), with check applied on management 0: `seq 10 permit tcp any any
// eq 22 load-limit 1.50` and `seq 20 permit ip any any`.
func loadLimitSetup(t *testing.T) (*netns.Pair, *agentProc, string) {
	t.Helper()
	p := netns.NewPair(t)
	p.Server.Listen(t, ssh)
	ag := newAgent(t, p.Server, "s0")
	loadavg := filepath.Join(ag.dir, "loadavg")
	os.WriteFile(loadavg, []byte("3.00 2.00 1.00 1/100 1\n"), 0o644)
	ag.args = append(ag.args, "--loadavg-file", loadavg)
	ag.start()
	ag.mustShell("configure terminal\nip access-list extended check\nseq 10 permit tcp any any eq 22 load-limit 1.50\nseq 20 permit ip any any\nexit\ninterface management 0\nip access-group check in\nend\n")
	return p, ag, loadavg
}

// TestKernelLoadLimit: the agent arms an entry's load flag while the load
// average is over its load-limit, and disarms it when the load is back.
func TestKernelLoadLimit(t *testing.T) {
	p, ag, loadavg := loadLimitSetup(t)
	p.Client.Expect(t, "", ssh, netns.Reset) // armed right after the apply

	os.WriteFile(loadavg, []byte("0.50 2.00 1.00 1/100 1\n"), 0o644)
	admitted := false
	for i := 0; i < 30 && !admitted; i++ { // the agent follows within ~1 s; allow 3
		time.Sleep(100 * time.Millisecond)
		c, got, _ := p.Client.Dial("", ssh, netns.DialTimeout)
		if c != nil {
			c.Close()
		}
		admitted = got == netns.Connected
	}
	if !admitted {
		t.Fatalf("load back under the limit, still refused:\n%s", ag.log)
	}
	os.WriteFile(loadavg, []byte("1.51 2.00 1.00 1/100 1\n"), 0o644)
	refused := false
	for i := 0; i < 30 && !refused; i++ {
		time.Sleep(100 * time.Millisecond)
		c, got, _ := p.Client.Dial("", ssh, netns.DialTimeout)
		if c != nil {
			c.Close()
		}
		refused = got == netns.Reset
	}
	if !refused {
		t.Fatalf("load over the limit again, still admitted:\n%s", ag.log)
	}
}

// TestKernelRevertTimer: a change that locks the client out, made under
// `configure terminal revert timer 1` and never confirmed, is undone by the
// agent after a minute. (It waits for the real minute.)
func TestKernelRevertTimer(t *testing.T) {
	if testing.Short() {
		t.Skip("waits a minute")
	}
	p, ag := slxSetup(t)
	ag.mustShell("configure terminal\nip access-list extended check\nseq 20 permit ip any any\nexit\ninterface management 0\nip access-group check in\nend\n")
	before := ag.running()
	p.Client.Expect(t, "", ssh, netns.Connected)

	ag.mustShell(fmt.Sprintf("configure terminal revert timer 1\nip access-list extended check\nseq 5 deny ip host %s any\nend\n", netns.PairClient4))
	p.Client.Expect(t, "", ssh, netns.Reset) // locked out
	start := time.Now()
	for ag.running() != before && time.Since(start) < 90*time.Second {
		time.Sleep(time.Second)
	}
	if ag.running() != before {
		t.Fatalf("not reverted after 90 s:\n%s\n%s", ag.running(), ag.log)
	}
	if time.Since(start) < 50*time.Second {
		t.Errorf("reverted after %v, before the minute was up", time.Since(start))
	}
	p.Client.Expect(t, "", ssh, netns.Connected)
}

// TestKernelBlockForFlush: a source that goes over `connlimit 2 block-for 60
// flush` is refused on the whole ACL, its open sessions are reset by the
// agent, and `clear access-list blocked` lets it in again.
func TestKernelBlockForFlush(t *testing.T) {
	p, ag := slxSetup(t)
	web := net.JoinHostPort(netns.PairServer4, "80")
	p.Server.Listen(t, web)
	ag.mustShell(fmt.Sprintf("configure terminal\nip access-list extended check\nseq 10 permit tcp host %s host %s eq 22 connlimit 2 block-for 60 flush\nseq 20 permit ip any any\nexit\ninterface management 0\nip access-group check in\nend\n", netns.PairClient4, netns.PairServer4))
	open := []net.Conn{p.Client.Expect(t, "", ssh, netns.Connected), p.Client.Expect(t, "", ssh, netns.Connected)}
	p.Client.Expect(t, "", ssh, netns.Reset) // over the limit: blocked
	p.Client.Expect(t, "", web, netns.Reset) // blocked on the whole ACL

	// flush: the agent resets the open sessions within a few seconds.
	for _, c := range open {
		reset := false
		for i := 0; i < 50 && !reset; i++ { // at most 5 s
			time.Sleep(100 * time.Millisecond)
			reset = netns.Echo(c) != nil
		}
		if !reset {
			t.Fatalf("open session of the blocked source still works:\n%s", ag.log)
		}
	}

	ag.mustShell("", "-c", "clear access-list blocked ip check source "+netns.PairClient4)
	p.Client.Expect(t, "", web, netns.Connected)
	p.Client.Expect(t, "", ssh, netns.Connected)
}

// TestKernelBlockForFlushPerEntry: block-for and its flush are the entry's.
// Going over seq 10 (block-for without flush) blocks the source on the ACL
// but keeps its sessions, although seq 20 of the same ACL has flush.
func TestKernelBlockForFlushPerEntry(t *testing.T) {
	p, ag := slxSetup(t)
	web := net.JoinHostPort(netns.PairServer4, "80")
	p.Server.Listen(t, web)
	entry := "seq %d permit tcp host " + netns.PairClient4 + " host " + netns.PairServer4 + " eq %d connlimit %d block-for 8%s\n"
	ag.mustShell("configure terminal\nip access-list extended check\n" + fmt.Sprintf(entry, 10, 22, 2, "") +
		fmt.Sprintf(entry, 20, 80, 1, " flush") + "seq 30 permit ip any any\nexit\ninterface management 0\nip access-group check in\nend\n")
	open := []net.Conn{p.Client.Expect(t, "", ssh, netns.Connected), p.Client.Expect(t, "", ssh, netns.Connected)}
	p.Client.Expect(t, "", ssh, netns.Reset) // over seq 10: blocked
	p.Client.Expect(t, "", web, netns.Reset) // on the whole ACL
	if counts := ag.mustShell("", "-c", "show access-list ip check"); !strings.Contains(counts, " blocked by block-for (1 refused)") {
		t.Errorf("show access-list ip check does not count the blocked refusal:\n%s", counts)
	}
	show := ag.mustShell("", "-c", "show access-list blocked ip check")
	if !regexp.MustCompile(`(?m)^ip access-list extended check: 1 blocked\n seq 10 in ` + regexp.QuoteMeta(netns.PairClient4) + ` +[5-8]s left$`).MatchString(show) {
		t.Errorf("show access-list blocked:\n%s", show)
	}
	// The agent looks at the blocked sets every second and flushed within
	// 5 s in TestKernelBlockForFlush: 3 s of working sessions show it did not.
	for range 15 {
		time.Sleep(200 * time.Millisecond)
		for i, c := range open {
			if err := netns.Echo(c); err != nil {
				t.Fatalf("session %d of a source blocked by seq 10 (no flush) was reset: %v\n%s", i+1, err, ag.log)
			}
		}
	}
}

// TestKernelExistingSessionsReset: lowering a limit under `connlimit
// existing-sessions reset` ends the excess sessions, newest first, through
// the agent.
func TestKernelExistingSessionsReset(t *testing.T) {
	p, ag := slxSetup(t)
	entry := fmt.Sprintf("seq 10 permit tcp host %s host %s eq 22 connlimit %%d", netns.PairClient4, netns.PairServer4)
	ag.mustShell("configure terminal\nconnlimit existing-sessions reset\nip access-list extended check\n" + fmt.Sprintf(entry, 5) + "\nseq 20 permit ip any any\nexit\ninterface management 0\nip access-group check in\nend\n")
	var conns []net.Conn
	for range 5 {
		conns = append(conns, p.Client.Expect(t, "", ssh, netns.Connected))
		time.Sleep(20 * time.Millisecond) // distinct ages
	}
	ag.mustShell("configure terminal\nip access-list extended check\nno seq 10\n" + fmt.Sprintf(entry, 2) + "\nend\n")

	for i, c := range conns {
		broken := false
		for try := 0; try < 20 && !broken; try++ { // at most 2 s
			broken = netns.Echo(c) != nil
			if !broken && i < 2 {
				break // the two oldest must keep working: one echo is enough
			}
			time.Sleep(100 * time.Millisecond)
		}
		if want := i >= 2; broken != want {
			t.Errorf("session %d (oldest first): reset %v, want %v", i+1, broken, want)
		}
	}
	p.Client.Expect(t, "", ssh, netns.Reset) // 2 open at limit 2
}

// TestKernelLockoutSurvivesDrift: a source locked out by block-for stays
// locked out when someone flushes the blocked set and when someone deletes
// the whole table: the agent puts the lockout back with the time it has
// left (before, the source got in again at once).
func TestKernelLockoutSurvivesDrift(t *testing.T) {
	p, ag := slxSetup(t)
	web := net.JoinHostPort(netns.PairServer4, "80")
	p.Server.Listen(t, web)
	ag.mustShell(fmt.Sprintf("configure terminal\nip access-list extended check\nseq 10 permit tcp host %s host %s eq 22 connlimit 1 block-for 60\nseq 20 permit ip any any\nexit\ninterface management 0\nip access-group check in\nend\n", netns.PairClient4, netns.PairServer4))
	p.Client.Expect(t, "", ssh, netns.Connected)
	p.Client.Expect(t, "", ssh, netns.Reset) // over the limit: blocked
	p.Client.Expect(t, "", web, netns.Reset) // on the whole ACL
	time.Sleep(1500 * time.Millisecond)      // the agent reads its lockouts every second
	const set = "ip_check_in_10_blocked"
	lockedAgain := func(what string) {
		t.Helper()
		back := false
		for i := 0; i < 40 && !back; i++ { // at most 4 s
			time.Sleep(100 * time.Millisecond)
			out, _ := ag.ns.Exec("nft", "list", "set", "inet", "slxsh", set)
			back = strings.Contains(out, netns.PairClient4)
		}
		if !back {
			t.Fatalf("after %s the lockout was not put back within 4 s:\n%s", what, ag.log)
		}
		p.Client.Expect(t, "", web, netns.Reset)
	}
	ag.ns.MustExec(t, "nft", "flush", "set", "inet", "slxsh", set)
	lockedAgain("a flush of the blocked set")
	ag.ns.MustExec(t, "nft", "delete", "table", "inet", "slxsh")
	lockedAgain("a deleted table")
	show := ag.mustShell("", "-c", "show access-list blocked ip check")
	if !regexp.MustCompile(regexp.QuoteMeta(netns.PairClient4) + `.* ([1-5]\ds|[1-9]s)`).MatchString(show) {
		t.Errorf("show access-list blocked does not list the source with less than a minute left:\n%s", show)
	}
}

// TestKernelLockoutSurvivesResequenceAndLonger: a resequence (the entry's
// blocked set is named by its seq) and a longer block-for on the same
// entry (its set is made again) keep the sources it locked out, for the
// time they had left; before, both freed every blocked source at once.
func TestKernelLockoutSurvivesResequenceAndLonger(t *testing.T) {
	p, ag := slxSetup(t)
	web := net.JoinHostPort(netns.PairServer4, "80")
	p.Server.Listen(t, web)
	entry := fmt.Sprintf("permit tcp host %s host %s eq 22 connlimit 1", netns.PairClient4, netns.PairServer4)
	ag.mustShell(fmt.Sprintf("configure terminal\nip access-list extended check\nseq 10 %s block-for 60\nseq 20 permit ip any any\nexit\ninterface management 0\nip access-group check in\nend\n", entry))
	p.Client.Expect(t, "", ssh, netns.Connected)
	p.Client.Expect(t, "", ssh, netns.Reset) // over the limit: blocked
	p.Client.Expect(t, "", web, netns.Reset)
	time.Sleep(1500 * time.Millisecond) // the agent reads its lockouts every second
	stillBlocked := func(what, seq string) {
		t.Helper()
		show := ag.mustShell("", "-c", "show access-list blocked ip check")
		if !strings.Contains(show, netns.PairClient4) {
			t.Fatalf("after %s the source is not blocked:\n%s", what, show)
		}
		p.Client.Expect(t, "", web, netns.Reset)
		set := "ip_check_in_" + seq + "_blocked"
		if out, _ := ag.ns.Exec("nft", "list", "set", "inet", "slxsh", set); !strings.Contains(out, netns.PairClient4) {
			t.Fatalf("after %s %s does not hold the source:\n%s", what, set, out)
		}
	}
	// packet-tracer names the entry whose lockout refuses, and its rule.
	trace := tracer(ag, " detail")
	expectTrace(t, trace, "seq 10 blocked, key "+netns.PairClient4, "Reason: blocked", `comment "acl=check dir=in seq=10 blocked"`)
	if strings.Contains(trace, "implicit-deny") {
		t.Errorf("a blocked connection's trace shows the implicit deny's rule:\n%s", trace)
	}
	ag.mustShell("", "-c", "resequence access-list ip check 100 10")
	stillBlocked("a resequence", "100")
	time.Sleep(1500 * time.Millisecond)
	ag.mustShell(fmt.Sprintf("configure terminal\nip access-list extended check\nno seq 100\nseq 100 %s block-for 300\nend\n", entry))
	stillBlocked("a longer block-for", "100")
	show := ag.mustShell("", "-c", "show access-list blocked ip check")
	if !regexp.MustCompile(regexp.QuoteMeta(netns.PairClient4) + `.* ([1-5]\ds|[1-9]s)`).MatchString(show) {
		t.Errorf("the carried lockout should keep the time it had left (under a minute):\n%s", show)
	}
}

// TestKernelReplacedEntryCountsFromZero: an entry put at the seq of another
// in one block starts its counts at zero (the kernel's counters are named
// by seq); the entry beside it keeps its counts.
func TestKernelReplacedEntryCountsFromZero(t *testing.T) {
	p, ag := slxSetup(t)
	ag.mustShell(fmt.Sprintf("configure terminal\nip access-list extended check\nseq 10 permit tcp host %s host %s eq 22\nseq 20 permit ip any any\nexit\ninterface management 0\nip access-group check in\nend\n",
		netns.PairClient4, netns.PairServer4))
	web := net.JoinHostPort(netns.PairServer4, "80")
	p.Server.Listen(t, web)
	expectN(t, p.Client, ssh, 2, netns.Connected)
	p.Client.Expect(t, "", web, netns.Connected)
	ag.mustShell(fmt.Sprintf("configure terminal\nip access-list extended check\nno seq 10\nseq 10 permit tcp host %s host %s eq 23\nend\n", netns.PairClient4, netns.PairServer4))
	show := ag.mustShell("", "-c", "show access-list ip check")
	for _, want := range []string{" eq 23 (0 matches, 0 refused)", " seq 20 permit ip any any (1 matches, 0 refused)"} {
		if !strings.Contains(show, want) {
			t.Errorf("show access-list lacks %q:\n%s\n%s", want, show, ag.log)
		}
	}
}
