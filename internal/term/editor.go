// Package term is slxsh's interactive line editor: github.com/chzyer/readline
// decodes keys and does the editing and history, and a Renderer of ours draws
// the line incrementally.
//
// Why not chzyer's own drawing: its RuneBuffer redraws the whole line for
// every change (RuneBuffer.Refresh = clean() "\x1b[J\x1b[2K\r" + print()), and
// print() appends " \b" whenever isInLineEdge() is true, which SplitByLine
// makes true for every empty line. A prompt therefore arrives as
// "\x1b[J\x1b[2K\rHOST# \b" and every keystroke as a full redraw, which
// automation clients (Netmiko, Ansible network_cli) capture as command
// output and whose prompt patterns never match. chzyer draws nothing when
// Config.FuncIsTerminal reports false, so the editor says so and draws from
// the Listener callback (the line and cursor after every key) instead.
// See cmd/slxsh/AUTOMATION.md for the captured bytes.
package term

import (
	"errors"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/chzyer/readline"
)

// Key tells how a line was ended.
type Key int

// How a line was ended.
const (
	KeyEnter Key = iota // Enter (CR, LF or CR LF)
	KeyCtrlZ            // Ctrl-Z: the line, then back to exec
	KeyCtrlD            // Ctrl-D on an empty line
)

// ErrInterrupt is returned by ReadLine when Ctrl-C cancels the line.
var ErrInterrupt = errors.New("interrupted")

// Config configures an Editor.
type Config struct {
	In  *os.File // the terminal to read keys from
	Out *os.File // the terminal to draw on

	// Help returns the help listing for `?` typed after head (the line up to
	// the cursor). The listing is printed under the line, which is then
	// drawn again as typed; `?` is not inserted.
	Help func(head string) string

	// Complete completes head (the line up to the cursor) for TAB. It returns
	// the new head (head itself when nothing can be added) and the
	// candidates to list (none when the completion was unique).
	Complete func(head string) (newHead string, list []string)

	// HistoryLimit is the number of lines kept in history (default 500).
	HistoryLimit int
}

// Editor reads lines from a terminal with editing, history, `?` help and TAB
// completion. Create it with New and Close it before the program exits.
type Editor struct {
	cfg     Config
	rl      *readline.Instance
	stdin   *readline.CancelableStdin
	restore func() error

	mu        sync.Mutex // guards the fields below and the renderer
	cond      *sync.Cond // signalled when a new line starts or on Close
	r         *Renderer
	closed    bool
	submitted bool // the line was handed back; ignore late callbacks
	tab       bool // TAB was pressed; complete in the listener
	ctrlZ     bool
	ctrlD     bool
	last      rune
	keyMode   bool // ReadKey: any key ends the read
	key       rune // the key ReadKey got
	plain     bool // Ask: `?` is a character, TAB does nothing
}

// New puts the terminal in raw input mode and returns an editor on it.
func New(cfg Config) (*Editor, error) {
	if cfg.HistoryLimit == 0 {
		cfg.HistoryLimit = 500
	}
	restore, err := MakeInputRaw(int(cfg.In.Fd()))
	if err != nil {
		return nil, err
	}
	e := &Editor{cfg: cfg, restore: restore, stdin: readline.NewCancelableStdin(newKeyReader(cfg.In))}
	e.cond = sync.NewCond(&e.mu)
	outFd := int(cfg.Out.Fd())
	e.r = NewRenderer(cfg.Out, func() int { return Width(outFd) })
	nop := func() error { return nil }
	rl, err := readline.NewEx(&readline.Config{
		Stdin:                  e.stdin,
		Stdout:                 io.Discard, // we draw; see the package comment
		Stderr:                 io.Discard,
		HistoryLimit:           cfg.HistoryLimit,
		DisableAutoSaveHistory: false,
		FuncIsTerminal:         func() bool { return false },
		FuncMakeRaw:            nop, // raw mode holds for the whole session
		FuncExitRaw:            nop,
		FuncGetWidth:           func() int { return Width(outFd) },
		FuncOnWidthChanged:     func(func()) {},
		FuncFilterInputRune:    e.filter,
		Listener:               readline.FuncListener(e.onChange),
		AutoComplete:           noCompleter{},
	})
	if err != nil {
		restore()
		return nil, err
	}
	e.mu.Lock() // filter reads it under the lock, on chzyer's goroutine
	e.rl = rl
	e.mu.Unlock()
	return e, nil
}

// ReadLine shows prompt and returns the line typed and how it was ended.
// Ctrl-C gives ErrInterrupt, the end of input io.EOF.
func (e *Editor) ReadLine(prompt string) (string, Key, error) {
	e.mu.Lock()
	e.submitted, e.tab, e.ctrlZ, e.ctrlD = false, false, false, false
	e.r.Start(prompt)
	e.cond.Broadcast()
	e.mu.Unlock()

	line, err := e.rl.Readline()

	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case errors.Is(err, readline.ErrInterrupt):
		return "", KeyEnter, ErrInterrupt
	case errors.Is(err, io.EOF) && e.ctrlD:
		return "", KeyCtrlD, nil
	case err != nil:
		if !e.submitted {
			e.r.Break("")
		}
		return "", KeyEnter, err
	case e.ctrlZ:
		return line, KeyCtrlZ, nil
	}
	return line, KeyEnter, nil
}

// Ask shows prompt (a question such as "... [y/n]:") and returns the
// answer typed, trimmed. `?` is an ordinary character and TAB does nothing
// while answering, and the answer is not kept in history. Ctrl-C gives
// ErrInterrupt, the end of input io.EOF.
func (e *Editor) Ask(prompt string) (string, error) {
	e.mu.Lock()
	e.plain = true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.plain = false
		e.mu.Unlock()
	}()
	line, key, err := e.ReadLine(prompt)
	if err == nil && key == KeyCtrlD {
		err = io.EOF
	}
	return strings.TrimSpace(line), err
}

// ReadKey shows prompt (e.g. " --More-- "), waits for one key and erases
// the prompt again. It returns the key (Enter as '\r'); the end of input
// gives io.EOF.
func (e *Editor) ReadKey(prompt string) (rune, error) {
	e.mu.Lock()
	e.submitted, e.tab, e.ctrlZ, e.ctrlD = false, false, false, false
	e.keyMode, e.key = true, 0
	e.r.Start(prompt)
	e.cond.Broadcast()
	e.mu.Unlock()

	_, err := e.rl.Readline()

	e.mu.Lock()
	defer e.mu.Unlock()
	e.keyMode = false
	blank := strings.Repeat(" ", len([]rune(prompt)))
	e.r.Write([]byte("\r" + blank + "\r"))
	if e.key == 0 {
		if err == nil {
			err = io.EOF
		}
		return 0, err
	}
	return e.key, nil
}

// Write writes output between lines (not while ReadLine runs).
func (e *Editor) Write(p []byte) (int, error) {
	return e.cfg.Out.Write(p)
}

// Close stops reading and restores the terminal mode.
func (e *Editor) Close() error {
	e.mu.Lock()
	e.closed = true
	e.cond.Broadcast()
	e.mu.Unlock()
	// chzyer's Close does not close the reader it wraps (FillableStdin),
	// and its key reader may be blocked in a read (after Ctrl-Z, which it
	// does not see as the end of a line): close ours first.
	e.stdin.Close()
	err := e.rl.Close()
	if rerr := e.restore(); err == nil {
		err = rerr
	}
	return err
}

// RestoreMode gives the terminal back in the mode New found it, without
// stopping the editor: for a program about to exit on a signal.
func (e *Editor) RestoreMode() error {
	return e.restore()
}

// filter sees every key before chzyer does (Config.FuncFilterInputRune).
// It handles the keys whose display we own and returns false for keys
// chzyer must not process.
func (e *Editor) filter(r rune) (rune, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	// A key typed after Ctrl-Z (which chzyer's reader does not treat as
	// the end of a line) belongs to the next line: wait for it to start.
	for e.submitted && !e.closed {
		e.cond.Wait()
	}
	if e.closed {
		return r, true
	}
	// Why here: chzyer saves a line to its history on its own goroutine,
	// right after handing the line over; switching history off and on
	// from ours around Ask raced with that save (and an answer could land
	// in history). This runs on chzyer's goroutine, before the key.
	if e.rl != nil {
		if e.plain {
			e.rl.HistoryDisable()
		} else {
			e.rl.HistoryEnable()
		}
	}
	prev := e.last
	e.last = r
	if e.keyMode {
		switch {
		case r == 0: // end of input
			return r, true
		case r == readline.CharCtrlJ && prev == readline.CharEnter:
			return r, false
		}
		e.key, e.submitted = r, true
		return readline.CharEnter, true // hand back the (empty) line
	}
	line, pos := e.r.Line()
	switch r {
	case 0: // end of input; chzyer submits a non-empty line first
		if len(line) > 0 {
			e.submit("")
		}
	case readline.CharCtrlJ:
		if prev == readline.CharEnter { // CR LF is one Enter
			return r, false
		}
		e.submit("")
	case readline.CharEnter:
		e.submit("")
	case readline.CharCtrlZ:
		e.ctrlZ = true
		e.submit("^Z")
		return readline.CharEnter, true
	case readline.CharInterrupt:
		e.submit("^C")
	case readline.CharDelete:
		if len(line) == 0 {
			e.ctrlD = true
			e.submit("")
		}
	case keyDelete:
		if pos == len(line) {
			return r, false // not Ctrl-D: never the end of input
		}
		return readline.CharDelete, true
	case readline.CharTab:
		if e.plain {
			return r, false
		}
		// chzyer's completer draws its own menu; instead turn TAB into a
		// key chzyer ignores and complete when the listener runs.
		e.tab = true
		return readline.CharBell, true
	case '?':
		if e.plain || inQuotes(line[:pos]) {
			return r, true
		}
		e.help(line, pos)
		return r, false
	case readline.CharCtrlL:
		e.r.Break("")
		e.r.Write([]byte("\x1b[H\x1b[2J"))
		e.r.Redraw()
		return r, false
	case readline.CharBckSearch, readline.CharFwdSearch:
		return r, false // incremental search draws on its own; not offered
	}
	return r, true
}

// onChange is called by chzyer after every key with the new line and
// cursor (readline.Listener). It draws the change.
func (e *Editor) onChange(line []rune, pos int, key rune) ([]rune, int, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case key == 0, e.submitted, e.closed,
		key == readline.CharEnter, key == readline.CharCtrlJ, key == readline.CharInterrupt:
		return nil, 0, false // start of line, or a late call for a submitted one
	case e.tab:
		e.tab = false
		if nl, np, ok := e.complete(line, pos); ok {
			e.r.Update(nl, np)
			return append([]rune(nil), nl...), np, true
		}
		return nil, 0, false
	}
	e.r.Update(line, pos)
	return nil, 0, false
}

func (e *Editor) submit(suffix string) {
	e.r.Break(suffix)
	e.submitted = true
}

// help prints the listing for `?` and draws the line again.
func (e *Editor) help(line []rune, pos int) {
	e.r.Break("?")
	if e.cfg.Help != nil {
		text := e.cfg.Help(string(line[:pos]))
		if text != "" && !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		e.r.Write([]byte(text))
	}
	e.r.Redraw()
}

// complete runs the completer on the text before the cursor. It lists the
// candidates when there are several and returns the completed line.
func (e *Editor) complete(line []rune, pos int) ([]rune, int, bool) {
	if e.cfg.Complete == nil {
		return nil, 0, false
	}
	head := string(line[:pos])
	newHead, list := e.cfg.Complete(head)
	if len(list) > 0 {
		e.r.Break("")
		e.r.Write([]byte(columns(list, Width(int(e.cfg.Out.Fd())))))
		e.r.Redraw()
	}
	if newHead == head {
		return nil, 0, false
	}
	nh := []rune(newHead)
	tail := line[pos:]
	if n := len(nh); n > 0 && nh[n-1] == ' ' && len(tail) > 0 && (tail[0] == ' ' || tail[0] == '\t') {
		nh = nh[:n-1] // completed in the middle of a line: its blank is there already
		nl := append(append([]rune(nil), nh...), tail...)
		return nl, len(nh) + 1, true
	}
	nl := append(append([]rune(nil), nh...), tail...)
	return nl, len(nh), true
}

// columns lays out words in columns across width cells, one row per line.
func columns(words []string, width int) string {
	if width <= 0 {
		width = 80
	}
	colw := 0
	for _, w := range words {
		colw = max(colw, len(w)+2)
	}
	per := max(1, width/colw)
	var b strings.Builder
	for i, w := range words {
		b.WriteString(w)
		if (i+1)%per == 0 || i == len(words)-1 {
			b.WriteString("\n")
		} else {
			b.WriteString(strings.Repeat(" ", colw-len(w)))
		}
	}
	return b.String()
}

// inQuotes reports whether s ends inside a double-quoted string, where `?`
// is an ordinary character (refuse message "...?").
func inQuotes(s []rune) bool {
	n := 0
	for _, r := range s {
		if r == '"' {
			n++
		}
	}
	return n%2 == 1
}

// noCompleter stops chzyer from drawing its own completion menu.
type noCompleter struct{}

func (noCompleter) Do([]rune, int) ([][]rune, int) { return nil, 0 }
