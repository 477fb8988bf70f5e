// Package latest writes state off the path of what produces it: one
// goroutine at a time, started when there is something to write and gone
// when there is nothing left, in order, the latest value only.
//
// Why the latest only: a state that a newer one replaced is of no use to
// anyone, and a burst of changes writes once. The nftables Applier saves
// its rule handles this way (nft/statewriter.go) and the agent its last
// good configuration (agent/persist.go).
package latest

import "sync"

// Writer hands values to Write in the background. Its zero value holds
// no Write: set Write (and Merge) before the first Queue.
type Writer[T any] struct {
	// Write writes one value; it runs in the writer's goroutine.
	Write func(T)
	// Merge makes the value that replaces a waiting one (nil: next).
	Merge func(waiting, next T) T

	mu      sync.Mutex
	done    *sync.Cond // running became false
	running bool       // a goroutine writes
	waiting bool       // next holds a value not yet written
	next    T
}

// Queue hands v to the writer, replacing (Merge) a value still waiting.
func (w *Writer[T]) Queue(v T) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waiting && w.Merge != nil {
		v = w.Merge(w.next, v)
	}
	w.next, w.waiting = v, true
	if !w.running {
		w.running = true
		go w.run()
	}
}

// run writes what is queued until nothing is.
func (w *Writer[T]) run() {
	for {
		w.mu.Lock()
		if !w.waiting {
			w.running = false
			if w.done != nil {
				w.done.Broadcast()
			}
			w.mu.Unlock()
			return
		}
		v := w.next
		var zero T
		w.next, w.waiting = zero, false
		w.mu.Unlock()
		w.Write(v)
	}
}

// Flush waits until everything queued is written.
func (w *Writer[T]) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done == nil {
		w.done = sync.NewCond(&w.mu)
	}
	for w.running {
		w.done.Wait()
	}
}
