package main

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

// TestKernelLogReachesAgent: inside a namespace (where the kernel log is
// silent), a log entry's refusal reaches the agent through NFLOG: one
// structured line with its reason, and a line in show logging (pipes
// work); a permit match is logged as permitted.
func TestKernelLogReachesAgent(t *testing.T) {
	p := netns.NewPair(t)
	addr := net.JoinHostPort(netns.PairServer4, "25")
	p.Server.Listen(t, addr)
	ag := newAgent(t, p.Server, "s0", "--metrics", "127.0.0.1:9469")
	ag.start()
	ag.mustShell(mailConfig(netns.PairServer4, "connlimit 1 log"))
	c := p.Client.Expect(t, "", addr, netns.Connected)
	defer c.Close()
	p.Client.Expect(t, "", addr, netns.Reset)

	refused := regexp.MustCompile(`%SEC-6-IPACCESSLOGP: list mail in seq 10 denied \(connlimit\) tcp ` +
		regexp.QuoteMeta(netns.PairClient4) + `\(\d+\) -> ` + regexp.QuoteMeta(netns.PairServer4) + `\(25\)`)
	permitted := regexp.MustCompile(`list mail in seq 10 permitted \(permit\) tcp `)
	var shown string
	for range 30 { // events arrive within the agent's 50 ms batch; allow 3 s
		shown = ag.mustShell("", "-c", "show logging")
		if refused.MatchString(shown) && permitted.MatchString(shown) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !refused.MatchString(shown) || !permitted.MatchString(shown) {
		t.Fatalf("show logging has no connlimit refusal and permit of seq 10:\n%s\nagent log:\n%s", shown, ag.log)
	}
	if i, j := strings.Index(shown, "permitted"), strings.Index(shown, "denied"); i > j {
		t.Errorf("show logging is not oldest first (the permit came first):\n%s", shown)
	}
	piped := ag.mustShell("", "-c", "show logging | include denied")
	if strings.Contains(piped, "permitted") || !refused.MatchString(piped) {
		t.Errorf("show logging | include denied:\n%s", piped)
	}
	// A flood of refusals reaches the agent only at the kernel's log rate:
	// at most the burst plus the rate for the time the flood took.
	start := time.Now()
	for range 200 {
		p.Client.Expect(t, "", addr, netns.Reset)
	}
	took := time.Since(start)
	time.Sleep(300 * time.Millisecond) // the agent's batches (50 ms) arrive
	n := strings.Count(ag.mustShell("", "-c", "show logging | include denied"), "denied (connlimit)")
	if most := 1 + nft.LogBurst + int(took.Seconds()*nft.LogRate) + 1; n > most || n < nft.LogBurst {
		t.Errorf("201 refusals in %v logged %d times, want %d to %d (rate-limited in the kernel)\n%s", took, n, nft.LogBurst, most, ag.log)
	}
	body := scrapeMetrics(t, ag, "127.0.0.1:9469")
	if want := fmt.Sprintf("slxsh_acl_logged_refusals_total{reason=\"connlimit\"} %d\n", n); !strings.Contains(string(body), want) {
		t.Errorf("metrics lack %q:\n%s", want, body)
	}
	line := regexp.MustCompile(`msg="acl log" acl=mail family=ip dir=in seq=10 verdict=denied reason=connlimit proto=tcp src=` +
		regexp.QuoteMeta(netns.PairClient4) + ` sport=\d+ dst=` + regexp.QuoteMeta(netns.PairServer4) + ` dport=25`)
	if !line.MatchString(ag.log.String()) {
		t.Errorf("agent log has no structured line for the refusal:\n%s", ag.log)
	}
}

// TestKernelLogLockout: a source locked out by a logged entry with
// block-for is logged on each refusal of the lockout ("blocked"), on the
// entry's own port and on another, and dropped as the entry refuses.
func TestKernelLogLockout(t *testing.T) {
	p := netns.NewPair(t)
	addr := net.JoinHostPort(netns.PairServer4, "25")
	other := net.JoinHostPort(netns.PairServer4, "26")
	p.Server.Listen(t, addr)
	p.Server.Listen(t, other)
	ag := newAgent(t, p.Server, "s0")
	ag.start()
	ag.mustShell(mailConfig(netns.PairServer4, "connlimit 1 block-for 60 refuse drop log"))
	c := p.Client.Expect(t, "", addr, netns.Connected)
	defer c.Close()
	p.Client.Expect(t, "", addr, netns.TimedOut) // over: locked out
	p.Client.Expect(t, "", other, netns.TimedOut)
	blocked := regexp.MustCompile(`list mail in denied \(blocked\) tcp ` + regexp.QuoteMeta(netns.PairClient4) +
		`\(\d+\) -> ` + regexp.QuoteMeta(netns.PairServer4) + `\(26\)`)
	var shown string
	for range 30 {
		shown = ag.mustShell("", "-c", "show logging")
		if blocked.MatchString(shown) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("show logging has no refusal of the locked-out source on port 26:\n%s\nagent log:\n%s", shown, ag.log)
}
