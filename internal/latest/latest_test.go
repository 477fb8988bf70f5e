package latest

import (
	"slices"
	"sync"
	"testing"
)

// While a write runs, the values queued replace one another (through
// Merge); Flush returns when the last is written, and they are written in
// the order queued.
func TestLatestInOrder(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var wrote []string
	w := &Writer[string]{
		Write: func(s string) {
			if s == "first" {
				close(started)
				<-release // busy: what comes now waits
			}
			mu.Lock()
			wrote = append(wrote, s)
			mu.Unlock()
		},
		Merge: func(waiting, next string) string { return waiting + "+" + next },
	}
	w.Queue("first")
	<-started
	for _, s := range []string{"a", "b", "c"} {
		w.Queue(s)
	}
	close(release)
	w.Flush()
	if want := []string{"first", "a+b+c"}; !slices.Equal(wrote, want) {
		t.Fatalf("wrote %q, want %q", wrote, want)
	}
	// Idle again: the next value starts a goroutine of its own.
	w.Merge = nil
	w.Queue("d")
	w.Flush()
	if want := []string{"first", "a+b+c", "d"}; !slices.Equal(wrote, want) {
		t.Fatalf("wrote %q, want %q", wrote, want)
	}
}
