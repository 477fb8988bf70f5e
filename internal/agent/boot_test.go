package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/nft"
)

// damagedCase is a startup-config that must not load, and the line its
// error must name (0: the file as a whole).
type damagedCase struct {
	name string
	line int
	make func(t *testing.T, path string) // puts the damaged file at path
}

// damagedCases are the files of testdata/damaged (NAME.LN.cfg) and those
// that cannot be files there.
func damagedCases(t *testing.T) []damagedCase {
	t.Helper()
	files, err := filepath.Glob("../../testdata/damaged/*.cfg")
	if err != nil || len(files) < 12 {
		t.Fatalf("testdata/damaged: %v, %v", files, err)
	}
	var cases []damagedCase
	for _, f := range files {
		base := strings.TrimSuffix(filepath.Base(f), ".cfg")
		name, l, _ := strings.Cut(base, ".L")
		line, err := strconv.Atoi(l)
		if err != nil {
			t.Fatalf("%s: no .LN in the name", f)
		}
		data, _ := os.ReadFile(f)
		cases = append(cases, damagedCase{name, line, func(t *testing.T, path string) { os.WriteFile(path, data, 0o644) }})
	}
	return append(cases,
		damagedCase{"directory", 0, func(t *testing.T, path string) { os.Mkdir(path, 0o755) }},
		damagedCase{"fifo", 0, func(t *testing.T, path string) { syscall.Mkfifo(path, 0o644) }},
		damagedCase{"huge-file", 0, func(t *testing.T, path string) {
			f, _ := os.Create(path)
			f.Truncate(maxConfigFile + 1) // sparse: costs no disk
			f.Close()
		}},
		damagedCase{"foreign-symlink", 0, func(t *testing.T, path string) {
			target := path + ".target"
			os.WriteFile(target, []byte("hostname planted\n"), 0o644)
			os.Symlink(target, path)
			if err := os.Lchown(path, 65534, 65534); err != nil {
				t.Skipf("cannot chown a symlink (not root?): %v", err)
			}
		}},
	)
}

// kernelTable is what the fake kernel holds before the agent starts: the
// table of a previous agent.
func kernelTable(t *testing.T) *nft.Ruleset {
	t.Helper()
	cfg, err := cli.ParseConfig("ip access-list extended held\n seq 10 permit tcp any any eq 22 connlimit 3\n!\ninterface lo\n ip access-group held in\n!\n")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := nft.Compile(cfg, nft.Options{MgmtInterface: "lo"})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestStartDamagedStartupConfig: each damaged startup-config leaves the
// agent up with the kernel's table untouched, and show startup-config
// says it was not loaded, why, and at which line.
func TestStartDamagedStartupConfig(t *testing.T) {
	for _, tc := range damagedCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			ta := newTestAgent(t)
			held := kernelTable(t)
			ta.kernel.Set(held)
			tc.make(t, ta.startup)
			if _, err := ta.Start(); err != nil {
				t.Fatalf("Start: %v", err)
			}
			if ta.kernel.Current != held || ta.kernel.Applied != 0 {
				t.Errorf("kernel table changed (%d applies)", ta.kernel.Applied)
			}
			if ta.StartupLoaded() {
				t.Error("StartupLoaded")
			}
			text, err := ta.StartupText()
			want := ta.startup + ": % "
			if tc.line > 0 {
				want = fmt.Sprintf("%s:%d: %% ", ta.startup, tc.line)
			}
			if err != nil || !strings.HasPrefix(text, "! % This startup-config was NOT loaded at start: "+want) {
				t.Errorf("show startup-config = %.300q, %v; want it to start with the error at %q", text, err, want)
			}
			if !strings.Contains(text, "! Running instead: nothing was installed") {
				t.Errorf("show startup-config does not say what runs:\n%.300s", text)
			}
			// An administrator can still configure and write memory, but
			// never over a directory or through another user's symlink.
			if warns, err := ta.Configure(slxACL); err != nil || len(warns) != 1 || warns[0] != heldWarning {
				t.Errorf("first change: %q, %v; want the held-table warning", warns, err)
			}
			if warns, _ := ta.Configure(slxBind); len(warns) != 0 {
				t.Errorf("second change warns %q", warns)
			}
			refuse := tc.name == "directory" || tc.name == "foreign-symlink"
			if err := ta.Save(); refuse != (err != nil) {
				t.Errorf("write memory: %v", err)
			}
			if target, _ := os.ReadFile(ta.startup + ".target"); tc.name == "foreign-symlink" && string(target) != "hostname planted\n" {
				t.Errorf("written through the symlink: %q", target)
			}
		})
	}
}

// TestStartDamagedUsesLastGood: with a last good configuration kept, a
// damaged startup-config starts that instead.
func TestStartDamagedUsesLastGood(t *testing.T) {
	ta := newTestAgent(t)
	ta.opts.LastGoodPath = filepath.Join(filepath.Dir(ta.startup), "last-good-config")
	ta.mustConfigure(t, slxACL, slxBind) // saves the state and the last good config
	ta.Flush()
	want := ta.RunningText()

	tb := newTestAgent(t)
	tb.opts.StartupPath, tb.opts.LastGoodPath = ta.startup, ta.opts.LastGoodPath
	os.WriteFile(ta.startup, []byte("hostname ok\nbogus line\n"), 0o644)
	if _, err := tb.Start(); err != nil {
		t.Fatal(err)
	}
	if tb.RunningText() != want {
		t.Errorf("running after a damaged startup-config:\n%s\nwant the last good:\n%s", tb.RunningText(), want)
	}
	text, _ := tb.StartupText()
	if !strings.Contains(text, ta.startup+":2: % Invalid input") || !strings.Contains(text, "the last configuration applied successfully, from "+ta.opts.LastGoodPath) {
		t.Errorf("show startup-config:\n%s", text)
	}
	// write memory keeps the damaged file aside and clears the error.
	if err := tb.Save(); err != nil {
		t.Fatal(err)
	}
	if kept, _ := os.ReadFile(ta.startup + ".not-loaded"); string(kept) != "hostname ok\nbogus line\n" {
		t.Errorf("file that was not loaded kept as %q", kept)
	}
	if !tb.StartupLoaded() {
		t.Error("error not cleared by write memory")
	}
	// Damaged again: the next copy does not replace the first.
	os.WriteFile(ta.startup, []byte("hostname ok\nother bogus line\n"), 0o644)
	if _, err := tb.Reload(); err == nil {
		t.Fatal("a damaged startup-config reloaded")
	}
	if err := tb.Save(); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(ta.startup + ".not-loaded")
	second, _ := os.ReadFile(ta.startup + ".not-loaded.2")
	if string(first) != "hostname ok\nbogus line\n" || string(second) != "hostname ok\nother bogus line\n" {
		t.Errorf("copies kept: %q and %q", first, second)
	}
}

// TestStartMissingUsesLastGood: a startup-config that went missing where
// a last good configuration is kept is not loaded (as at reload): the
// last good one runs, not an empty config; on a new host (no last good
// one either) the agent starts empty.
func TestStartMissingUsesLastGood(t *testing.T) {
	ta := newTestAgent(t)
	ta.opts.LastGoodPath = filepath.Join(filepath.Dir(ta.startup), "last-good-config")
	if _, err := ta.Start(); err != nil || ta.Running().ACL(acl.IPv4, "check") != nil || !ta.StartupLoaded() {
		t.Fatalf("a new host: Start = %v, loaded %v, running:\n%s", err, ta.StartupLoaded(), ta.RunningText())
	}
	ta.Flush()
	// Its next start too (the last good configuration kept is empty).
	again := newTestAgent(t)
	again.opts.StartupPath, again.opts.LastGoodPath = ta.startup, ta.opts.LastGoodPath
	if _, err := again.Start(); err != nil || !again.StartupLoaded() {
		t.Fatalf("a new host's second start: Start = %v, loaded %v", err, again.StartupLoaded())
	}
	again.Flush()
	ta.mustConfigure(t, slxACL, slxBind)
	ta.Flush()
	want := ta.RunningText()

	tb := newTestAgent(t)
	tb.opts.StartupPath, tb.opts.LastGoodPath = ta.startup, ta.opts.LastGoodPath
	if _, err := tb.Start(); err != nil {
		t.Fatal(err)
	}
	if tb.RunningText() != want || tb.StartupLoaded() {
		t.Errorf("running after a missing startup-config (loaded %v):\n%s\nwant the last good:\n%s", tb.StartupLoaded(), tb.RunningText(), want)
	}
	text, _ := tb.StartupText()
	if !strings.Contains(text, ta.startup+": % Error: the file does not exist") || !strings.Contains(text, "the last configuration applied successfully") {
		t.Errorf("show startup-config:\n%s", text)
	}
	tb.Flush()
	if got, _ := os.ReadFile(ta.opts.LastGoodPath); !strings.Contains(string(got), "ip access-list extended check") {
		t.Errorf("last good configuration overwritten:\n%s", got)
	}
}

// TestStartupNotLoadedSurvivesRestart: an agent restarted in the same
// boot (it adopts the running config and loads no startup-config) still
// knows that the startup-config was not loaded: show startup-config says
// so, and write memory keeps the file aside.
func TestStartupNotLoadedSurvivesRestart(t *testing.T) {
	ta := newTestAgent(t)
	os.WriteFile(ta.startup, []byte("hostname ok\nbogus line\n"), 0o644)
	if _, err := ta.Start(); err != nil || ta.StartupLoaded() {
		t.Fatalf("Start = %v, loaded %v", err, ta.StartupLoaded())
	}
	ta.mustConfigure(t, slxACL)
	tb := newTestAgent(t)
	tb.opts.StartupPath, tb.opts.StatePath = ta.startup, ta.state
	if _, err := tb.Start(); err != nil {
		t.Fatal(err)
	}
	text, _ := tb.StartupText()
	if tb.StartupLoaded() || !strings.Contains(text, "NOT loaded at start: "+ta.startup+":2: % Invalid input") {
		t.Errorf("restarted agent: loaded %v, show startup-config:\n%s", tb.StartupLoaded(), text)
	}
	if err := tb.Save(); err != nil {
		t.Fatal(err)
	}
	if kept, _ := os.ReadFile(ta.startup + ".not-loaded"); string(kept) != "hostname ok\nbogus line\n" {
		t.Errorf("file that was not loaded kept as %q", kept)
	}
	// Loaded now: a restarted agent says nothing more.
	tc := newTestAgent(t)
	tc.opts.StartupPath, tc.opts.StatePath = ta.startup, ta.state
	if _, err := tc.Start(); err != nil || !tc.StartupLoaded() {
		t.Errorf("after write memory: Start = %v, loaded %v", err, tc.StartupLoaded())
	}
}

// TestStartMissingWithDamagedLastGood: a missing startup-config beside a
// last good configuration that cannot be loaded is no empty config: the
// kernel's table is kept, and the last good file too.
func TestStartMissingWithDamagedLastGood(t *testing.T) {
	ta := newTestAgent(t)
	ta.opts.LastGoodPath = filepath.Join(filepath.Dir(ta.startup), "last-good-config")
	damaged := []byte("ip access-list extended check\n permitx\n")
	os.WriteFile(ta.opts.LastGoodPath, damaged, 0o600)
	if _, err := ta.Start(); err != nil {
		t.Fatal(err)
	}
	ta.Flush()
	text, _ := ta.StartupText()
	if ta.StartupLoaded() || !strings.Contains(text, "nothing was installed") {
		t.Errorf("loaded %v, show startup-config:\n%s", ta.StartupLoaded(), text)
	}
	if got, _ := os.ReadFile(ta.opts.LastGoodPath); string(got) != string(damaged) {
		t.Errorf("last good file now %q", got)
	}
}

func TestReloadDamagedShowsLine(t *testing.T) {
	ta := newTestAgent(t)
	ta.mustConfigure(t, slxACL)
	os.WriteFile(ta.startup, []byte("hostname x\n!\nip access-list extended check\n seq 10 permit tcp any any eq 22 time-range never\n"), 0o644)
	if _, err := ta.Reload(); err == nil || !strings.Contains(err.Error(), ta.startup+":4: % Error: time-range \"never\" does not exist") {
		t.Errorf("Reload = %v", err)
	}
	// What only the compiler refuses, in an abbreviated file: still its
	// line (the access-group's).
	os.WriteFile(ta.startup, []byte("hostname x\n!\nip access-l ext check\n permit tcp any any eq 80\nint eth 0/9\n ip access-g check in\n"), 0o644)
	if _, err := ta.Reload(); err == nil || !strings.Contains(err.Error(), ta.startup+":6: % Error: interface ethernet 0/9: no Linux interface") {
		t.Errorf("Reload of an abbreviated file = %v, want its line 6", err)
	}
	if ta.Running().ACL(acl.IPv4, "check") == nil || ta.StartupLoaded() {
		t.Error("failed reload changed the running config, or was not recorded")
	}
	text, _ := ta.StartupText()
	if !strings.HasPrefix(text, "! % This startup-config was NOT loaded at reload: ") {
		t.Errorf("show startup-config:\n%s", text)
	}
}

// TestFramedFilesLoad: what write memory writes loads back; a file of an
// older agent (no header, no end) loads too.
func TestFramedFilesLoad(t *testing.T) {
	ta := newTestAgent(t)
	ta.mustConfigure(t, slxACL, slxBind)
	if err := ta.Save(); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(t.TempDir(), "old-startup-config")
	os.WriteFile(old, []byte(ta.RunningText()), 0o644)
	for _, path := range []string{ta.startup, old} {
		cfg, ok, err := ta.loadConfigFile(path)
		if err != nil || !ok || acl.Format(cfg) != ta.RunningText() {
			t.Errorf("%s: %v, %v", path, ok, err)
		}
	}
}
