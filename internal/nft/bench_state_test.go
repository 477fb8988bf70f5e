package nft_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

// BenchmarkSaveState is what saving the Applier's knowledge of a 50k-entry
// table (compiled with maps, as the agent compiles it) adds to the return
// of the commit that made it (ns/op), and how long the file then takes to
// be written (write-ms, Flush; none when the save is synchronous).
func BenchmarkSaveState(b *testing.B) {
	rs := benchRuleset(b, 50000, false)
	a := nft.NewApplier("slxsh")
	a.SetStatePath(filepath.Join(b.TempDir(), "nft-handles"))
	b.Cleanup(a.Flush)
	nft.SaveStateOf(a, rs) // the digest, once
	a.Flush()
	var flush []time.Duration
	for b.Loop() {
		nft.SaveStateOf(a, rs)
		b.StopTimer()
		start := time.Now()
		a.Flush()
		flush = append(flush, time.Since(start))
		b.StartTimer()
	}
	b.ReportMetric(ms(median(flush)), "write-ms")
}

// BenchmarkChangeWithState changes one entry of a 50k-entry ACL back and
// forth, by one Applier that saves its state (as the agent's does) for
// one change and none for the next: the time until Apply returns (the
// file may be written after).
func BenchmarkChangeWithState(b *testing.B) {
	const n = 50000
	ns := netns.New(b)
	v0, v1 := benchRuleset(b, n, false), benchRuleset(b, n, true)
	c0, c1 := mustParse(b, benchConfig(n, false)), mustParse(b, benchConfig(n, true))
	state := filepath.Join(b.TempDir(), "nft-handles")
	a := applier(ns)
	b.Cleanup(a.Flush)
	if err := a.Apply(v0); err != nil {
		b.Fatal(err)
	}
	var with, without []time.Duration
	for b.Loop() {
		b.StopTimer()
		a.SetStatePath(state)
		with = append(with, timed(b, func() error { return a.Apply(v1, nft.Renewals(v0, v1, c0, c1)...) }))
		a.Flush() // not in the other's time
		a.SetStatePath("")
		without = append(without, timed(b, func() error { return a.Apply(v0, nft.Renewals(v1, v0, c1, c0)...) }))
		b.StartTimer()
	}
	deleteTable(b, ns)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(median(with)), "with-state-ms")
	b.ReportMetric(ms(median(without)), "without-ms")
	b.ReportMetric(ms(median(with)-median(without)), "state-ms")
}
