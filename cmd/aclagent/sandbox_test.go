package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/netns"
)

// lineWaiter collects a process's output and waits for a substring.
type lineWaiter struct {
	buf  syncBuffer
	seen chan struct{}
}

func newLineWaiter(r io.Reader) *lineWaiter {
	w := &lineWaiter{seen: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			w.buf.Write(append(sc.Bytes(), '\n'))
			select {
			case w.seen <- struct{}{}:
			default:
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
	if _, err := os.Stat("/run/slxsh-sandbox.pid"); err == nil {
		t.Fatal("a sandbox is running on this machine; the test needs its names")
	}
	hostTables, _ := exec.Command("nft", "list", "tables").CombinedOutput()
	hostLinks, _ := exec.Command("ip", "-o", "link").CombinedOutput()

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
	if after, _ := exec.Command("ip", "-o", "link").CombinedOutput(); strings.Count(string(after), "\n") > strings.Count(string(hostLinks), "\n") {
		t.Errorf("host links added:\n%s\nwas\n%s", after, hostLinks)
	}
}
