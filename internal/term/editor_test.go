package term

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// ptyEditor is an Editor on the slave side of a pseudo-terminal; the test
// types on the master side and reads what the editor draws.
type ptyEditor struct {
	t     *testing.T
	ed    *Editor
	ptm   *os.File
	tty   *os.File
	mu    sync.Mutex
	out   bytes.Buffer
	helps []string
}

func newPTYEditor(t *testing.T) *ptyEditor {
	t.Helper()
	ptm, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := pty.Setsize(ptm, &pty.Winsize{Rows: 24, Cols: 80}); err != nil {
		t.Fatal(err)
	}
	p := &ptyEditor{t: t, ptm: ptm, tty: tty}
	p.ed, err = New(Config{
		In:  tty,
		Out: tty,
		Help: func(head string) string {
			p.mu.Lock()
			p.helps = append(p.helps, head)
			p.mu.Unlock()
			return "  running-config  The running configuration\n  version         Versions"
		},
		Complete: func(head string) (string, []string) {
			switch head {
			case "sh":
				return "show ", nil
			case "show r":
				return "show r", []string{"running-config", "rate"}
			}
			return head, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 1024)
		for {
			n, err := ptm.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		p.ed.Close()
		tty.Close()
		ptm.Close()
	})
	return p
}

type lineResult struct {
	line string
	key  Key
	err  error
}

// read types keys and returns the result of one ReadLine.
func (p *ptyEditor) read(prompt, keys string) lineResult {
	p.t.Helper()
	ch := make(chan lineResult, 1)
	go func() {
		l, k, err := p.ed.ReadLine(prompt)
		ch <- lineResult{l, k, err}
	}()
	if keys != "" {
		if _, err := p.ptm.Write([]byte(keys)); err != nil {
			p.t.Fatal(err)
		}
	}
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		p.t.Fatalf("ReadLine did not return after %q; screen %q", keys, p.screen())
	}
	return lineResult{}
}

// screen returns the output once it has stopped changing (bounded).
func (p *ptyEditor) screen() string {
	prev := ""
	for i := 0; i < 100; i++ {
		time.Sleep(20 * time.Millisecond)
		p.mu.Lock()
		s := p.out.String()
		p.mu.Unlock()
		if s == prev && s != "" {
			return s
		}
		prev = s
	}
	return prev
}

func (p *ptyEditor) reset() {
	p.screen()
	p.mu.Lock()
	p.out.Reset()
	p.mu.Unlock()
}

func TestEditorPlainLine(t *testing.T) {
	p := newPTYEditor(t)
	r := p.read("sw# ", "show version\r")
	if r.err != nil || r.line != "show version" || r.key != KeyEnter {
		t.Fatalf("ReadLine = %+v", r)
	}
	if got, want := p.screen(), "sw# show version\r\n"; got != want {
		t.Fatalf("screen %q, want %q", got, want)
	}
}

func TestEditorCRLFIsOneLine(t *testing.T) {
	p := newPTYEditor(t)
	if r := p.read("sw# ", "a\r\n"); r.line != "a" {
		t.Fatalf("first line %+v", r)
	}
	if r := p.read("sw# ", "b\n"); r.line != "b" {
		t.Fatalf("second line %+v, want b (the LF of CR LF is not a line)", r)
	}
}

func TestEditorHelpDoesNotInsert(t *testing.T) {
	p := newPTYEditor(t)
	r := p.read("sw# ", "show ?\r")
	if r.line != "show " {
		t.Fatalf("line %q, want %q", r.line, "show ")
	}
	p.mu.Lock()
	helps := append([]string(nil), p.helps...)
	p.mu.Unlock()
	if len(helps) != 1 || helps[0] != "show " {
		t.Fatalf("Help called with %q", helps)
	}
	want := "sw# show ?\r\n  running-config  The running configuration\r\n  version         Versions\r\nsw# show \r\n"
	if got := p.screen(); got != want {
		t.Fatalf("screen %q, want %q", got, want)
	}
}

func TestEditorQuestionMarkInQuotes(t *testing.T) {
	p := newPTYEditor(t)
	r := p.read("sw# ", "refuse message \"why?\"\r")
	if r.line != "refuse message \"why?\"" {
		t.Fatalf("line %q", r.line)
	}
}

func TestEditorTab(t *testing.T) {
	p := newPTYEditor(t)
	r := p.read("sw# ", "sh\tr\t\r")
	if r.line != "show r" {
		t.Fatalf("line %q, want %q", r.line, "show r")
	}
	want := "sw# show r\r\nrunning-config  rate\r\nsw# show r\r\n"
	if got := p.screen(); got != want {
		t.Fatalf("screen %q, want %q", got, want)
	}
}

// TestEditorTabMidLine: TAB in the middle of a line completes the word
// before the cursor without a second blank before the rest.
func TestEditorTabMidLine(t *testing.T) {
	p := newPTYEditor(t)
	r := p.read("sw# ", "sh version\x01\x06\x06\tx\r") // Ctrl-A, Ctrl-F twice: after "sh"
	if r.line != "show xversion" {
		t.Fatalf("line %q, want %q (the cursor after the blank)", r.line, "show xversion")
	}
}

func TestEditorControlKeys(t *testing.T) {
	p := newPTYEditor(t)
	if r := p.read("sw(config)# ", "hostname x\x1a"); r.key != KeyCtrlZ || r.line != "hostname x" {
		t.Errorf("Ctrl-Z: %+v", r)
	}
	if r := p.read("sw# ", "show bogus\x03"); !errors.Is(r.err, ErrInterrupt) {
		t.Errorf("Ctrl-C: %+v", r)
	}
	if r := p.read("sw# ", "\x04"); r.key != KeyCtrlD || r.err != nil {
		t.Errorf("Ctrl-D: %+v", r)
	}
	if r := p.read("sw# ", "ab\x1b[D\x1b[3~\r"); r.line != "a" {
		t.Errorf("Delete mid-line: %+v", r)
	}
	if r := p.read("sw# ", "\x1b[3~x\r"); r.line != "x" || r.err != nil {
		t.Errorf("Delete on an empty line: %+v", r)
	}
}

func TestEditorTypeAheadAfterCtrlZ(t *testing.T) {
	// chzyer's key reader keeps reading after Ctrl-Z: the keys that follow
	// must land in the next line, not in the one handed back.
	p := newPTYEditor(t)
	if r := p.read("sw(config)# ", "x\x1ay"); r.key != KeyCtrlZ || r.line != "x" {
		t.Fatalf("first: %+v", r)
	}
	p.reset()
	if r := p.read("sw# ", "z\r"); r.line != "yz" {
		t.Fatalf("second: %+v", r)
	}
	if got, want := p.screen(), "sw# yz\r\n"; got != want {
		t.Fatalf("screen %q, want %q", got, want)
	}
}

func TestEditorHistory(t *testing.T) {
	p := newPTYEditor(t)
	p.read("sw# ", "show version\r")
	p.reset()
	if r := p.read("sw# ", "\x1b[A\r"); r.line != "show version" {
		t.Fatalf("up arrow recalled %q", r.line)
	}
	if got, want := p.screen(), "sw# show version\r\n"; got != want {
		t.Fatalf("screen %q, want %q", got, want)
	}
}

func TestEditorCloseRestoresMode(t *testing.T) {
	ptm, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptm.Close()
	defer tty.Close()
	before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	ed, err := New(Config{In: tty, Out: tty})
	if err != nil {
		t.Fatal(err)
	}
	// Read one line before Close: chzyer's Terminal calls wg.Add inside its
	// reader goroutine, which races with a Close right after New.
	go ptm.Write([]byte("x\r"))
	if l, _, err := ed.ReadLine("sw# "); err != nil || l != "x" {
		t.Fatalf("ReadLine = %q, %v", l, err)
	}
	during, _ := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if during.Lflag&(unix.ECHO|unix.ICANON) != 0 || during.Oflag&unix.ONLCR == 0 {
		t.Errorf("editing mode: lflag %#x oflag %#x; want no ECHO/ICANON, ONLCR kept", during.Lflag, during.Oflag)
	}
	if err := ed.Close(); err != nil {
		t.Fatal(err)
	}
	after, _ := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if *after != *before {
		t.Errorf("mode after Close %+v, want %+v", after, before)
	}
}

func TestEditorEndOfInput(t *testing.T) {
	// No goroutine reads the master here: a read blocked on it would keep
	// it open after Close, and the slave would never see the hangup.
	ptm, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	ed, err := New(Config{In: tty, Out: tty})
	if err != nil {
		t.Fatal(err)
	}
	defer ed.Close()
	ch := make(chan lineResult, 1)
	go func() {
		l, k, err := ed.ReadLine("sw# ")
		ch <- lineResult{l, k, err}
	}()
	ptm.Close()
	select {
	case r := <-ch:
		if !errors.Is(r.err, io.EOF) {
			t.Fatalf("ReadLine at end of input = %+v, want io.EOF", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadLine did not return at the end of input")
	}
}

// TestEditorAsk: an answer keeps `?` and ignores TAB (no help, no
// completion), is trimmed, and does not enter history.
func TestEditorAsk(t *testing.T) {
	p := newPTYEditor(t)
	p.read("sw# ", "show version\r")
	ch := make(chan lineResult, 1)
	go func() {
		l, err := p.ed.Ask("Continue? [y/n]:")
		ch <- lineResult{line: l, err: err}
	}()
	if _, err := p.ptm.Write([]byte(" sh\t?\r")); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-ch:
		if r.err != nil || r.line != "sh?" {
			t.Fatalf("Ask = %+v, want %q", r, "sh?")
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Ask did not return; screen %q", p.screen())
	}
	p.mu.Lock()
	helps := len(p.helps)
	p.mu.Unlock()
	if helps != 0 {
		t.Errorf("? while answering asked for help")
	}
	p.reset()
	// Up arrow recalls the last command, not the answer; help works again.
	if r := p.read("sw# ", "\x1b[A\r"); r.line != "show version" {
		t.Errorf("up arrow after an answer recalled %q", r.line)
	}
	if r := p.read("sw# ", "x ?\r"); r.line != "x " {
		t.Errorf("? after Ask: line %q", r.line)
	}
}
