package nft_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

// benchConfig is an ACL of n entries applied in on eth1: permit tcp from one
// host each to a port, every hundredth entry with connlimit 3 (seven sets
// each, ~2.25 MiB of kernel memory; see BENCHMARKS.md). changed alters the port
// of the middle entry.
func benchConfig(n int, changed bool) string {
	var b strings.Builder
	b.WriteString("ip access-list extended big\n")
	for i := 1; i <= n; i++ {
		port := 1000 + i%20000
		if changed && i == n/2 {
			port = 65000
		}
		fmt.Fprintf(&b, " seq %d permit tcp host 10.%d.%d.%d any eq %d", i, i/65536, i/256%256, i%256, port)
		if i%100 == 0 {
			b.WriteString(" connlimit 3")
		}
		b.WriteString("\n")
	}
	b.WriteString(" seq 65000 permit ip any any\ninterface eth1\n ip access-group big in\n")
	return b.String()
}

func benchRuleset(b testing.TB, n int, changed bool) *nft.Ruleset {
	b.Helper()
	cfg, err := cli.ParseConfig(benchConfig(n, changed))
	if err != nil {
		b.Fatal(err)
	}
	rs, err := nft.Compile(cfg, nft.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return rs
}

func rules(rs *nft.Ruleset) int {
	n := 0
	for _, ch := range rs.Chains {
		n += len(ch.Rules)
	}
	return n
}

// nftF runs `nft -f path` inside ns, without the cost of `ip netns exec`:
// the child is forked from a thread that is already in the namespace.
func nftF(ns *netns.NS, path string) error {
	return ns.Do(func() error {
		out, err := exec.Command("nft", "-f", path).CombinedOutput()
		if err != nil {
			return fmt.Errorf("nft -f: %w: %s", err, out)
		}
		return nil
	})
}

func deleteTable(b *testing.B, ns *netns.NS) {
	b.Helper()
	ns.Exec("nft", "delete", "table", "inet", "slxsh")
}

// BenchmarkApply applies ACLs of 100, 1k and 10k entries into an empty
// table, once with our netlink Apply and once with `nft -f` of the same
// ruleset text, alternating within the same run, and reports both times and
// their ratio (netlink/nft).
func BenchmarkApply(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			ns := netns.New(b)
			rs := benchRuleset(b, n, false)
			path := filepath.Join(b.TempDir(), "rs.nft")
			if err := os.WriteFile(path, []byte(rs.String()), 0o644); err != nil {
				b.Fatal(err)
			}
			var ours, theirs []time.Duration
			for b.Loop() {
				b.StopTimer()
				deleteTable(b, ns)
				a := applier(ns)
				start := time.Now()
				if err := a.Apply(rs); err != nil {
					b.Fatal(err)
				}
				ours = append(ours, time.Since(start))
				deleteTable(b, ns)
				start = time.Now()
				if err := nftF(ns, path); err != nil {
					b.Fatal(err)
				}
				theirs = append(theirs, time.Since(start))
				b.StartTimer()
			}
			deleteTable(b, ns)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(rules(rs)), "rules")
			b.ReportMetric(float64(rs.SetMemory())/(1<<20), "set-MiB") // kernel memory of the sets (estimate)
			b.ReportMetric(ms(median(ours)), "netlink-ms")
			b.ReportMetric(ms(median(theirs)), "nft-f-ms")
			b.ReportMetric(float64(median(ours))/float64(median(theirs)), "netlink/nft")
		})
	}
}

// BenchmarkChangeOneEntry changes one entry of the 10k-entry ACL (the
// table holds the previous version) and compares that with a full apply
// into an empty table, measured in the same run.
func BenchmarkChangeOneEntry(b *testing.B) {
	const n = 10000
	ns := netns.New(b)
	versions := []*nft.Ruleset{benchRuleset(b, n, false), benchRuleset(b, n, true)}
	var change, full []time.Duration
	for b.Loop() {
		b.StopTimer()
		deleteTable(b, ns)
		a := applier(ns)
		start := time.Now()
		if err := a.Apply(versions[0]); err != nil {
			b.Fatal(err)
		}
		full = append(full, time.Since(start))
		start = time.Now()
		if err := a.Apply(versions[1]); err != nil {
			b.Fatal(err)
		}
		change = append(change, time.Since(start))
		b.StartTimer()
	}
	deleteTable(b, ns)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(median(full)), "full-ms")
	b.ReportMetric(ms(median(change)), "change-ms")
	b.ReportMetric(float64(median(change))/float64(median(full)), "change/full")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// median of the measured times: the machine is shared, and the first
// allocation of kernel memory in a VM is much slower than later ones, so
// the median says more than the mean.
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkDriftCheck times InSync on the applied 10k-entry ACL: by the
// Applier that applied it (nothing committed since: the generation check
// answers) and by a fresh Applier (reads every rule back and compares).
func BenchmarkDriftCheck(b *testing.B) {
	ns := netns.New(b)
	rs := benchRuleset(b, 10000, false)
	a := applier(ns)
	if err := a.Apply(rs); err != nil {
		b.Fatal(err)
	}
	var fast, full, ctrs []time.Duration
	for b.Loop() {
		b.StopTimer()
		for _, m := range []struct {
			a   *nft.Applier
			out *[]time.Duration
		}{{a, &fast}, {applier(ns), &full}} {
			start := time.Now()
			if ok, err := m.a.InSync(rs); !ok || err != nil {
				b.Fatalf("InSync = %v, %v", ok, err)
			}
			*m.out = append(*m.out, time.Since(start))
		}
		start := time.Now()
		if _, err := a.Counters(); err != nil {
			b.Fatal(err)
		}
		ctrs = append(ctrs, time.Since(start))
		b.StartTimer()
	}
	deleteTable(b, ns)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(median(fast)), "unchanged-ms")
	b.ReportMetric(ms(median(full)), "full-read-ms")
	b.ReportMetric(ms(median(ctrs)), "counters-ms")
}
