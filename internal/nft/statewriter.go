package nft

import (
	"os"
	"sync"

	"github.com/slxsh/slxsh/internal/latest"
)

// stateWriter writes the Applier's saved state (applystate.go) off the
// path of its commits: one goroutine at a time, started when there is
// something to write and gone when there is nothing left.
//
// Why in the background: encoding the knowledge of a 50k-entry table
// (its 50k-element map, 50k chain names and counters) and writing it
// took 40-55 ms of a change of one entry; the file is only a cache for a
// restarted Applier. Why the latest only: a state that a newer one
// replaced is of no use to anyone, and a burst of changes writes once.
type stateWriter struct {
	base uint32 // the Gen of the last PATH handed to the writer (the Applier's, under its mu)
	w    latest.Writer[stateWrite]
	once sync.Once
}

// stateWrite is one state to save. What it holds is its own or values
// that nobody changes.
type stateWrite struct {
	path  string
	table *stateTable // PATH, nil when it stays as it is
	gen   savedGen    // PATH.gen, after PATH
}

// queue hands w to the writer. A waiting write that w replaces is
// dropped, except for its PATH when w has none: w's PATH.gen follows it.
func (s *stateWriter) queue(w stateWrite) {
	s.once.Do(func() {
		s.w.Write = func(w stateWrite) { w.write() }
		s.w.Merge = func(waiting, w stateWrite) stateWrite {
			if w.table == nil && waiting.path == w.path {
				w.table = waiting.table
			}
			return w
		}
	})
	s.w.Queue(w)
}

// flush waits until everything queued is written.
func (s *stateWriter) flush() { s.w.Flush() }

// write writes PATH, then PATH.gen. A PATH that could not be written is
// removed, and PATH.gen is not written: it would follow an older PATH.
func (w *stateWrite) write() {
	if w.table != nil {
		if writeState(w.path, w.table.saved()) != nil {
			os.Remove(w.path)
			return
		}
	}
	if writeState(w.path+".gen", &w.gen) != nil {
		os.Remove(w.path + ".gen")
	}
}
