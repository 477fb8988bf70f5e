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
	return benchRulesetWith(b, n, changed, nft.Options{})
}

// benchRulesetWith is benchRuleset compiled with o (MapRun -1: as rules).
func benchRulesetWith(b testing.TB, n int, changed bool, o nft.Options) *nft.Ruleset {
	b.Helper()
	cfg, err := cli.ParseConfig(benchConfig(n, changed))
	if err != nil {
		b.Fatal(err)
	}
	rs, err := nft.Compile(cfg, o)
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
			b.ReportMetric(float64(rs.SetMemoryApplied())/(1<<20), "set-MiB") // kernel memory of the sets when applied (estimate)
			b.ReportMetric(ms(median(ours)), "netlink-ms")
			b.ReportMetric(ms(median(theirs)), "nft-f-ms")
			b.ReportMetric(float64(median(ours))/float64(median(theirs)), "netlink/nft")
		})
	}
}

// BenchmarkChangeOneEntry changes one entry of a 10k- and a 50k-entry ACL
// while the table holds the previous version: by the Applier that
// installed it (rule by rule, with the handles it learned from the
// kernel's echoes) and, alternating in the same run, by a fresh Applier,
// which knows no handles and takes the old path (flush the chain and add
// every rule again); a full apply into an empty table for reference.
func BenchmarkChangeOneEntry(b *testing.B) {
	for _, n := range []int{10000, 50000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			ns := netns.New(b)
			v0, v1 := benchRuleset(b, n, false), benchRuleset(b, n, true)
			c0, c1 := mustParse(b, benchConfig(n, false)), mustParse(b, benchConfig(n, true))
			var change, old, full []time.Duration
			for b.Loop() {
				b.StopTimer()
				deleteTable(b, ns)
				a := applier(ns)
				full = append(full, timed(b, func() error { return a.Apply(v0) }))
				// As the agent does: the limits after the changed entry
				// start afresh (Renewals).
				change = append(change, timed(b, func() error { return a.Apply(v1, nft.Renewals(v0, v1, c0, c1)...) }))
				old = append(old, timed(b, func() error { return applier(ns).Apply(v0, nft.Renewals(v1, v0, c1, c0)...) }))
				b.StartTimer()
			}
			deleteTable(b, ns)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(rules(v0)), "rules")
			b.ReportMetric(ms(median(full)), "full-ms")
			b.ReportMetric(ms(median(change)), "change-ms")
			b.ReportMetric(ms(median(old)), "old-change-ms")
			b.ReportMetric(float64(median(change))/float64(median(old)), "change/old")
			b.ReportMetric(float64(median(change))/float64(median(full)), "change/full")
		})
	}
}

// BenchmarkRestart is a restarted agent's first Apply: a new Applier with
// the saved state (SetStatePath) applying the ruleset the kernel holds
// (commits nothing) and then a changed one (rule by rule), against a new
// Applier without saved state (the old path: every chain re-sent), in the
// same run.
func BenchmarkRestart(b *testing.B) {
	for _, n := range []int{10000, 50000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			ns := netns.New(b)
			state := filepath.Join(b.TempDir(), "nft-handles")
			v0, v1 := benchRuleset(b, n, false), benchRuleset(b, n, true)
			c0, c1 := mustParse(b, benchConfig(n, false)), mustParse(b, benchConfig(n, true))
			withState := func() *nft.Applier { a := applier(ns); a.SetStatePath(state); b.Cleanup(a.Flush); return a }
			var same, change, oldSame, oldChange []time.Duration
			for b.Loop() {
				b.StopTimer()
				before := withState() // the agent before its restart
				if err := before.Apply(v0); err != nil {
					b.Fatal(err)
				}
				before.Flush()
				r := withState()
				same = append(same, timed(b, func() error { return r.Apply(v0) }))
				change = append(change, timed(b, func() error { return r.Apply(v1, nft.Renewals(v0, v1, c0, c1)...) }))
				if err := r.Apply(v0); err != nil {
					b.Fatal(err)
				}
				oldSame = append(oldSame, timed(b, func() error { return applier(ns).Apply(v0) }))
				oldChange = append(oldChange, timed(b, func() error { return applier(ns).Apply(v1, nft.Renewals(v0, v1, c0, c1)...) }))
				b.StartTimer()
			}
			deleteTable(b, ns)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(ms(median(same)), "same-ms")
			b.ReportMetric(ms(median(oldSame)), "old-same-ms")
			b.ReportMetric(ms(median(change)), "change-ms")
			b.ReportMetric(ms(median(oldChange)), "old-change-ms")
			b.ReportMetric(float64(median(same))/float64(median(oldSame)), "same/old")
			b.ReportMetric(float64(median(change))/float64(median(oldChange)), "change/old")
		})
	}
}

// timed runs f and returns how long it took.
func timed(b *testing.B, f func() error) time.Duration {
	start := time.Now()
	if err := f(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
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
