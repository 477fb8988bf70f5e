package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// ptyShell is slxsh running in a pseudo-terminal of 80x24, as over SSH.
type ptyShell struct {
	t    *testing.T
	cmd  *exec.Cmd
	tty  *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	mark int // expect searches from here
	done chan struct{}
}

// waitLimit bounds every wait; reaching it is a failure, not a measurement.
const waitLimit = 15 * time.Second

func startPTY(t *testing.T, args ...string) *ptyShell {
	t.Helper()
	// --offline: these tests exercise the shell alone, without aclagent.
	return startPTYCmd(t, exec.Command(slxshBin, append([]string{"--offline"}, args...)...))
}

// startPTYCmd runs cmd (slxsh with its arguments) in an 80x24 pseudo-terminal.
func startPTYCmd(t *testing.T, cmd *exec.Cmd) *ptyShell {
	t.Helper()
	cmd.Env = append(os.Environ(), "TERM=vt100")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		t.Fatal(err)
	}
	s := &ptyShell{t: t, cmd: cmd, tty: tty, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			s.mu.Lock()
			s.out.Write(buf[:n])
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		tty.Close()
	})
	return s
}

func (s *ptyShell) send(keys string) {
	s.t.Helper()
	if _, err := s.tty.Write([]byte(keys)); err != nil {
		s.t.Fatal(err)
	}
}

// expect waits until the output after the mark contains want, moves the
// mark past it and returns the output from the old mark through want.
func (s *ptyShell) expect(want string) string {
	s.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		s.mu.Lock()
		all := s.out.String()
		s.mu.Unlock()
		if i := strings.Index(all[s.mark:], want); i >= 0 {
			got := all[s.mark : s.mark+i+len(want)]
			s.mark += i + len(want)
			return got
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no %q in the output after %q", want, all[s.mark:])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// all returns everything the shell wrote so far.
func (s *ptyShell) all() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

func TestPTYInteractive(t *testing.T) {
	h := hostName(t)
	s := startPTY(t)

	// The first prompt: a line break, the prompt, nothing after it.
	if got := s.expect(h + "# "); got != "\r\n"+h+"# " {
		t.Fatalf("first prompt = %q, want %q", got, "\r\n"+h+"# ")
	}

	s.send("conf t\r")
	got := s.expect(h + "(config)# ")
	wantContains(t, "conf t", got, "conf t\r\n", "Entering configuration mode terminal\r\n")

	s.send("ip access-list extended check\r")
	s.expect("ip access-list extended check\r\n" + h + "(conf-ipacl-ext)# ")

	// `?` after a partial word: the help, then the line again as typed.
	s.send("permit tcp host 10.24.12.107 host 10.24.12.129 eq 22 conn?")
	got = s.expect(h + "(conf-ipacl-ext)# permit tcp host 10.24.12.107 host 10.24.12.129 eq 22 conn")
	wantContains(t, "? output", got, "conn?\r\n", "connlimit")
	// The line was not altered: finishing it gives a valid command.
	s.send("limit 3\r")
	got = s.expect(h + "(conf-ipacl-ext)# ")
	if strings.Contains(got, "%") {
		t.Fatalf("the line edited around ? failed: %q", got)
	}

	// TAB completes a unique partial keyword.
	s.send("exit\r")
	s.expect(h + "(config)# ")
	s.send("interf\t")
	s.expect("interf" + "ace ")
	s.send("management 0\r")
	s.expect(h + "(config-Management-0)# ")
	s.send("ip access-group check in\r")
	s.expect("ip access-group check in\r\n" + h + "(config-Management-0)# ")

	// Ctrl-Z returns to exec.
	s.send("\x1a")
	s.expect("\r\n" + h + "# ")

	// Ctrl-C cancels a line: it is not run.
	s.send("show bogus-command\x03")
	got = s.expect(h + "# ")
	if strings.Contains(got, "%") {
		t.Errorf("a cancelled line ran: %q", got)
	}

	// TAB with several candidates lists them and keeps the line.
	s.send("c\t")
	got = s.expect(h + "# c")
	wantContains(t, "TAB list", got, "configure", "clear")
	s.send("\x03")
	s.expect(h + "# ")

	s.send("show running-config\r")
	got = s.expect(h + "# ")
	for _, w := range slxExampleRunning {
		wantContains(t, "show running-config", got, strings.ReplaceAll(w, "\n", "\r\n"))
	}

	s.send("exit\r")
	select {
	case <-s.done:
	case <-time.After(waitLimit):
		t.Fatalf("slxsh did not end after exit; output %q", s.all()[s.mark:])
	}
	if err := s.cmd.Wait(); err != nil {
		t.Errorf("exit status: %v", err)
	}
	if all := s.all(); strings.ContainsAny(all, "\x1b\b") {
		t.Errorf("the session contains ESC or BS bytes: %q", all)
	}
}

func TestPTYCtrlDEndsInExec(t *testing.T) {
	h := hostName(t)
	s := startPTY(t)
	s.expect(h + "# ")
	s.send("configure terminal\r")
	s.expect(h + "(config)# ")
	s.send("\x04") // config mode: up one level, like exit
	s.expect(h + "# ")
	s.send("\x04")
	select {
	case <-s.done:
	case <-time.After(waitLimit):
		t.Fatal("slxsh did not end after Ctrl-D in exec")
	}
	if err := s.cmd.Wait(); err != nil {
		t.Errorf("exit status: %v", err)
	}
}

func TestPTYEditingAndHistory(t *testing.T) {
	h := hostName(t)
	s := startPTY(t)
	s.expect(h + "# ")
	// Type a line with a typo, fix it mid-line with the arrow keys, and
	// run it; then recall it from history with the up arrow.
	s.send("show runing-config")
	s.send(strings.Repeat("\x1b[D", 10) + "n") // 10 x left, insert n
	s.send("\r")
	got := s.expect(h + "# ")
	if strings.Contains(got, "% ") {
		t.Fatalf("edited line failed: %q", got)
	}
	s.send("\x1b[A\r") // up: the same command again
	got = s.expect(h + "# ")
	if !strings.HasPrefix(got, "show running-config\r\n") || strings.Contains(got, "% ") {
		t.Fatalf("recalled line failed: %q", got)
	}
}

func TestPTYMore(t *testing.T) {
	h := hostName(t)
	s := startPTY(t)
	s.expect(h + "# ")
	s.send("configure terminal\r")
	s.expect(h + "(config)# ")
	for _, l := range strings.Split(strings.TrimSpace(slxExample), "\n") {
		s.send(l + "\r")
	}
	s.expect("ip access-group check in\r\n" + h + "(config-Management-0)# ")
	s.send("end\r")
	s.expect(h + "# ")

	// running-config is 6 lines: with length 5, 4 lines, --More--, then
	// Space shows the rest.
	s.send("terminal length 5\r")
	s.expect(h + "# ")
	s.send("show running-config\r")
	got := s.expect(" --More-- ")
	_, got, _ = strings.Cut(got, "show running-config\r\n")
	if strings.Count(got, "\r\n") != 4 {
		t.Errorf("first screen %q, want 4 lines of output", got)
	}
	s.send(" ")
	got = s.expect(h + "# ")
	wantContains(t, "second screen", got, "ip access-group check in\r\n!\r\n")

	// q drops the rest.
	s.send("show running-config\r")
	s.expect(" --More-- ")
	s.send("q")
	got = s.expect(h + "# ")
	if strings.Contains(got, "access-group") {
		t.Errorf("q did not stop the output: %q", got)
	}

	// terminal length 0: no paging.
	s.send("terminal length 0\r")
	s.expect(h + "# ")
	s.send("show running-config\r")
	got = s.expect(h + "# ")
	if strings.Contains(got, "More") || !strings.Contains(got, "ip access-group check in") {
		t.Errorf("length 0: %q", got)
	}
	if all := s.all(); strings.ContainsAny(all, "\x1b\b") {
		t.Errorf("ESC or BS in the session: %q", all)
	}
}

func TestPTYSignalRestoresTerminal(t *testing.T) {
	h := hostName(t)
	s := startPTY(t)
	s.expect(h + "# ")
	mode, err := unix.IoctlGetTermios(int(s.tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if mode.Lflag&unix.ECHO != 0 {
		t.Fatal("ECHO is on while editing")
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(waitLimit):
		t.Fatal("slxsh did not end on SIGTERM")
	}
	err = s.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 128+int(syscall.SIGTERM) {
		t.Errorf("exit: %v, want status %d", err, 128+int(syscall.SIGTERM))
	}
	mode, err = unix.IoctlGetTermios(int(s.tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if mode.Lflag&(unix.ECHO|unix.ICANON) != unix.ECHO|unix.ICANON {
		t.Errorf("terminal left with lflag %#x: ECHO/ICANON not restored", mode.Lflag)
	}
}

func TestPTYTypeAheadTranscript(t *testing.T) {
	// All lines written at once, as a fast client would: each is echoed
	// once, after its own prompt, and the transcript is exactly what a
	// switch would show.
	h := hostName(t)
	s := startPTY(t)
	s.expect(h + "# ")
	s.send(strings.ReplaceAll(slxExample, "\n", "\r") + "show running-config\rexit\r")
	select {
	case <-s.done:
	case <-time.After(waitLimit):
		t.Fatalf("slxsh did not end; output %q", s.all())
	}
	want := "\r\n" + h + "# conf term\r\n" +
		"Entering configuration mode terminal\r\n" +
		h + "(config)# ip access-list extended check\r\n" +
		h + "(conf-ipacl-ext)# permit tcp host 10.24.12.107 host 10.24.12.129 eq 22 connlimit 3\r\n" +
		h + "(conf-ipacl-ext)# end\r\n" +
		h + "# conf term\r\n" +
		"Entering configuration mode terminal\r\n" +
		h + "(config)# interface management 0\r\n" +
		h + "(config-Management-0)# ip access-group check in\r\n" +
		h + "(config-Management-0)# end\r\n" +
		h + "# show running-config\r\n" +
		"ip access-list extended check\r\n" +
		" seq 10 permit tcp host 10.24.12.107 host 10.24.12.129 eq 22 connlimit 3\r\n" +
		"!\r\n" +
		"interface management 0\r\n" +
		" ip access-group check in\r\n" +
		"!\r\n" +
		h + "# exit\r\n"
	if got := s.all(); got != want {
		t.Errorf("transcript\n%q\nwant\n%q", got, want)
	}
}

// TestPTYCopyAsks: on a terminal, copy running-config startup-config asks
// before it writes (as SLX-OS): "n" keeps the startup-config, "y" writes
// it; `?` is part of the answer, not help, and an answer that is neither
// is asked again. write memory does not ask.
func TestPTYCopyAsks(t *testing.T) {
	h := hostName(t)
	s := startPTY(t)
	s.expect(h + "# ")
	s.send("conf t\rip access-list extended a\rpermit ip any any\rend\r")
	s.expect("end\r\n" + h + "# ")

	const question = "This operation will modify your startup configuration. Do you want to continue? [y/n]:"
	s.send("copy running-config startup-config\r")
	s.expect("copy running-config startup-config\r\n" + question)
	s.send("n?\r")
	s.expect("n?\r\n" + question)
	s.send("n\r")
	s.expect("n\r\n" + h + "# ")
	s.send("show startup-config\r")
	if got := s.expect(h + "# "); got != "show startup-config\r\n"+h+"# " {
		t.Fatalf("after answering n, show startup-config = %q, want nothing", got)
	}

	s.send("copy run start\r")
	s.expect(question)
	s.send("y\r")
	s.expect("y\r\n" + h + "# ")
	s.send("show startup-config\r")
	wantContains(t, "after answering y", s.expect("!\r\n"+h+"# "), "ip access-list extended a\r\n seq 10 permit ip any any\r\n")

	s.send("write memory\r")
	if got := s.expect(h + "# "); got != "write memory\r\nBuilding configuration...\r\n[OK]\r\n"+h+"# " {
		t.Errorf("write memory = %q, want no question", got)
	}
}
