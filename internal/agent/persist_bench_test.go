package agent

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
)

// BenchmarkSaveState50k is saveStateLocked after a one-entry change of a
// 50k-entry running config, as installLocked does before it answers:
// formatted, written to the state file (no fsync: it lives in /run) and
// handed to the last-good writer; the last-good file's write (fsync) is
// waited for outside the time. The times are medians (the disk is shared).
func BenchmarkSaveState50k(b *testing.B) {
	lines := []string{"ip access-list extended big"}
	for i := 1; i <= 50000; i++ {
		lines = append(lines, fmt.Sprintf("seq %d permit tcp host 10.%d.%d.%d any eq %d", i, i/65536, i/256%256, i%256, 1000+i%20000))
	}
	running, err := cli.ApplyLines(acl.New(), cli.Txn{Lines: lines})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	a := New(Options{StatePath: filepath.Join(dir, "run", "running-config"), LastGoodPath: filepath.Join(dir, "etc", "last-good-config")})
	a.running = running
	a.saveStateLocked()
	change := [2]cli.Txn{
		{Lines: []string{"ip access-list extended big", "no seq 25000", "seq 25000 permit tcp host 10.0.97.168 any eq 65000"}},
		{Lines: []string{"ip access-list extended big", "no seq 25000", "seq 25000 permit tcp host 10.0.97.168 any eq 6000"}},
	}
	var took []time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		next, err := cli.ApplyLines(a.running, change[i%2])
		if err != nil {
			b.Fatal(err)
		}
		a.running = next
		b.StartTimer()
		start := time.Now()
		a.saveStateLocked()
		took = append(took, time.Since(start))
		b.StopTimer()
		a.Flush()
		b.StartTimer()
	}
	b.ReportMetric(float64(medianOf(took))/float64(time.Millisecond), "median-ms")
	b.ReportMetric(float64(len(a.state))/(1<<20), "MiB")
}

func medianOf(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
