package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/slxsh/slxsh/internal/netns"
)

// lineWaiter collects a process's output and waits for a substring
// (prompts included: it reads raw, not by line).
type lineWaiter struct {
	buf  syncBuffer
	seen chan struct{}
}

func newLineWaiter(r io.Reader) *lineWaiter {
	w := &lineWaiter{seen: make(chan struct{}, 1)}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := r.Read(b)
			w.buf.Write(b[:n])
			select {
			case w.seen <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return w
}

// wait blocks until the output contains s, for at most 20 s.
func (w *lineWaiter) wait(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for !strings.Contains(w.buf.String(), s) {
		select {
		case <-w.seen:
		case <-deadline:
			t.Fatalf("no %q in output:\n%s", s, w.buf.String())
		}
	}
}

// TestKernelSandbox runs the README's demo as a user would: `slxsh
// --sandbox` in one terminal, `slxsh --sandbox-connect 5` in another, then
// `show access-list ip check`; on exit nothing is left on the host.
func TestKernelSandbox(t *testing.T) {
	netns.RequireRoot(t)
	sandboxNotRunning(t)
	hostTables, _ := exec.Command("nft", "list", "tables").CombinedOutput()

	sb := exec.Command(filepath.Join(bin, "slxsh"), "--sandbox")
	sbIn, _ := sb.StdinPipe()
	sbOut, _ := sb.StdoutPipe()
	var sbErr bytes.Buffer
	sb.Stderr = &sbErr
	if err := sb.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sb.Wait() }()
	defer func() {
		sb.Process.Kill() // no-op after a clean exit
	}()
	shell := newLineWaiter(sbOut)
	io.WriteString(sbIn, "show version\n")
	shell.wait(t, "Kernel: Linux")
	// The interfaces are the server namespace's, where the agent is.
	io.WriteString(sbIn, "show interface | include Primary\n")
	shell.wait(t, "Primary Internet Address is 10.0.0.2/24")
	// A veth end on the host would name its peer's namespace.
	if links, _ := exec.Command("ip", "-o", "link").CombinedOutput(); strings.Contains(string(links), "slx-") {
		t.Errorf("host links into the sandbox's namespaces:\n%s", links)
	}

	conn := exec.Command(filepath.Join(bin, "slxsh"), "--sandbox-connect", "5")
	connIn, _ := conn.StdinPipe()
	connOut, _ := conn.StdoutPipe()
	if err := conn.Start(); err != nil {
		t.Fatal(err)
	}
	client := newLineWaiter(connOut)
	client.wait(t, "Holding the open connections")
	for _, want := range []string{"connection 3 to 10.0.0.2:22: connected", "connection 4 to 10.0.0.2:22: refused (TCP reset)", "3 of 5 connected, 2 refused."} {
		if !strings.Contains(client.buf.String(), want) {
			t.Errorf("--sandbox-connect output lacks %q:\n%s", want, client.buf.String())
		}
	}

	io.WriteString(sbIn, "show access-list ip check\n")
	shell.wait(t, "(5 matches, 2 refused, 1 at limit)")

	connIn.Close() // "Enter": the connections close
	if err := conn.Wait(); err != nil {
		t.Errorf("--sandbox-connect: %v", err)
	}
	sbIn.Close() // end of the shell's input: the sandbox ends
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("slxsh --sandbox: %v\n%s", err, sbErr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("slxsh --sandbox did not exit")
	}
	out, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	if strings.Contains(string(out), "slx-server") || strings.Contains(string(out), "slx-client") {
		t.Errorf("namespaces left behind:\n%s", out)
	}
	if _, err := os.Stat("/run/slxsh-sandbox.pid"); err == nil {
		t.Error("pid file left behind")
	}
	if after, _ := exec.Command("nft", "list", "tables").CombinedOutput(); !bytes.Equal(after, hostTables) {
		t.Errorf("host nftables tables changed:\n%s\nwas\n%s", after, hostTables)
	}
}

// TestKernelSandboxInteractive starts the sandbox on a terminal, as the
// README says: instructions, then the shell's prompt; exit cleans up.
func TestKernelSandboxInteractive(t *testing.T) {
	netns.RequireRoot(t)
	sandboxNotRunning(t)
	cmd := exec.Command(filepath.Join(bin, "slxsh"), "--sandbox")
	cmd.Env = append(os.Environ(), "TERM=vt100")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	screen := newLineWaiter(tty)
	screen.wait(t, "--sandbox-connect 5")
	screen.wait(t, "sandbox#")
	io.WriteString(tty, "show running-config | include connlimit\r")
	screen.wait(t, "eq 22 connlimit 3")
	io.WriteString(tty, "exit\r")
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("slxsh --sandbox: %v\n%s", err, screen.buf.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("slxsh --sandbox did not exit:\n%s", screen.buf.String())
	}
	if out, _ := exec.Command("ip", "netns", "list").CombinedOutput(); strings.Contains(string(out), "slx-server") {
		t.Errorf("namespaces left behind:\n%s", out)
	}
}

// TestKernelDemoScript runs the README's one command, scripts/demo, on a
// terminal: it builds both binaries and starts the sandbox, whose agent
// answers; exit cleans up.
func TestKernelDemoScript(t *testing.T) {
	netns.RequireRoot(t)
	sandboxNotRunning(t)
	cmd := exec.Command("../../scripts/demo")
	cmd.Env = append(os.Environ(), "TERM=vt100")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer cmd.Process.Kill() // no-op after a clean exit
	screen := newLineWaiter(tty)
	screen.wait(t, "Building bin/slxsh and bin/aclagent")
	screen.wait(t, "bin/slxsh --sandbox-connect 5")
	screen.wait(t, "sandbox#")
	io.WriteString(tty, "show access-list ip check\r")
	screen.wait(t, "connlimit 3 (0 matches, 0 refused")
	io.WriteString(tty, "exit\r")
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("scripts/demo: %v\n%s", err, screen.buf.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("scripts/demo did not exit:\n%s", screen.buf.String())
	}
	if out, _ := exec.Command("ip", "netns", "list").CombinedOutput(); strings.Contains(string(out), "slx-server") {
		t.Errorf("namespaces left behind:\n%s", out)
	}
}

// sandboxNotRunning fails when a live sandbox holds the names the tests
// need (a stale one is cleaned up by the next start).
func sandboxNotRunning(t *testing.T) {
	t.Helper()
	data, err := os.ReadFile("/run/slxsh-sandbox.pid")
	if err != nil {
		return
	}
	if cmdline, err := os.ReadFile("/proc/" + strings.TrimSpace(string(data)) + "/cmdline"); err == nil && strings.Contains(string(cmdline), "slxsh") {
		t.Fatal("a sandbox is running on this machine; the test needs its names")
	}
}

// TestKernelSandboxKilled: a sandbox whose slxsh is killed (SIGKILL, no
// cleanup of its own) is cleaned up by its reaper.
func TestKernelSandboxKilled(t *testing.T) {
	netns.RequireRoot(t)
	sandboxNotRunning(t)
	cmd := exec.Command(filepath.Join(bin, "slxsh"), "--sandbox")
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	shell := newLineWaiter(out)
	io.WriteString(in, "show version\n")
	shell.wait(t, "Kernel: Linux")
	cmd.Process.Kill()
	cmd.Wait()
	gone := false
	for i := 0; i < 100 && !gone; i++ { // at most 10 s
		time.Sleep(100 * time.Millisecond)
		list, _ := exec.Command("ip", "netns", "list").CombinedOutput()
		_, pidErr := os.Stat("/run/slxsh-sandbox.pid")
		gone = !strings.Contains(string(list), "slx-server") && !strings.Contains(string(list), "slx-client") && pidErr != nil
	}
	if !gone {
		t.Fatal("killed sandbox not cleaned up by its reaper")
	}
	if ps, _ := exec.Command("pgrep", "-f", "slxsh-sandbox-.*aclagent.sock").CombinedOutput(); len(ps) > 0 {
		t.Errorf("the sandbox's agent survived: %s", ps)
	}
}
