package cli

import (
	"strings"
	"testing"
	"time"
)

// TestRevertTimer checks configure terminal revert timer: without confirm
// the config returns to its state before; with confirm it stays.
func TestRevertTimer(t *testing.T) {
	for _, confirm := range []bool{false, true} {
		b := NewMemoryBackend(nil).(*memoryBackend)
		b.minute = time.Millisecond
		s := NewSession(b, "h")
		var out strings.Builder
		lines := []string{"configure terminal revert timer 20", "hostname changed", "end"}
		if confirm {
			lines = append(lines, "configure confirm")
		}
		for _, l := range lines {
			if err := s.Execute(l, &out); err != nil {
				t.Fatalf("%s: %v", l, err)
			}
		}
		// Wait (bounded) for the timer to have fired or been stopped.
		var host string
		for i := 0; i < 200; i++ {
			b.mu.Lock()
			pending := b.revert != nil
			b.mu.Unlock()
			c, _ := b.Running()
			host = c.Hostname
			if !pending {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		want := ""
		if confirm {
			want = "changed"
		}
		if host != want {
			t.Errorf("confirm=%v: hostname %q, want %q", confirm, host, want)
		}
	}
}
