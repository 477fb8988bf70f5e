package conntrack

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	ct "github.com/ti-mo/conntrack"
	"golang.org/x/sys/unix"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/netns"
)

// benchFlows is how many conntrack entries the sessions benchmark creates.
const benchFlows = 100_000

// fillConntrack creates n established TCP entries in the namespace through
// ctnetlink: sources 10.x.y.z (n/4 distinct, 4 sessions each) to
// 10.0.0.2:22.
func fillConntrack(b *testing.B, n *netns.NS, count int) {
	b.Helper()
	c, err := ct.Dial(&netlink.Config{NetNS: n.Fd()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	dst := netip.MustParseAddr("10.0.0.2")
	for i := range count {
		src := netip.AddrFrom4([4]byte{10, byte(1 + i>>18), byte(i >> 10), byte(i >> 2)})
		f := ct.NewFlow(unix.IPPROTO_TCP, 0, src, dst,
			uint16(10000+i%4), 22, 600, 0)
		// Why no status bits: ctnetlink refuses ASSURED/SEEN_REPLY on create
		// with EBUSY; the TCP state alone makes an open session.
		f.ProtoInfo.TCP = &ct.ProtoInfoTCP{State: 3} // ESTABLISHED
		if err := c.Create(f); err != nil {
			b.Fatalf("create flow %d: %v", i, err)
		}
	}
}

var benchBindings = []Binding{{ACL: &acl.ACL{Name: "check", Family: acl.IPv4, Entries: []*acl.Entry{
	{Seq: 10, Action: acl.Permit, Proto: 6, DstPort: eq(22), Connlimits: limits(10, acl.PerSource, 0)},
	{Seq: 20, Action: acl.Permit, Proto: acl.ProtoAny},
}}, Dir: acl.In}}

// showSessions is what `show access-list sessions` costs: dump, attribute,
// count.
func showSessions(netnsFd int) (int, error) {
	k, err := Open(netnsFd)
	if err != nil {
		return 0, err
	}
	defer k.Close()
	flows, err := k.Dump()
	if err != nil {
		return 0, err
	}
	return len(Attribute(benchBindings, flows, nil).Counts()), nil
}

// TestHelperShowSessions is not a test: the benchmark runs the test binary
// with SLXSH_BENCH_NETNS set to measure one `show` in a fresh process (peak
// RSS comparable with conntrack -L's).
func TestHelperShowSessions(t *testing.T) {
	name := os.Getenv("SLXSH_BENCH_NETNS")
	if name == "" {
		return // only a helper process for BenchmarkKernelShowSessions
	}
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := showSessions(fd)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("keys", keys)
}

// timed runs args under GNU time and returns the wall time and the peak
// resident memory of the command. Why GNU time and not the rusage of our
// own child: a child of this (large) process inherits its high-water RSS
// through exec, so only a small parent measures the command alone.
func timed(b *testing.B, env []string, args ...string) (time.Duration, int64) {
	b.Helper()
	cmd := exec.Command("/usr/bin/time", append([]string{"-f", "%M"}, args...)...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s: %v: %s", cmd, err, stderr.String())
	}
	d := time.Since(start)
	lines := strings.Fields(stderr.String())
	kb, err := strconv.ParseInt(lines[len(lines)-1], 10, 64)
	if err != nil {
		b.Fatalf("%s: peak memory from %q: %v", cmd, stderr.String(), err)
	}
	return d, kb << 10
}

// BenchmarkKernelShowSessions measures `show access-list sessions` over
// 100k conntrack entries against `conntrack -L` in the same namespace and
// run: in-process time per op (ns/op, B/op), and, in fresh processes, wall
// time and peak RSS of both.
func BenchmarkKernelShowSessions(b *testing.B) {
	n := netns.New(b)
	fillConntrack(b, n, benchFlows)
	keys, err := showSessions(n.Fd())
	if err != nil {
		b.Fatal(err)
	}
	if keys != benchFlows/4 {
		b.Fatalf("%d keys, want %d", keys, benchFlows/4)
	}

	b.Run("in-process", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := showSessions(n.Fd()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("refresh-marked-dump", func(b *testing.B) {
		k, err := Open(n.Fd())
		if err != nil {
			b.Fatal(err)
		}
		defer k.Close()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := k.DumpMarked(OldMark); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("processes", func(b *testing.B) {
		var ours, theirs time.Duration
		var oursRSS, theirsRSS int64
		for b.Loop() {
			d, rss := timed(b, append(os.Environ(), "SLXSH_BENCH_NETNS="+n.Name),
				os.Args[0], "-test.run=^TestHelperShowSessions$")
			ours, oursRSS = ours+d, max(oursRSS, rss)
			d, rss = timed(b, os.Environ(), "sh", "-c", "ip netns exec "+n.Name+" conntrack -L >/dev/null 2>&1")
			theirs, theirsRSS = theirs+d, max(theirsRSS, rss)
		}
		runs := float64(b.N)
		b.ReportMetric(ours.Seconds()/runs, "show-s")
		b.ReportMetric(theirs.Seconds()/runs, "conntrack-L-s")
		b.ReportMetric(float64(oursRSS)/(1<<20), "show-peak-MiB")
		b.ReportMetric(float64(theirsRSS)/(1<<20), "conntrack-L-peak-MiB")
		b.ReportMetric(ours.Seconds()/theirs.Seconds(), "time-ratio")
	})
}
