package agent

import (
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// A change that made much garbage (a whole config of 50k entries applied,
// parsed, compiled and read back) is collected at once, in the
// background, and the memory it freed returned to the system: otherwise
// the collection falls on the next change, which its marking slows by a
// third to a half (measured at 50k entries: a one-line change 45-55 ms
// without, 90-110 ms with it), and the agent keeps the peak's pages.
const collectAfter = 64 << 20 // bytes allocated by one change

var collecting atomic.Bool

// allocated returns the bytes the process allocated on the heap so far.
func allocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// collectIfLarge starts the collection when more than collectAfter was
// allocated since from (a value of allocated), unless one runs.
func collectIfLarge(from uint64) {
	if allocated()-from > collectAfter && collecting.CompareAndSwap(false, true) {
		go func() {
			defer collecting.Store(false)
			debug.FreeOSMemory()
		}()
	}
}
