package nft

import (
	"os"
	"path/filepath"
	"testing"
)

// The writer writes the latest state only, but a PATH.gen never goes
// without the PATH it follows: a waiting PATH stays when only a newer
// generation comes; a newer PATH replaces it.
func TestStateWriterLatestInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nft-state")
	rs := &Ruleset{Table: "t", Chains: []*Chain{{Name: "c"}}}
	full := func(gen uint32) stateWrite {
		return stateWrite{path: path, table: &stateTable{table: "t", gen: gen, rs: rs, chains: map[string]chainSync{}},
			gen: savedGen{Table: "t", Gen: gen, Base: gen}}
	}
	genOnly := func(gen, base uint32) stateWrite {
		return stateWrite{path: path, gen: savedGen{Table: "t", Gen: gen, Base: base}}
	}
	check := func(step string, wantTable, wantGen uint32) {
		t.Helper()
		var tb savedTable
		var g savedGen
		if err := readState(path, &tb); err != nil || tb.Gen != wantTable {
			t.Errorf("%s: PATH at %d, %v; want %d", step, tb.Gen, err, wantTable)
		}
		if err := readState(path+".gen", &g); err != nil || g.Gen != wantGen || g.Base != tb.Gen {
			t.Errorf("%s: PATH.gen at %d after %d, %v; want %d after %d", step, g.Gen, g.Base, err, wantGen, tb.Gen)
		}
	}
	var s stateWriter
	s.queue(full(3))
	s.flush()
	check("one PATH", 3, 3)
	// busy queues w, which the writer holds on to until the returned
	// func is called: what is queued meanwhile waits.
	write := s.w.Write
	busy := func(w stateWrite) func() {
		started, release := make(chan struct{}), make(chan struct{})
		s.w.Write = func(x stateWrite) {
			if x.table == nil && x.gen.Gen == w.gen.Gen {
				close(started)
				<-release
			}
			write(x)
		}
		s.queue(w)
		<-started
		return func() { close(release); s.flush(); s.w.Write = write }
	}
	done := busy(genOnly(4, 3))
	s.queue(full(5))
	s.queue(genOnly(6, 5))
	done()
	check("a generation after a PATH", 5, 6)

	done = busy(genOnly(7, 5))
	s.queue(full(7))
	s.queue(genOnly(8, 7))
	s.queue(full(9))
	s.queue(genOnly(10, 9))
	done()
	check("a newer PATH", 9, 10)

	s.queue(full(11)) // the goroutine
	s.queue(genOnly(12, 11))
	s.flush()
	check("after flush", 11, 12)
}

// RemoveTemps removes the temp files of the state path and its .gen, and
// nothing else (SetStatePath itself leaves them: another process may be
// the one writing).
func TestApplierRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nft-handles")
	temps := []string{".nft-handles.tmp1", ".nft-handles.gen.tmp2"}
	for _, name := range append(temps, ".other.tmp3") {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a := NewApplier("slxsh")
	a.SetStatePath(path)
	if _, err := os.Stat(filepath.Join(dir, temps[0])); err != nil {
		t.Fatalf("SetStatePath removed a temp file: %v", err)
	}
	if err := a.RemoveTemps(); err != nil {
		t.Fatal(err)
	}
	for _, name := range temps {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s left", name)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".other.tmp3")); err != nil {
		t.Errorf("another file removed: %v", err)
	}
}
