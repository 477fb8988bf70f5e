package main

// Issue 13's views through the real binaries at 100k conntrack entries:
// `show access-list ip NAME`, `show access-list sessions ip NAME` and a
// metrics scrape, each against `conntrack -L` of the same table, measured
// alternating in one run, and the agent's peak RSS (VmHWM).
//
//	go test -run '^$' -bench KernelViews -benchtime=5x ./cmd/aclagent/
//
// (scripts/bench-views.sh). BENCHMARKS.md has the figures.

import (
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	ct "github.com/ti-mo/conntrack"
	"golang.org/x/sys/unix"

	"github.com/slxsh/slxsh/internal/netns"
)

// viewFlows is how many conntrack entries the views benchmark creates:
// viewFlows/4 sources with 4 sessions each.
const viewFlows = 100_000

// fillFlows creates count established TCP entries in ns through
// ctnetlink: sources 10.x.y.z (count/4 of them, 4 sessions each) to
// 10.0.0.2:22, as the issue-5 benchmark does.
func fillFlows(b *testing.B, ns *netns.NS, count int) {
	b.Helper()
	c, err := ct.Dial(&netlink.Config{NetNS: ns.Fd()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	dst := netip.MustParseAddr("10.0.0.2")
	for i := range count {
		src := netip.AddrFrom4([4]byte{10, byte(1 + i>>18), byte(i >> 10), byte(i >> 2)})
		f := ct.NewFlow(unix.IPPROTO_TCP, 0, src, dst, uint16(10000+i%4), 22, 600, 0)
		// Why no status bits: ctnetlink refuses ASSURED/SEEN_REPLY on
		// create with EBUSY; the TCP state alone makes an open session.
		f.ProtoInfo.TCP = &ct.ProtoInfoTCP{State: 3} // ESTABLISHED
		if err := c.Create(f); err != nil {
			b.Fatalf("create flow %d: %v", i, err)
		}
	}
}

const viewsConfig = `ip access-list extended check
 seq 10 permit tcp any any eq 22 connlimit 10
 seq 20 permit ip any any
!
interface eth1
 ip access-group check in
!
`

// BenchmarkKernelViews measures the views over 100k flows; every round
// runs each view once and `conntrack -L` once, in turn.
func BenchmarkKernelViews(b *testing.B) {
	ns := netns.New(b)
	// The flows' sources route through eth1, where the ACL is applied (the
	// agent's route lookups find them there).
	ns.MustExec(b, "ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p")
	ns.MustExec(b, "ip", "link", "set", "eth1", "up")
	ns.MustExec(b, "ip", "link", "set", "eth1p", "up")
	ns.MustExec(b, "ip", "addr", "add", "10.0.0.2/8", "dev", "eth1")
	fillStart := time.Now()
	fillFlows(b, ns, viewFlows)
	b.Logf("filled %d flows in %v", viewFlows, time.Since(fillStart).Round(time.Millisecond))

	ag := newAgent(b, ns, "lo", "--metrics", "127.0.0.1:9470")
	if g := os.Getenv("VIEWS_GODEBUG"); g != "" {
		ag.env = []string{"GODEBUG=" + g}
	}
	if err := os.WriteFile(ag.startup, []byte(viewsConfig), 0o600); err != nil {
		b.Fatal(err)
	}
	startAt := time.Now()
	ag.start()
	b.Logf("agent ready in %v", time.Since(startAt).Round(time.Millisecond))
	pid := agentPid(b, ag)
	b.Logf("agent peak RSS after start: %d MiB", procStatus(b, pid, "VmHWM")/1024)

	// The views must say what the table holds before they are timed.
	if out := ag.mustShell("", "-c", "show access-list sessions ip check"); strings.Count(out, "4/10") != viewFlows/4 {
		b.Fatalf("show access-list sessions: want %d keys with 4/10:\n%.2000s", viewFlows/4, out)
	}
	if m := scrapeMetrics(b, ag, "127.0.0.1:9470"); !strings.Contains(m, `slxsh_acl_sessions{acl="check",family="ip",seq="10"} 100000`) {
		b.Fatalf("metrics do not count 100000 sessions under seq 10:\n%.3000s", m)
	}

	timeIt := func(f func()) time.Duration {
		t0 := time.Now()
		f()
		return time.Since(t0)
	}
	b.Logf("agent peak RSS after the first views: %d MiB", procStatus(b, pid, "VmHWM")/1024)
	var showIP, showSess, scrape, listCT, version time.Duration
	for b.Loop() {
		version += timeIt(func() { ag.mustShell("", "-c", "show version") })
		showIP += timeIt(func() { ag.mustShell("", "-c", "show access-list ip check") })
		listCT += timeIt(func() {
			if out, err := exec.Command("sh", "-c", "ip netns exec "+ns.Name+" conntrack -L >/dev/null 2>&1").CombinedOutput(); err != nil {
				b.Fatalf("conntrack -L: %v: %s", err, out)
			}
		})
		showSess += timeIt(func() { ag.mustShell("", "-c", "show access-list sessions ip check") })
		scrape += timeIt(func() { scrapeMetrics(b, ag, "127.0.0.1:9470") })
	}
	n := float64(b.N)
	if os.Getenv("VIEWS_LOG") != "" {
		os.WriteFile(os.Getenv("VIEWS_LOG"), []byte(ag.log.String()), 0o644)
	}
	b.ReportMetric(version.Seconds()/n, "show-version-s")
	b.ReportMetric(showIP.Seconds()/n, "show-ip-s")
	b.ReportMetric(showSess.Seconds()/n, "show-sessions-s")
	b.ReportMetric(scrape.Seconds()/n, "scrape-s")
	b.ReportMetric(listCT.Seconds()/n, "conntrack-L-s")
	b.ReportMetric(showSess.Seconds()/listCT.Seconds(), "sessions/conntrack-L")
	b.ReportMetric(showIP.Seconds()/listCT.Seconds(), "show-ip/conntrack-L")
	b.ReportMetric(scrape.Seconds()/listCT.Seconds(), "scrape/conntrack-L")
	b.ReportMetric(float64(procStatus(b, pid, "VmHWM"))/1024, "agent-peak-MiB")
}
