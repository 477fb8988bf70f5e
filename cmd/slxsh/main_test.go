package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/agent/wire"
	"github.com/slxsh/slxsh/internal/cli"
)

// slxshBin is the slxsh binary built once for the tests that run it.
var slxshBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "slxsh-test-")
	if err != nil {
		panic(err)
	}
	slxshBin = filepath.Join(dir, "slxsh")
	build := exec.Command("go", "build", "-o", slxshBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		panic("build slxsh: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// hostName is the prompt's HOST when no hostname is configured.
func hostName(t *testing.T) string {
	t.Helper()
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	h, _, _ = strings.Cut(h, ".")
	return h
}

// runSlxsh runs the binary with args and stdin (nil: /dev/null) and returns
// its stdout, stderr and exit status.
func runSlxsh(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	// --offline: these tests exercise the shell alone, without aclagent.
	cmd := exec.Command(slxshBin, append([]string{"--offline"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}

const slxExample = `conf term
ip access-list extended check
permit tcp host 10.24.12.107 host 10.24.12.129 eq 22 connlimit 3
end
conf term
interface management 0
ip access-group check in
end
`

var slxExampleRunning = []string{
	"ip access-list extended check\n",
	"\n seq 10 permit tcp host 10.24.12.107 host 10.24.12.129 eq 22 connlimit 3\n",
	"\ninterface management 0\n",
	"\n ip access-group check in\n",
}

func wantContains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, got)
		}
	}
}

func TestScriptStdin(t *testing.T) {
	out, errOut, code := runSlxsh(t, slxExample+"show running-config\n")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	wantContains(t, "output", out, slxExampleRunning...)
	wantContains(t, "output", out, "Entering configuration mode terminal")
	if strings.Contains(out, hostName(t)+"#") {
		t.Errorf("scripted output shows a prompt:\n%s", out)
	}
}

func TestScriptFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "cfg.txt")
	if err := os.WriteFile(f, []byte(slxExample+"show running-config\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runSlxsh(t, "", "-f", f)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	wantContains(t, "output", out, slxExampleRunning...)
}

func TestScriptCommand(t *testing.T) {
	cmds := strings.ReplaceAll(strings.TrimSpace(slxExample), "\n", "; ") + "; show running-config"
	out, errOut, code := runSlxsh(t, "", "-c", cmds)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	wantContains(t, "output", out, slxExampleRunning...)
}

func TestScriptErrorNamesLine(t *testing.T) {
	f := filepath.Join(t.TempDir(), "bad.txt")
	script := "configure terminal\nip access-list extended a\npermit tcp any any bogus\nend\nshow running-config\n"
	if err := os.WriteFile(f, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, stdin string
		args        []string
		prefix      string
	}{
		{"file", "", []string{"-f", f}, f + ":3: %"},
		{"stdin", script, nil, "<stdin>:3: %"},
		{"command", "", []string{"-c", strings.ReplaceAll(script, "\n", ";")}, "<command>:3: %"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runSlxsh(t, tc.stdin, tc.args...)
			if code == 0 {
				t.Errorf("exit status 0 after an error")
			}
			if errOut != "" {
				t.Errorf("stderr = %q, want the error on stdout", errOut)
			}
			wantContains(t, "output", out, "\n"+tc.prefix)
			if strings.Contains(out, "access-list") {
				t.Errorf("commands after the error ran:\n%s", out)
			}
		})
	}
}

// TestScriptCaretAfterTab: a line indented with a tab gets a tab in the
// caret's line too, so that the terminal puts the caret under the token.
func TestScriptCaretAfterTab(t *testing.T) {
	out, _, code := runSlxsh(t, "conf t\nip access-list extended a\n\tpermit tcp any any eq bogus\n", "--offline")
	want := "<stdin>:3: \tpermit tcp any any eq bogus\n" + strings.Repeat(" ", len("<stdin>:3: ")) + "\t" + strings.Repeat(" ", len("permit tcp any any eq ")) + "^\n"
	if code == 0 || !strings.Contains(out, want) {
		t.Errorf("exit %d, output %q, want %q", code, out, want)
	}
}

func TestScriptBadBlockAppliesNothing(t *testing.T) {
	// The script stops at its first error, so the state after a bad block
	// is read from the backend the script ran against (in process, through
	// the same script function the binary uses).
	good := "configure terminal\nip access-list extended keep\npermit tcp any any eq 22\nend\n"
	bad := "configure terminal\nhostname changed\nip access-list extended lost\npermit udp any any eq 53\n" +
		"interface management 0\nip access-group lost in\nip access-group nosuchacl out\n"
	for _, tc := range []struct {
		name, script string
		fails        bool
	}{
		{"bad block at EOF", good + bad, true},
		{"bad block then end", good + bad + "end\nshow running-config\n", true},
		{"control: good lines only", good + strings.TrimSuffix(bad, "ip access-group nosuchacl out\n") + "end\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := cli.NewMemoryBackend(acl.New())
			var out, errb bytes.Buffer
			code := script(cli.NewSession(b, "sw"), strings.NewReader(tc.script), "cfg", &out, &errb)
			if (code != 0) != tc.fails {
				t.Fatalf("exit %d, stderr %q", code, errb.String())
			}
			c, err := b.Running()
			if err != nil {
				t.Fatal(err)
			}
			running := acl.Format(c)
			wantContains(t, "running-config", running, "ip access-list extended keep")
			applied := strings.Contains(running, "extended lost") || strings.Contains(running, "host-name changed")
			if tc.fails {
				wantContains(t, "output", out.String(), "cfg:11: %")
				if applied {
					t.Errorf("part of the failed block was applied:\n%s", running)
				}
			} else if !applied {
				t.Errorf("the good block was not applied:\n%s", running)
			}
		})
	}
}

func TestHelpFlag(t *testing.T) {
	out, _, code := runSlxsh(t, "", "--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	wantContains(t, "--help", out, "--socket", "-f FILE", "-c", "--sandbox", "SLXSH_SOCKET")
	if !strings.HasSuffix(out, "help\n") {
		t.Errorf("--help output does not end in a newline: %q", out[max(0, len(out)-40):])
	}
}

// TestScriptCopyDoesNotAsk: scripted, copy running-config startup-config
// saves without the terminal's confirmation question (and the next line is
// a command, not an answer).
func TestScriptCopyDoesNotAsk(t *testing.T) {
	out, errOut, code := runSlxsh(t, "conf t\nip access-list extended a\npermit ip any any\nend\ncopy running-config startup-config\nshow startup-config\n")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q, stdout %q", code, errOut, out)
	}
	if strings.Contains(out, "[y/n]") || !strings.Contains(out, " seq 10 permit ip any any\n") {
		t.Errorf("stdout %q", out)
	}
}

func TestBadFlag(t *testing.T) {
	_, errOut, code := runSlxsh(t, "", "--bogus")
	if code == 0 || !strings.HasPrefix(errOut, "% ") {
		t.Fatalf("exit %d, stderr %q; want failure with a %% message", code, errOut)
	}
}

func TestSplitCommands(t *testing.T) {
	got := splitCommands(`conf t; ip access-list extended a ;permit tcp any any refuse message "a; b";end`)
	want := "conf t\nip access-list extended a\npermit tcp any any refuse message \"a; b\"\nend\n"
	if got != want {
		t.Fatalf("splitCommands = %q, want %q", got, want)
	}
}

func TestSocketPath(t *testing.T) {
	t.Setenv("SLXSH_SOCKET", "/tmp/env.sock")
	if got := socketPath("/tmp/flag.sock"); got != "/tmp/flag.sock" {
		t.Errorf("flag: %q", got)
	}
	if got := socketPath(""); got != "/tmp/env.sock" {
		t.Errorf("env: %q", got)
	}
	t.Setenv("SLXSH_SOCKET", "")
	if got := socketPath(""); got != defaultSocket {
		t.Errorf("default: %q", got)
	}
}

func TestCompleter(t *testing.T) {
	complete := completer(cli.NewSession(cli.NewMemoryBackend(acl.New()), "sw"))
	for _, tc := range []struct {
		head, want string
		list       bool
	}{
		{"conf", "configure ", false},
		{"configure t", "configure terminal ", false},
		{"co", "co", true}, // configure, copy
		{"show ru", "show running-config ", false},
		{"show xyz", "show xyz", false}, // nothing to offer
	} {
		got, list := complete(tc.head)
		if got != tc.want || (len(list) > 0) != tc.list {
			t.Errorf("complete(%q) = %q, %q; want %q, list %v", tc.head, got, list, tc.want, tc.list)
		}
	}
	if got := commonPrefix([]string{"running-config", "running-x", "run"}); got != "run" {
		t.Errorf("commonPrefix = %q", got)
	}
}

func TestForcedCommand(t *testing.T) {
	for _, tc := range []struct {
		env, cmd string
		ok, bad  bool
	}{
		{"", "", false, false},
		{"  ", "", false, false},
		{"slxsh", "", false, false},
		{"/usr/local/bin/slxsh ", "", false, false},
		{"/usr/local/bin/slxsh --socket /x", "", false, true},
		{`slxsh -c "show version"`, "", false, true},
		{"show version", "show version", true, false},
		{" show access-list ip check; show version ", "show access-list ip check; show version", true, false},
	} {
		cmd, ok, err := forcedCommand(tc.env)
		if cmd != tc.cmd || ok != tc.ok || (err != nil) != tc.bad {
			t.Errorf("forcedCommand(%q) = %q, %v, %v; want %q, %v, error %v", tc.env, cmd, ok, err, tc.cmd, tc.ok, tc.bad)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "% Error: ") {
			t.Errorf("forcedCommand(%q): %v, not a %% error", tc.env, err)
		}
	}
}

// TestSSHOriginalCommand: under ForceCommand, SSH_ORIGINAL_COMMAND runs as
// -c; its errors print once, on stdout, and the exit status is 1.
func TestSSHOriginalCommand(t *testing.T) {
	t.Setenv("SSH_ORIGINAL_COMMAND", "show version | include SLX-OS")
	out, errOut, code := runSlxsh(t, "")
	if code != 0 || errOut != "" || !strings.HasPrefix(out, "SLX-OS Operating System Version: ") {
		t.Errorf("show version: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, bad := range []string{"show bogus", "show access-list ip nosuch"} {
		t.Setenv("SSH_ORIGINAL_COMMAND", bad)
		out, errOut, code = runSlxsh(t, "")
		if code != 1 || errOut != "" || strings.Count(out, "% ") != 1 || !strings.Contains(out, "<command>:1: % ") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want one %% error on stdout and exit 1", bad, code, out, errOut)
		}
	}
	// -c wins over the environment; slxsh itself reads stdin.
	out, _, code = runSlxsh(t, "", "-c", "show running-config")
	if code != 0 || strings.Contains(out, "%") {
		t.Errorf("-c under SSH_ORIGINAL_COMMAND: exit %d, %q", code, out)
	}
	t.Setenv("SSH_ORIGINAL_COMMAND", "slxsh")
	out, _, code = runSlxsh(t, "show version | include SLX-OS\n")
	if code != 0 || !strings.HasPrefix(out, "SLX-OS Operating System Version: ") {
		t.Errorf("ssh host slxsh < script: exit %d, %q", code, out)
	}
}

// TestScriptErrorOnce: a semantic error of -c is printed once (stdout),
// not again on stderr.
func TestScriptErrorOnce(t *testing.T) {
	out, errOut, code := runSlxsh(t, "", "-c", "show access-list ip nosuch")
	if code != 1 || errOut != "" || out != "<command>:1: % Error: access-list \"nosuch\" does not exist\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestOpenBackendHints: the hint to start aclagent comes with an agent
// that cannot be reached, not with an answer of a running agent (a busy
// agent's refusal used to read "... try again in a moment (start aclagent,
// or use --offline)").
func TestOpenBackendHints(t *testing.T) {
	dir := t.TempDir()
	_, err := openBackend(options{socket: filepath.Join(dir, "none.sock")})
	if err == nil || !strings.Contains(err.Error(), "cannot reach aclagent") || !strings.HasSuffix(err.Error(), "(start aclagent, or use --offline)") {
		t.Errorf("no agent: %v", err)
	}
	sock := filepath.Join(dir, "busy.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const refusal = "% Error: too many connections from uid 0; try again in a moment"
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			json.NewEncoder(c).Encode(wire.Response{Error: refusal})
			c.Close()
		}
	}()
	if _, err := openBackend(options{socket: sock}); err == nil || err.Error() != refusal {
		t.Errorf("busy agent: %v, want %q alone", err, refusal)
	}
}
