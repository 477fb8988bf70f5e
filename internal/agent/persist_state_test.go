package agent

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
)

// Both state files follow every change that changes the running config
// (the last good one once flushed); one that changes nothing rewrites
// neither (their inodes stay), unless the save before failed to write one
// (then that one is written again).
func TestStateFilesRewrittenOnlyWhenChanged(t *testing.T) {
	ta := newTestAgent(t)
	ta.opts.LastGoodPath = filepath.Join(filepath.Dir(ta.startup), "etc", "last-good-config")
	paths := []string{ta.state, ta.opts.LastGoodPath}
	if _, err := ta.Start(); err != nil {
		t.Fatal(err)
	}
	ta.mustConfigure(t, slxACL, slxBind)
	inodes := func(step string) [2]uint64 {
		t.Helper()
		var ino [2]uint64
		ta.Flush()
		want := ta.savedState()
		for i, path := range paths {
			data, err := os.ReadFile(path)
			if err != nil || string(data) != string(want) {
				t.Fatalf("%s: %s is\n%s\nwant\n%s", step, path, data, want)
			}
			fi, _ := os.Stat(path)
			ino[i] = fi.Sys().(*syscall.Stat_t).Ino
		}
		return ino
	}
	before := inodes("configured")
	same := cli.Txn{Lines: []string{"ip access-list extended check", "permit ip any any"}}
	ta.mustConfigure(t, same)
	if after := inodes("after a change of nothing"); after != before {
		t.Errorf("a change of nothing rewrote the state files (inodes %v -> %v)", before, after)
	}
	ta.mustConfigure(t, cli.Txn{Lines: []string{"ip access-list extended check", "seq 15 deny udp any any eq 53"}})
	if after := inodes("after a change"); after[0] == before[0] || after[1] == before[1] {
		t.Errorf("a change left a state file as it was (inodes %v -> %v)", before, after)
	}

	// The last-good file cannot be written (a directory in its place):
	// the next save writes it, even of the same config.
	if err := os.Remove(paths[1]); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(paths[1], 0o700); err != nil {
		t.Fatal(err)
	}
	ta.mustConfigure(t, cli.Txn{Lines: []string{"ip access-list extended check", "no seq 15"}})
	if err := os.Remove(paths[1]); err != nil {
		t.Fatal(err)
	}
	ta.mustConfigure(t, same)
	inodes("after a failed save and a change of nothing")
}

// frameConfig returns text (a formatted config) as the agent writes it.
func frameConfig(text string) []byte {
	return appendFrame(make([]byte, 0, len(fileHeader)+len(text)+5), func(b []byte) []byte { return append(b, text...) })
}

// savedState returns the running config as the agent keeps it in its
// state files (of the generation it saved last).
func (ta *testAgent) savedState() []byte {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return appendStateTail(append([]byte(fileHeader+"\n"), acl.Format(ta.running)...), ta.gen)
}

// What an agent killed during a write left (its temp files) is removed
// at the next start; nothing else is.
func TestStartRemovesTempsOfAKilledAgent(t *testing.T) {
	ta := newTestAgent(t)
	ta.opts.LastGoodPath = filepath.Join(filepath.Dir(ta.startup), "etc", "last-good-config")
	var temps []string
	for _, path := range []string{ta.state, ta.opts.LastGoodPath, ta.startup, ta.state + ".revert"} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		temp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp1234")
		if err := os.WriteFile(temp, []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
		temps = append(temps, temp)
	}
	other := filepath.Join(filepath.Dir(ta.state), ".other.tmp1")
	os.WriteFile(other, nil, 0o600)
	if _, err := ta.Start(); err != nil {
		t.Fatal(err)
	}
	for _, temp := range temps {
		if _, err := os.Stat(temp); err == nil {
			t.Errorf("%s left", temp)
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another file was removed: %v", err)
	}
}

// underFile returns a path that no one can write, root included: its
// directory is a regular file (as a read-only or full /run, for a test).
func underFile(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(file, "running-config")
}

// A state file that cannot be saved does not fail the change, which the
// kernel holds, but the shell is told, with the file and the error; at
// every change, not only the first.
func TestUnsavedStateWarns(t *testing.T) {
	ta := newTestAgent(t)
	ta.opts.StatePath = underFile(t)
	if _, err := ta.Start(); err != nil {
		t.Fatal(err)
	}
	for _, txn := range []cli.Txn{slxACL, slxBind} {
		warns, err := ta.Configure(txn)
		if err != nil {
			t.Fatalf("Configure(%q): %v", txn.Lines, err)
		}
		want := "% Warning: the change is applied, but the agent cannot save it in " + ta.opts.StatePath + " for its restart: "
		if len(warns) != 1 || !strings.HasPrefix(warns[0], want) || !strings.HasSuffix(warns[0], "not a directory") {
			t.Errorf("Configure(%q) warns %q, want %q and the error", txn.Lines, warns, want)
		}
	}
	if !strings.Contains(ta.kernel.Current.String(), `comment "acl=check dir=in seq=10"`) {
		t.Errorf("kernel does not hold the change:\n%v", ta.kernel.Current)
	}
}

// An agent whose state file stopped being saved (a read-only or full
// /run) and that is killed comes back with what it ran, from the last
// good file, which is newer than the state file left: not with that
// stale file, and the last good file is not overwritten with it.
func TestRestartAfterUnsavedStateTakesNewerLastGood(t *testing.T) {
	ta := newTestAgent(t)
	ta.opts.LastGoodPath = filepath.Join(filepath.Dir(ta.startup), "etc", "last-good-config")
	if _, err := ta.Start(); err != nil {
		t.Fatal(err)
	}
	ta.mustConfigure(t, slxACL) // saved in ta.state
	// From now on the state file cannot be written: it keeps slxACL only.
	ta.opts.StatePath = underFile(t)
	if warns, err := ta.Configure(slxBind); err != nil || len(warns) != 1 {
		t.Fatalf("Configure = %q, %v; want the warning", warns, err)
	}
	ta.Flush()
	want := ta.RunningText()

	// Killed: a new agent, same files.
	tb := newTestAgent(t)
	tb.opts.StartupPath, tb.opts.StatePath, tb.opts.LastGoodPath = ta.startup, ta.state, ta.opts.LastGoodPath
	if _, err := tb.Start(); err != nil {
		t.Fatal(err)
	}
	if got := tb.RunningText(); got != want {
		t.Errorf("restarted agent runs\n%s\nwant the last change too\n%s", got, want)
	}
	tb.Flush()
	for _, path := range []string{ta.opts.LastGoodPath, ta.state} {
		if got, _ := os.ReadFile(path); !strings.Contains(string(got), " ip access-group check in\n") {
			t.Errorf("%s after the restart lacks the last change:\n%s", path, got)
		}
	}
}

// A last good file that lags behind the state file (its background
// write of a change landed after the state of the next one, or the
// agent was killed before it was written) loses to the state file, even
// though its modification time is later.
func TestRestartTakesStateNewerThanLastGood(t *testing.T) {
	ta := newTestAgent(t)
	ta.opts.LastGoodPath = filepath.Join(filepath.Dir(ta.startup), "etc", "last-good-config")
	if _, err := ta.Start(); err != nil {
		t.Fatal(err)
	}
	ta.mustConfigure(t, slxACL)
	ta.Flush()
	older, err := os.ReadFile(ta.opts.LastGoodPath)
	if err != nil {
		t.Fatal(err)
	}
	ta.mustConfigure(t, slxBind)
	ta.Flush()
	want := ta.RunningText()
	if err := os.WriteFile(ta.opts.LastGoodPath, older, 0o600); err != nil {
		t.Fatal(err)
	}

	tb := newTestAgent(t)
	tb.opts.StartupPath, tb.opts.StatePath, tb.opts.LastGoodPath = ta.startup, ta.state, ta.opts.LastGoodPath
	if _, err := tb.Start(); err != nil {
		t.Fatal(err)
	}
	if got := tb.RunningText(); got != want {
		t.Errorf("restarted agent runs\n%s\nwant the state file's\n%s", got, want)
	}
}

func TestGenerationOf(t *testing.T) {
	for text, want := range map[string]uint64{
		string(appendStateTail([]byte(fileHeader+"\nhostname x\n"), 42)): 42,
		fileHeader + "\r\nhostname x\r\n! generation 7\r\nend\r\n\r\n":   7,
		string(frameConfig("hostname x\n")):                              0, // a startup-config
		"hostname x\n":                                                   0, // an older agent's
		fileHeader + "\nhostname x\n! generation 7\n":                    0, // cut short
		"! generation 7\nhostname x\nend\n":                              0,
		"end\n":                                                          0,
		"":                                                               0,
	} {
		if got := generationOf([]byte(text)); got != want {
			t.Errorf("generationOf(%q) = %d, want %d", text, got, want)
		}
	}
}
