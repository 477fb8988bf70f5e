package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/netns"
)

func TestJournalPriorities(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	syscall.Fstat(int(f.Fd()), &st)
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	log := newLogger(f).With("table", "inet slxsh")
	log.Error("apply refused", "err", "boom")
	log.Warn("drift")
	log.Info("ready")
	log.Debug("not shown")
	data, _ := os.ReadFile(f.Name())
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for i, want := range []string{`<3>time=`, `<4>time=`, `<6>time=`} {
		if i >= len(lines) || !strings.HasPrefix(lines[i], want) || !strings.Contains(lines[i], `table="inet slxsh"`) {
			t.Errorf("line %d = %q, want prefix %q", i+1, lines[i], want)
		}
	}
	if len(lines) != 3 {
		t.Errorf("%d lines:\n%s", len(lines), data)
	}
	// Not the journal's stream (another file, or no JOURNAL_STREAM): no prefix.
	g, _ := os.Create(filepath.Join(t.TempDir(), "other"))
	defer g.Close()
	newLogger(g).Warn("plain")
	if data, _ := os.ReadFile(g.Name()); !strings.HasPrefix(string(data), "time=") {
		t.Errorf("prefix on a stream that is not the journal: %q", data)
	}
}

// TestKernelSdNotify: the real agent tells systemd READY=1 once it serves,
// pings the watchdog while it answers on its socket, and STOPPING=1 on
// SIGTERM.
func TestKernelSdNotify(t *testing.T) {
	netns.RequireRoot(t)
	dir := t.TempDir()
	sockPath := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sockPath)
	t.Setenv("WATCHDOG_USEC", "400000")
	p := netns.NewPair(t)
	ag := newAgent(t, p.Server, "s0")
	ag.start()
	states := map[string]int{}
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		for _, l := range strings.Split(string(buf[:n]), "\n") {
			states[l]++
		}
	}
	if states["READY=1"] != 1 || states["WATCHDOG=1"] < 4 || states["STATUS=serving on "+ag.sock] != 1 {
		t.Errorf("in 2 s: %v; want READY=1, STATUS and a watchdog ping every 0.2 s", states)
	}
	ag.stop()
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	stopping := false
	for !stopping {
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		stopping = strings.Contains(string(buf[:n]), "STOPPING=1")
	}
	if !stopping {
		t.Error("no STOPPING=1 on SIGTERM")
	}
}
