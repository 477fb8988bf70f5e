package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/netns"
)

// writeZone writes a TZif file (version 1) for a zone that is UTC until
// at and UTC+1 from then on: a DST transition a few seconds away.
func writeZone(t *testing.T, at time.Time) string {
	t.Helper()
	var b []byte
	b = append(b, "TZif"...)
	b = append(b, make([]byte, 16)...) // version 1, reserved
	for _, n := range []uint32{0, 0, 0, 1, 2, 8} {
		b = binary.BigEndian.AppendUint32(b, n) // isut, isstd, leap, time, type, char counts
	}
	b = binary.BigEndian.AppendUint32(b, uint32(at.Unix()))
	b = append(b, 1)                           // the transition goes to type 1
	b = append(b, 0, 0, 0, 0, 0, 0)            // type 0: UTC+0, not DST, "AAA"
	b = binary.BigEndian.AppendUint32(b, 3600) // type 1: UTC+1,
	b = append(b, 1, 4)                        // DST, "BBB"
	b = append(b, "AAA\x00BBB\x00"...)
	path := filepath.Join(t.TempDir(), "zone")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestKernelTimeRangeRecompiledAtOffsetChange: the agent's zone (TZ) goes
// from UTC+0 to UTC+1 in 4 s. A periodic range around the local time of
// now covers now before the change and not after it: the agent recompiles
// at the change (not at its 15 s poll), and the limit stops applying.
func TestKernelTimeRangeRecompiledAtOffsetChange(t *testing.T) {
	p := netns.NewPair(t)
	p.Server.Listen(t, ssh)
	change := time.Now().Add(4 * time.Second).Truncate(time.Second)
	ag := newAgent(t, p.Server, "s0")
	ag.env = []string{"TZ=" + writeZone(t, change)}
	ag.start()
	m := time.Now().UTC().Hour()*60 + time.Now().UTC().Minute()
	hhmm := func(d int) string { return fmt.Sprintf("%02d:%02d", ((m+d)%1440+1440)%1440/60, ((m+d)%1440+1440)%60) }
	// Local now is UTC now before the change, UTC+1 after: the range ends
	// 30 minutes from now in local time before, and is over after.
	ag.mustShell(fmt.Sprintf("configure terminal\ntime-range shift\nperiodic daily %s to %s\nexit\n"+
		"ip access-list extended check\nseq 10 permit tcp any any eq 22 connlimit 1 time-range shift\nseq 20 permit ip any any\nexit\n"+
		"interface management 0\nip access-group check in\nend\n", hhmm(-30), hhmm(30)))
	p.Client.Expect(t, "", ssh, netns.Connected)
	p.Client.Expect(t, "", ssh, netns.Reset)
	before := ag.mustShell("", "-c", "show time-range shift")
	if time.Now().After(change) {
		t.Fatal("the offset changed before the limit was checked; the machine is too slow for this test")
	}
	took := p.Client.ConnectedBy(t, "", ssh, change, 2*time.Second) // the limit is gone
	t.Logf("admitted %v after the change", took.Round(time.Millisecond))
	// Before the change the range is active until the change (local time
	// jumps past its end); after it, inactive until it starts again.
	if want := "time-range shift: active, inactive from " + change.In(time.FixedZone("BBB", 3600)).Format("15:04 02 Jan 2006 BBB"); !strings.HasPrefix(before, want) {
		t.Errorf("show time-range before the change: %q, want %q...", before, want)
	}
	if after := ag.mustShell("", "-c", "show time-range"); !strings.HasPrefix(after, "time-range shift: inactive, active from ") {
		t.Errorf("show time-range after the change: %q", after)
	}
	if !strings.Contains(ag.log.String(), "UTC offset changed") {
		t.Errorf("the agent did not log the recompile at the offset change:\n%s", ag.log)
	}
}

// TestKernelTwoLimitsExistingSessions: sessions open before `connlimit 1
// connlimit 5 per-prefix 24` count under both limits at once: the source
// with one session gets no second, the /24 with four open gets one more,
// and `show access-list sessions` lists the keys of each limit.
func TestKernelTwoLimitsExistingSessions(t *testing.T) {
	p := netns.NewPair(t)
	p.Server.AddAddr(t, "s0", "1.2.255.254/16")
	for i := 1; i <= 6; i++ {
		p.Client.AddAddr(t, "c0", fmt.Sprintf("1.2.3.%d/16", i))
	}
	p.Client.AddAddr(t, "c0", "1.2.4.1/16")
	smtp := "1.2.255.254:25"
	p.Server.Listen(t, smtp)
	ag := newAgent(t, p.Server, "s0")
	ag.start()
	ag.mustShell("configure terminal\nip access-list extended tcpserver\nseq 10 permit tcp 1.2.0.0/16 any eq 25\nseq 20 permit ip any any\nexit\ninterface management 0\nip access-group tcpserver in\nend\n")
	for i := 1; i <= 4; i++ {
		p.Client.Expect(t, fmt.Sprintf("1.2.3.%d", i), smtp, netns.Connected)
	}
	ag.mustShell("configure terminal\nip access-list extended tcpserver\nno seq 10\nseq 10 permit tcp 1.2.0.0/16 any eq 25 connlimit 1 connlimit 5 per-prefix 24\nend\n")
	p.Client.Expect(t, "1.2.3.1", smtp, netns.Reset)     // its old session fills connlimit 1
	p.Client.Expect(t, "1.2.3.5", smtp, netns.Connected) // the fifth of 1.2.3.0/24
	p.Client.Expect(t, "1.2.3.6", smtp, netns.Reset)     // the sixth
	p.Client.Expect(t, "1.2.4.1", smtp, netns.Connected)
	counts := ag.mustShell("", "-c", "show access-list ip tcpserver")
	if !regexp.MustCompile(`seq 10 .* \(\d+ matches, 2 refused, \d+ at limit\) refused by connlimit 2\n`).MatchString(counts) ||
		!strings.Contains(counts, " implicit deny (0 refused)") {
		t.Errorf("show access-list ip tcpserver does not split seq 10's 2 refusals by reason:\n%s", counts)
	}
	show := ag.mustShell("", "-c", "show access-list sessions ip tcpserver")
	for _, want := range []string{"1.2.3.1 (per-source)", "1.2.3.0/24 (per-prefix 24)", "1.2.4.0/24 (per-prefix 24)"} {
		if !strings.Contains(show, want) {
			t.Errorf("show access-list sessions lacks %q:\n%s", want, show)
		}
	}
	if !regexp.MustCompile(`1\.2\.3\.0/24 \(per-prefix 24\) +5/5  at limit \(4 open before the limit\)`).MatchString(show) {
		t.Errorf("the /24 is not shown with 5 of 5, 4 old:\n%s", show)
	}
}

// TestKernelShowWindows: `show access-list sessions` lists the keys of
// rate and quota windows with the time until each resets, and for quota
// windows the bytes used of the quota (read from the kernel's elements).
func TestKernelShowWindows(t *testing.T) {
	p, ag := slxSetup(t)
	web := net.JoinHostPort(netns.PairServer4, "80")
	p.Server.Listen(t, web)
	ag.mustShell("configure terminal\nip access-list extended check\nseq 10 permit tcp any any eq 22 rate 2 per minute\n" +
		"seq 20 permit tcp any any eq 80 quota 100 kbytes per minute total\nseq 30 permit ip any any\nexit\n" +
		"interface management 0\nip access-group check in\nend\n")
	p.Client.Expect(t, "", ssh, netns.Connected)
	p.Client.Expect(t, "", web, netns.Connected)
	show := ag.mustShell("", "-c", "show access-list sessions ip check")
	for _, re := range []string{
		`(?m)^   ` + regexp.QuoteMeta(netns.PairClient4) + ` \(rate window\) +resets in (5\ds|1m0s)$`,
		`(?m)^   total \(quota window\) +resets in (5\ds|1m0s), used [1-9]\d* of 102400 bytes$`,
	} {
		if !regexp.MustCompile(re).MatchString(show) {
			t.Errorf("show access-list sessions does not match %s:\n%s", re, show)
		}
	}
	// packet-tracer reads the same window: used, under the quota, admit.
	trace := ag.mustShell("", "-c", "packet-tracer input management 0 tcp "+netns.PairClient4+" 40000 "+netns.PairServer4+" 80")
	if !regexp.MustCompile(`(?m)^ seq 20 quota, key total\n   used [1-9]\d* of 102400 bytes this minute$`).MatchString(trace) || !strings.Contains(trace, "Action: admit") {
		t.Errorf("packet-tracer does not show the quota's window:\n%s", trace)
	}
	// A key over its quota is at its limit in show access-list.
	small := net.JoinHostPort(netns.PairServer4, "81")
	p.Server.Listen(t, small)
	ag.mustShell("configure terminal\nip access-list extended check\nseq 25 permit tcp any any eq 81 quota 200 bytes per minute\nend\n")
	c := p.Client.Expect(t, "", small, netns.Connected)
	defer c.Close()
	for range 3 {
		if err := netns.Echo(c); err != nil {
			t.Fatal(err)
		}
	}
	p.Client.Expect(t, "", small, netns.Reset)
	if show := ag.mustShell("", "-c", "show access-list ip check"); !regexp.MustCompile(`(?m)^ +seq 25 .*\(2 matches, 1 refused, 1 at limit\)`).MatchString(show) {
		t.Errorf("the key over its quota is not at its limit:\n%s", show)
	}
}

// fixedZone writes a TZif file (version 1) for a zone offset seconds
// east of UTC, with no transitions.
func fixedZone(t *testing.T, offset int) string {
	t.Helper()
	var b []byte
	b = append(b, "TZif"...)
	b = append(b, make([]byte, 16)...)
	for _, n := range []uint32{0, 0, 0, 0, 1, 4} {
		b = binary.BigEndian.AppendUint32(b, n)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(int32(offset)))
	b = append(b, 0, 0)
	b = append(b, "FIX\x00"...)
	path := filepath.Join(t.TempDir(), "zone")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// switchingRange returns `time-range soon` with an absolute clause (start
// or end) at a whole second about in from now, the agent's TZ for it (a
// zone that makes that second a whole local minute) and the instant.
func switchingRange(t *testing.T, clause string, in time.Duration) (text, tz string, at time.Time) {
	at = time.Now().Add(in).Truncate(time.Second)
	offset := -int(at.Unix() % 60)
	l := at.In(time.FixedZone("FIX", offset))
	return fmt.Sprintf("time-range soon\nabsolute %s %02d:%02d %02d %s %d\nexit\n", clause, l.Hour(), l.Minute(), l.Day(), l.Month().String()[:3], l.Year()),
		"TZ=" + fixedZone(t, offset), at
}

// rangedLimits puts seq 5 (connlimit 3 while soon is active) before seq
// 10 (connlimit 4) on port 22, both for every source.
const rangedLimits = "ip access-list extended check\nseq 5 permit tcp any any eq 22 connlimit 3 time-range soon\n" +
	"seq 10 permit tcp any any eq 22 connlimit 4\nseq 20 permit ip any any\nexit\ninterface management 0\nip access-group check in\nend\n"

// rangedSetup starts an agent whose zone makes soon switch (clause) at a
// whole second about in from now, with rangedLimits applied; it returns
// the instant.
func rangedSetup(t *testing.T, clause string, in time.Duration) (*netns.Pair, *agentProc, time.Time) {
	t.Helper()
	p := netns.NewPair(t)
	p.Server.Listen(t, ssh)
	ranged, tz, at := switchingRange(t, clause, in)
	ag := newAgent(t, p.Server, "s0")
	ag.env = []string{tz}
	ag.start()
	ag.mustShell("configure terminal\n" + ranged + rangedLimits)
	return p, ag, at
}

// waitPast sleeps until at has passed by after, failing when the machine
// was too slow to set things up before at.
func waitPast(t *testing.T, at time.Time, after time.Duration) {
	t.Helper()
	if time.Now().After(at) {
		t.Fatal("the time range switched before the test was ready; the machine is too slow for this test")
	}
	time.Sleep(time.Until(at) + after)
}

// TestKernelTimeRangeEndExact: C holds 3 sessions that seq 5 admitted
// while soon was active. When soon ends, seq 10 (connlimit 4) decides
// C's connections, and its 3 sessions with them: exactly one more is
// admitted (it was 4 more, 7 open, before the agent renewed the limits
// across the switch), and `show access-list sessions` puts all 4 under
// seq 10.
func TestKernelTimeRangeEndExact(t *testing.T) {
	p, ag, end := rangedSetup(t, "end", 5*time.Second)
	openN(t, p, 3)
	p.Client.Expect(t, "", ssh, netns.Reset) // seq 5's limit
	waitPast(t, end, time.Second)
	if n := admitted(t, p.Client, 4); n != 1 {
		t.Errorf("%d admitted after the range ended, want 1 (seq 10: connlimit 4 with 3 open)\n%s", n, ag.log)
	}
	show := ag.mustShell("", "-c", "show access-list sessions ip check")
	if !regexp.MustCompile(`(?s)seq 10 .*` + regexp.QuoteMeta(netns.PairClient4) + ` +4/4  at limit \(3 open before the limit\)`).MatchString(show) {
		t.Errorf("show access-list sessions does not put C's 4 sessions under seq 10:\n%s", show)
	}
	if !strings.Contains(ag.log.String(), "time ranges switched") {
		t.Errorf("the agent did not log the switch:\n%s", ag.log)
	}
}

// TestKernelTimeRangeStartExactAcrossRestart: C holds 4 sessions under
// seq 10 while soon is not active yet. The agent is killed, soon starts,
// the agent starts again: seq 5 (connlimit 3) now decides C's sessions,
// 4 of them, and admits none (it admitted 3 before); after C closes two,
// exactly one more.
func TestKernelTimeRangeStartExactAcrossRestart(t *testing.T) {
	p, ag, start := rangedSetup(t, "start", 6*time.Second)
	open := openN(t, p, 4)
	p.Client.Expect(t, "", ssh, netns.Reset) // seq 10's limit
	ag.kill9()
	waitPast(t, start, 500*time.Millisecond)
	ag.start()
	if n := admitted(t, p.Client, 3); n != 0 {
		t.Errorf("%d admitted after the range started, want 0 (seq 5: connlimit 3 with 4 open)\n%s", n, ag.log)
	}
	open[0].Close()
	open[1].Close()
	time.Sleep(2500 * time.Millisecond) // budget comes back at the next refresh
	if n := admitted(t, p.Client, 3); n != 1 {
		t.Errorf("%d admitted with 2 open under connlimit 3, want 1\n%s", n, ag.log)
	}
}

// TestKernelResequenceKeepsWindows: a resequence keeps the rate and quota
// windows of the entries it moves (and the buckets of total and per-source
// token buckets): a source over its quota or its rate stays refused, and
// one with a bucket half spent gets only the rest.
func TestKernelResequenceKeepsWindows(t *testing.T) {
	p, ag := slxSetup(t)
	addr := func(port int) string { return net.JoinHostPort(netns.PairServer4, strconv.Itoa(port)) }
	for _, port := range []int{81, 82, 83} {
		p.Server.Listen(t, addr(port))
	}
	ag.mustShell("configure terminal\nip access-list extended check\n" +
		"seq 16 permit tcp any any eq 81 quota 200 bytes per minute\n" +
		"seq 17 permit tcp any any eq 82 rate 1 per minute\n" +
		"seq 18 permit tcp any any eq 83 rate 1 per hour burst 2 total\n" +
		"seq 19 permit ip any any\nexit\ninterface management 0\nip access-group check in\nend\n")
	c := p.Client.Expect(t, "", addr(81), netns.Connected)
	for range 3 {
		if err := netns.Echo(c); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	p.Client.Expect(t, "", addr(81), netns.Reset) // over its quota
	p.Client.Expect(t, "", addr(82), netns.Connected)
	p.Client.Expect(t, "", addr(82), netns.Reset) // over its rate
	p.Client.Expect(t, "", addr(83), netns.Connected)
	ag.mustShell("configure terminal\nip access-list extended check\nresequence 10 10\nend\n")
	if run := ag.running(); !strings.Contains(run, "seq 10 permit tcp any any eq 81 quota") || !strings.Contains(run, "seq 30 permit tcp any any eq 83") {
		t.Fatalf("not resequenced:\n%s", run)
	}
	p.Client.Expect(t, "", addr(81), netns.Reset)
	p.Client.Expect(t, "", addr(82), netns.Reset)
	p.Client.Expect(t, "", addr(83), netns.Connected) // the bucket's second token
	p.Client.Expect(t, "", addr(83), netns.Reset)
	show := ag.mustShell("", "-c", "show access-list sessions ip check")
	if !regexp.MustCompile(`(?m)^   total \(quota window\) +resets in .*over quota$`).MatchString(show) {
		t.Errorf("the moved quota window is not shown over quota:\n%s", show)
	}
}

// TestKernelResetSparesInactiveRangedLimit: under `connlimit
// existing-sessions reset`, a limited entry whose time range is not
// active now ends no session (the kernel does not enforce it yet): the 3
// sessions under `permit ip any any` go on when `connlimit 1 time-range
// later` is added for them.
func TestKernelResetSparesInactiveRangedLimit(t *testing.T) {
	p, ag := sessionsSetup(t, "reset", "")
	var open []net.Conn
	for range 3 {
		open = append(open, p.Client.Expect(t, "", ssh, netns.Connected))
	}
	start := (time.Now().Hour() + 2) % 24 // never now: the range is half an hour, 1.5 h or more away
	ag.mustShell(fmt.Sprintf("configure terminal\ntime-range later\nperiodic daily %02d:00 to %02d:30\nexit\n"+
		"ip access-list extended check\nseq 10 permit tcp any any eq 22 connlimit 1 time-range later\nend\n", start, start))
	time.Sleep(500 * time.Millisecond)
	for i, c := range open {
		if err := netns.Echo(c); err != nil {
			t.Errorf("session %d after an inactive ranged limit was added under reset: %v, want it kept", i+1, err)
		}
	}
	p.Client.Expect(t, "", ssh, netns.Connected) // not enforced now
}
