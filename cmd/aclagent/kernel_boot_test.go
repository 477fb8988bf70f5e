package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/netns"
)

// Issue 12: a damaged startup-config never stops the agent; directories
// another user could plant files in make it refuse to start.

// damagedStartup is a startup-config that must not load, and the line its
// error names (0: the file as a whole).
type damagedStartup struct {
	name string
	line int
	put  func(path string) error
}

// damagedStartups are testdata/damaged/NAME.LN.cfg and the cases that
// cannot be files there.
func damagedStartups(t *testing.T) []damagedStartup {
	t.Helper()
	files, _ := filepath.Glob("../../testdata/damaged/*.cfg")
	if len(files) < 12 {
		t.Fatalf("testdata/damaged has %d files", len(files))
	}
	var out []damagedStartup
	for _, f := range files {
		name, l, _ := strings.Cut(strings.TrimSuffix(filepath.Base(f), ".cfg"), ".L")
		line, err := strconv.Atoi(l)
		if err != nil {
			t.Fatalf("%s: no .LN in the name", f)
		}
		data, _ := os.ReadFile(f)
		out = append(out, damagedStartup{name, line, func(p string) error { return os.WriteFile(p, data, 0o644) }})
	}
	return append(out,
		damagedStartup{"directory", 0, func(p string) error { return os.Mkdir(p, 0o755) }},
		damagedStartup{"fifo", 0, func(p string) error { return syscall.Mkfifo(p, 0o644) }},
		damagedStartup{"foreign-symlink", 0, func(p string) error {
			if err := os.Symlink("/etc/hostname", p); err != nil {
				return err
			}
			return os.Lchown(p, guestUID, guestUID)
		}},
	)
}

// scrapeMetrics fetches /metrics from addr inside the agent's namespace.
func scrapeMetrics(t testing.TB, ag *agentProc, addr string) string {
	t.Helper()
	var conn net.Conn
	if err := ag.ns.Do(func() (err error) {
		conn, err = net.Dial("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(conn, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
	body, _ := io.ReadAll(conn)
	return string(body)
}

// TestKernelDamagedStartupConfigs: for each damaged startup-config, an
// agent started on a kernel that holds the table of a previous agent (its
// running-config state gone, as after `rm -r /run/slxsh`) serves its
// socket, keeps the kernel's rules as they were (from the last good
// configuration, or untouched when that is gone too), shows the error with
// its line in show startup-config and the log, says so in the metrics,
// and never exits.
func TestKernelDamagedStartupConfigs(t *testing.T) {
	p, ag := slxSetup(t, "--metrics", "127.0.0.1:9469")
	ag.mustShell(slxExample)
	ag.mustShell("", "-c", "write memory")
	want := nftTable(ag.ns)
	lastGood := filepath.Join(ag.dir, "last-good-config")
	good, err := os.ReadFile(lastGood)
	if err != nil {
		t.Fatalf("no last good configuration kept: %v", err)
	}
	for i, tc := range damagedStartups(t) {
		ag.stop()
		os.RemoveAll(ag.startup)
		os.Remove(filepath.Join(ag.dir, "running-config"))
		if err := tc.put(ag.startup); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		keepLastGood := i%2 == 0
		os.WriteFile(lastGood, good, 0o600)
		if !keepLastGood {
			os.Remove(lastGood)
		}
		ag.start()
		where := ag.startup + ": % "
		if tc.line > 0 {
			where = fmt.Sprintf("%s:%d: %% ", ag.startup, tc.line)
		}
		show := ag.shell("", "-c", "show startup-config")
		if show.code != 0 || !strings.HasPrefix(show.out, "! % This startup-config was NOT loaded at start: "+where) {
			t.Errorf("%s: show startup-config does not name %q: %.400v", tc.name, where, show)
		}
		if !strings.Contains(ag.log.String(), "level=ERROR msg=\"startup-config not loaded\"") {
			t.Errorf("%s: error not logged:\n%s", tc.name, ag.log)
		}
		if got := nftTable(ag.ns); got != want {
			t.Errorf("%s (last good kept: %v): kernel table changed:\n%s\nwant\n%s", tc.name, keepLastGood, got, want)
		}
		if m := scrapeMetrics(t, ag, "127.0.0.1:9469"); !strings.Contains(m, "\nslxsh_agent_startup_config_loaded 0\n") {
			t.Errorf("%s: metrics do not say the startup-config was not loaded", tc.name)
		}
		t.Logf("%s: %s", tc.name, strings.SplitN(show.out, "\n", 2)[0])
	}
	// Still the same agent, still enforcing; an administrator repairs it.
	time.Sleep(time.Second)
	select {
	case err := <-ag.done:
		ag.done <- err
		t.Fatalf("agent exited: %v\n%s", err, ag.log)
	default:
	}
	expectN(t, p.Client, ssh, 3, netns.Connected)
	p.Client.Expect(t, "", ssh, netns.Reset)
	os.RemoveAll(ag.startup)
	ag.mustShell(slxExample)
	ag.mustShell("", "-c", "write memory")
	if show := ag.mustShell("", "-c", "show startup-config"); strings.Contains(show, "NOT loaded") {
		t.Errorf("after write memory:\n%s", show)
	}
}

// TestKernelPlantedSymlinkRefused: a socket directory created by another
// user, with a symlink planted where the agent keeps its running-config,
// makes the agent refuse to start (exit 78, which the unit does not
// restart), without writing through the link or touching the kernel; so
// does a directory others may write to.
func TestKernelPlantedSymlinkRefused(t *testing.T) {
	netns.RequireRoot(t)
	ns := netns.New(t)
	base, err := os.MkdirTemp("", "aclagent-planted-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	os.Chmod(base, 0o755)
	precious := filepath.Join(base, "precious")
	os.WriteFile(precious, []byte("root's file\n"), 0o600)
	for _, tc := range []struct {
		name  string
		setup func(dir string)
		want  string
	}{
		{"owned by another user", func(dir string) { os.Chown(dir, guestUID, guestUID) }, "is owned by uid 65534, not root"},
		{"writable by others", func(dir string) { os.Chmod(dir, 0o777) }, "is writable by group or others"},
	} {
		dir := filepath.Join(base, strings.ReplaceAll(tc.name, " ", "-"))
		os.Mkdir(dir, 0o755)
		link := filepath.Join(dir, "running-config")
		os.Symlink(precious, link)
		os.Lchown(link, guestUID, guestUID)
		tc.setup(dir)
		cmd := exec.Command("ip", "netns", "exec", ns.Name, filepath.Join(bin, "aclagent"),
			"--socket", filepath.Join(dir, "aclagent.sock"), "--config", filepath.Join(base, "startup-config"), "--mgmt-interface", "lo")
		out, err := cmd.CombinedOutput()
		code := -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != exitUnsafe || !strings.Contains(string(out), "refusing to start: unsafe directory: "+dir+" "+tc.want) {
			t.Errorf("%s: exit %d (want %d):\n%s", tc.name, code, exitUnsafe, out)
		}
		if got, _ := os.ReadFile(precious); string(got) != "root's file\n" {
			t.Errorf("%s: written through the planted symlink: %q", tc.name, got)
		}
		if tables := ns.MustExec(t, "nft", "list", "tables"); strings.Contains(tables, "slxsh") {
			t.Errorf("%s: table created:\n%s", tc.name, tables)
		}
	}
}
