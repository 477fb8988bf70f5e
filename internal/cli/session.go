package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/slxsh/slxsh/internal/acl"
)

// Version is the slxsh version shown by `show version`.
var Version = "0.1.0"

// Session is the shell logic of one slxsh session without terminal I/O:
// the mode stack, the prompt, help, completion, and the execution of
// lines against a Backend. It is not safe for concurrent use.
type Session struct {
	b           Backend
	defaultHost string
	host        string
	stack       []frame // stack[0] is exec
	done        bool
	history     []string
	length      int
	lengthSet   bool // terminal length was given (else the terminal's height, as IOS takes it over SSH)
	width       int
	confirm     func(question string) (answer string, ok bool) // nil: do not ask (scripts)
	host_       Host                                           // show chassis, show interface, ...
	noMore      bool                                           // the last command's output was piped through nomore
	// remarks are the lines just before, in one list, that added remarks
	// without a seq: a following entry with an explicit seq sends them
	// again with it, so that they go before it (placeRemarks) as they do
	// in a script.
	remarks []remarkLine
	// visit is the list mode of the lines just sent, and visitRemarks
	// counts by text the remarks they sent, with a seq or without
	// (Txn.RemarksBefore).
	visit        frame
	visitRemarks map[string]int
}

// remarkLine is a line that added a remark without a seq, and its text.
type remarkLine struct{ line, text string }

// NewSession returns a session in exec mode. hostname is shown in the
// prompt unless the configuration sets one.
func NewSession(b Backend, hostname string) *Session {
	s := &Session{b: b, defaultHost: hostname, host: hostname, stack: []frame{{kind: modeExec}}, length: 24, width: 80, host_: LinuxHost{}}
	// Only the hostname: a shell that starts must not fetch and parse a
	// running-config of 65535 entries.
	if h, err := Call(b, OpHostname, NoArgs{}); err == nil && h != "" {
		s.host = h
	}
	return s
}

// setHost changes the prompt's host name ("" : the default).
func (s *Session) setHost(name string) {
	if name == "" {
		name = s.defaultHost
	}
	s.host = name
}

// RefreshHost takes the prompt's host name from the running config again
// (kept when the backend cannot be asked): another session, or a revert
// timer that expired, may have changed it since.
func (s *Session) RefreshHost() {
	if h, err := Call(s.b, OpHostname, NoArgs{}); err == nil {
		s.setHost(h)
	}
}

// Prompt returns the prompt of the current mode, e.g. "device(config)# ".
func (s *Session) Prompt() string {
	return s.host + s.stack[len(s.stack)-1].promptSuffix() + "# "
}

// SetConfirm sets how the session asks a yes/no question on a terminal
// (`copy running-config startup-config` asks before it overwrites the
// startup-config). ask shows the question and returns the answer typed;
// ok is false for Ctrl-C or the end of input, which count as no. An
// empty answer is yes; any other that is neither yes nor no is asked again. Without it, and
// always in RunScript, nothing is asked.
func (s *Session) SetConfirm(ask func(question string) (answer string, ok bool)) { s.confirm = ask }

// SetHost sets what show chassis, show interface and the other host
// commands describe (default: this Linux host).
func (s *Session) SetHost(h Host) { s.host_ = h }

// NoMore reports whether the output of the last line was piped through
// `| nomore` (the terminal does not page it).
func (s *Session) NoMore() bool { return s.noMore }

// Done reports whether the session ended (`exit` in exec mode).
func (s *Session) Done() bool { return s.done }

// End returns to exec mode (Ctrl-Z).
func (s *Session) End() { s.stack = s.stack[:1] }

// TerminalLength returns the `terminal length` setting (0: no paging).
func (s *Session) TerminalLength() int { return s.length }

// TerminalLengthSet reports whether `terminal length` was given in this
// session; until it is, a terminal pages at its own height.
func (s *Session) TerminalLengthSet() bool { return s.lengthSet }

// TerminalWidth returns the `terminal width` setting.
func (s *Session) TerminalWidth() int { return s.width }

// inConfig reports whether the session is in a configuration mode.
func (s *Session) inConfig() bool { return len(s.stack) > 1 }

// contextLines are the lines that re-enter the current sub-mode.
func contextLines(st []frame) []string {
	var out []string
	for _, f := range st {
		if l := f.contextLine(); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// parse matches a line in the current mode (with walk-up in configuration
// modes). It returns the configuration stack that the line runs in.
func (s *Session) parse(line string) ([]frame, *parsed, *LineError) {
	if !s.inConfig() {
		p, err := parseLine(grammarOf(s.stack[0]), line)
		if err != nil {
			return nil, nil, lineError(line, err)
		}
		return nil, p, nil
	}
	return parseConfigLine(s.stack[1:], line)
}

// Execute runs one interactive line and writes its output and any error to
// w; for invalid input, a caret line positioned under the bad token (after
// the prompt, as echoed) comes first. A configuration line is one
// transaction. The returned error is the one printed.
func (s *Session) Execute(line string, w io.Writer) error {
	s.noMore = false
	if strings.TrimSpace(line) != "" {
		s.history = append(s.history, line)
	}
	if skipLine(line) {
		return nil
	}
	prompt := s.Prompt()
	st, p, lerr := s.parse(line)
	if lerr != nil {
		s.printError(w, prompt, lerr)
		return lerr
	}
	if err := s.run(st, p, line, w); err != nil {
		s.printError(w, prompt, err)
		return err
	}
	return nil
}

// run carries out a parsed line: an exec command, a mode change, or a
// one-line transaction.
func (s *Session) run(st []frame, p *parsed, line string, w io.Writer) error {
	remarks := s.remarks
	s.remarks = nil
	switch {
	case p.cmd == nil:
		return nil
	case p.cmd.exec != nil:
		return s.runExec(p, w)
	case p.cmd.nav == navEnd:
		s.End()
		return nil
	case p.cmd.nav == navConfig:
		s.stack = s.stack[:2]
		return nil
	case p.cmd.nav == navExit:
		if s.inConfig() {
			s.stack = append(s.stack[:1], st[:len(st)-1]...)
		} else {
			s.done = true
		}
		return nil
	}
	if top := s.stack[len(s.stack)-1]; top != s.visit {
		s.visit, s.visitRemarks = top, map[string]int{}
	}
	t := Txn{Context: contextLines(s.stack), Lines: []string{line}}
	a, isEntry := p.args.(*entryArgs)
	anyRemark := isEntry && a.e.Action == acl.Remark
	remark := anyRemark && a.e.Seq == 0
	if anyRemark && s.visitRemarks[a.e.Remark] > 0 {
		t.RemarksBefore = map[string]int{a.e.Remark: s.visitRemarks[a.e.Remark]}
	}
	err := s.b.Configure(t)
	if err != nil && isEntry && !remark && a.e.Seq != 0 && len(remarks) > 0 && strings.Contains(err.Error(), " already exists in access-list ") {
		// The remarks typed just before took the seq (numbered after the
		// last entry): taken out and added again in one transaction with
		// the entry, they go before it, as in a script (placeRemarks).
		// If that fails too, they stay where they are.
		// (`no remark T` takes the last remark T, the one typed.)
		t.Lines, t.RemarksBefore = nil, map[string]int{}
		for _, r := range remarks {
			t.Lines = append(t.Lines, "no "+strings.TrimSpace(r.line))
			t.RemarksBefore[r.text] = s.visitRemarks[r.text]
		}
		for _, r := range remarks {
			t.Lines = append(t.Lines, r.line)
			t.RemarksBefore[r.text]--
		}
		t.Lines = append(t.Lines, line)
		if s.b.Configure(t) == nil {
			err = nil
		}
	}
	if err != nil {
		return err
	}
	if remark {
		s.remarks = append(remarks, remarkLine{line, a.e.Remark})
	}
	if anyRemark {
		s.visitRemarks[a.e.Remark]++
	}
	s.stack = append(s.stack[:1], st...)
	s.applied(p)
	if p.cmd.enter != nil {
		s.visit = frame{} // entering a list's mode, even the same list's, starts a visit (as in ApplyLines)
	}
	return nil
}

// applied moves into the sub-mode a successful line enters and does the
// session's bookkeeping.
func (s *Session) applied(p *parsed) {
	if p.cmd.enter != nil {
		s.stack = append(s.stack, p.cmd.enter(p.args))
	}
	if p.cmd.after != nil {
		p.cmd.after(s, p.args)
	}
}

// runExec runs an exec command, through its output pipe if it has one.
func (s *Session) runExec(p *parsed, w io.Writer) error {
	s.noMore = false
	if len(p.pipes) == 0 {
		return p.cmd.exec(s, w, p.args)
	}
	filters, err := compilePipes(p.pipes)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	err = p.cmd.exec(s, &buf, p.args)
	out := buf.Bytes()
	for _, f := range filters {
		out = f.filter(out)
		s.noMore = s.noMore || f.kind == pipeNoMore
	}
	if _, werr := w.Write(out); err == nil {
		err = werr
	}
	return err
}

// printError writes an error as the user sees it.
func (s *Session) printError(w io.Writer, prompt string, err error) {
	var le *LineError
	if errors.As(err, &le) && le.Caret() {
		fmt.Fprintf(w, "%s^\n", caretPad(prompt, le))
	}
	fmt.Fprintln(w, userMessage(err))
}

// caretPad is what goes before the caret under the bad token of le's line
// shown after prefix: a blank per character, a tab where the line has one
// (so that the terminal puts both at the same tab stop).
func caretPad(prefix string, le *LineError) string {
	var b strings.Builder
	b.WriteString(strings.Repeat(" ", utf8.RuneCountInString(prefix)))
	for _, r := range le.Text[:min(le.Col, len(le.Text))] {
		if r == '\t' {
			b.WriteByte('\t')
		} else {
			b.WriteByte(' ')
		}
	}
	return b.String()
}

// userMessage is the error text as shown: starting with "%".
func userMessage(err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, "%") {
		return msg
	}
	return "% Error: " + msg
}

// grammars returns the grammars to try for help and completion, innermost
// first.
func (s *Session) grammars() []node {
	var out []node
	for i := len(s.stack) - 1; i >= 0; i-- {
		if i == 0 && s.inConfig() {
			break
		}
		out = append(out, grammarOf(s.stack[i]))
	}
	return out
}

// Help returns the `?` help for the text typed so far (without the `?`):
// the possible next tokens with one line of help each and <cr> when the
// command may end there; for a partial last word, the keywords it begins.
// In a sub-mode, a line that only its parent modes know gets their help.
func (s *Session) Help(line string) string {
	gs := s.grammars()
	for _, g := range gs {
		if items := helpAt(g, line); len(items) > 0 {
			return formatHelp(items)
		}
	}
	// Nothing to offer: say why, as the line would be rejected (in the mode
	// where it gets furthest).
	n := len(tokenize(line))
	if n > 0 && !endsBlank(line) {
		n--
	}
	var best *matchErr
	for _, g := range gs {
		m, err := newMatcher(g, line, n)
		m.release()
		if err == nil {
			// The words before match; the partial word begins nothing.
			err = &matchErr{kind: ErrInvalid, tok: n}
		}
		if best == nil || err.tok > best.tok {
			best = err
		}
	}
	var b strings.Builder
	s.printError(&b, s.Prompt(), lineError(line, best))
	return b.String()
}

func formatHelp(items []helpItem) string {
	width := 0
	for _, it := range items {
		width = max(width, len(it.Token))
	}
	var b strings.Builder
	for _, it := range items {
		if it.Help == "" {
			fmt.Fprintf(&b, "  %s\n", it.Token)
			continue
		}
		fmt.Fprintf(&b, "  %-*s  %s\n", width, it.Token, it.Help)
	}
	return b.String()
}

// Complete returns the keywords the last word of line may complete to
// (every next keyword when line ends in a blank), sorted. A single
// candidate is the completion for TAB.
//
// Names of ACLs and time ranges come from the backend (OpConfigNames), asked
// once per call and only where a name may come.
func (s *Session) Complete(line string) []string {
	var known *Names
	names := func(k nameKind, toks []token) []string {
		if known == nil {
			n, err := Call(s.b, OpConfigNames, NoArgs{})
			if err != nil {
				n = Names{} // an older agent: keywords only
			}
			known = &n
		}
		return known.of(k, toks)
	}
	for _, g := range s.grammars() {
		if c := completeAt(g, line, names); len(c) > 0 {
			return c
		}
	}
	return nil
}

// RunScript runs a script (a file, stdin, or -c commands) without prompts.
// Exec lines run as they come; each `configure terminal` … `end` (or EOF)
// block is one transaction, applied when the block ends, and the exec
// commands inside it (`do write memory`) run after it. The first error is
// printed as "NAME:LINE: % ..." and returned as a *ScriptError; a block
// with an error applies nothing and runs none of its exec commands. An
// error reading r is returned without being printed.
func (s *Session) RunScript(r io.Reader, name string, w io.Writer) error {
	ask := s.confirm
	s.confirm = nil // scripts are never asked anything
	defer func() { s.confirm = ask }()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var blk *block
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if blk == nil {
			if err := s.scriptExec(line, w); err != nil {
				return s.scriptError(w, name, n, line, err)
			}
			if s.done {
				return nil // `exit` ends the script
			}
			if s.inConfig() {
				blk = &block{start: append([]frame(nil), s.stack...)}
			}
			continue
		}
		ln, err := blk.add(s, line, n, w)
		if err != nil {
			return s.scriptError(w, name, ln, blk.textOf(ln, line), err)
		}
		if blk.closed {
			blk = nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%% Error: reading %s: %w", name, err)
	}
	if blk != nil {
		if ln, err := blk.commit(s); err != nil {
			return s.scriptError(w, name, ln, blk.textOf(ln, ""), err)
		}
	}
	return nil
}

// scriptExec runs one exec-mode line of a script.
func (s *Session) scriptExec(line string, w io.Writer) error {
	if skipLine(line) {
		return nil
	}
	s.history = append(s.history, line)
	_, p, lerr := s.parse(line)
	if lerr != nil {
		return lerr
	}
	return s.run(nil, p, line, w)
}

// scriptError prints a script error with its file and line and returns it.
func (s *Session) scriptError(w io.Writer, name string, n int, line string, err error) error {
	s.End()
	var le *LineError
	if errors.As(err, &le) && le.Caret() {
		prefix := fmt.Sprintf("%s:%d: ", name, n)
		fmt.Fprintf(w, "%s%s\n", prefix, le.Text)
		fmt.Fprintf(w, "%s^\n", caretPad(prefix, le))
	}
	fmt.Fprintf(w, "%s:%d: %s\n", name, n, userMessage(err))
	return &ScriptError{Name: name, Line: n, Err: err}
}

// ScriptError is the error of a script line, which RunScript has printed
// already (as NAME:LINE: % ...).
type ScriptError struct {
	Name string
	Line int
	Err  error
}

// Error returns the message as printed.
func (e *ScriptError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.Name, e.Line, userMessage(e.Err))
}

// Unwrap returns the line's error.
func (e *ScriptError) Unwrap() error { return e.Err }

// block is a scripted configuration block being collected.
type block struct {
	start  []frame // the session stack when the block began
	lines  []string
	nums   []int     // script line number of each line
	cmds   []*parsed // parsed lines, for the session's bookkeeping
	execs  []deferredExec
	closed bool
}

// deferredExec is an exec command of a block, run once the block applied.
type deferredExec struct {
	p    *parsed
	line int
	w    io.Writer
}

// add checks one line of the block and collects it; `end`, or `exit` from
// global configuration, commits the block. It returns the script line of
// an error.
func (b *block) add(s *Session, line string, n int, w io.Writer) (int, error) {
	if skipLine(line) {
		return n, nil
	}
	s.history = append(s.history, line)
	if entryLine(s.stack, line) {
		// Checked once, by the backend that applies the block (its error
		// names the line); the shell only needs to know that the line
		// leaves the mode as it is.
		b.lines, b.nums = append(b.lines, line), append(b.nums, n)
		return n, nil
	}
	st, p, lerr := s.parse(line)
	if lerr != nil {
		return n, lerr
	}
	switch {
	case p.cmd == nil:
		return n, nil
	case p.cmd.exec != nil && (p.cmd.changes || p.cmd.configure):
		return n, fmt.Errorf("%% Error: %q changes the system, and the exec commands of a configuration block run after it: put it after end", strings.TrimSpace(line))
	case p.cmd.exec != nil:
		// An exec command (`do CMD`, or CMD alone) runs once the block is
		// applied, so that `do write memory` saves what the block
		// configured and a `show` shows it; a block that fails applies
		// nothing and runs none of them.
		b.execs = append(b.execs, deferredExec{p, n, w})
		return n, nil
	case p.cmd.nav == navEnd || p.cmd.nav == navExit && len(st) == 1:
		b.lines, b.nums = append(b.lines, line), append(b.nums, n)
		return b.commit(s)
	case p.cmd.nav == navExit:
		s.stack = append(s.stack[:1], st[:len(st)-1]...)
	case p.cmd.nav == navConfig:
		s.stack = s.stack[:2]
	default:
		s.stack = append(s.stack[:1], st...)
		if p.cmd.enter != nil {
			s.stack = append(s.stack, p.cmd.enter(p.args))
		}
		b.cmds = append(b.cmds, p)
	}
	b.lines, b.nums = append(b.lines, line), append(b.nums, n)
	return n, nil
}

// commit applies the block as one transaction, returns to exec mode and
// runs the block's exec commands.
func (b *block) commit(s *Session) (int, error) {
	b.closed = true
	s.End()
	if ln, err := b.send(s); err != nil {
		return ln, err
	}
	for _, x := range b.execs {
		if err := s.runExec(x.p, x.w); err != nil {
			// Its block is applied: say so, or the error reads as if
			// nothing of it were (SPEC: a block with an error applies
			// nothing).
			return x.line, fmt.Errorf("%s (run after its configuration block, which is applied)", userMessage(err))
		}
	}
	return 0, nil
}

// send sends the block's lines to the backend and runs their commands'
// bookkeeping; on an error it returns the script line it names.
func (b *block) send(s *Session) (int, error) {
	t := Txn{Context: contextLines(b.start), Lines: b.lines}
	if err := s.b.Configure(t); err != nil {
		var le *LineError
		last := 0
		if len(b.nums) > 0 {
			last = b.nums[len(b.nums)-1]
		}
		if errors.As(err, &le) && le.Line >= 0 && le.Line < len(b.nums) {
			return b.nums[le.Line], err
		}
		return last, err
	}
	for _, p := range b.cmds {
		if p.cmd.after != nil {
			p.cmd.after(s, p.args)
		}
	}
	return 0, nil
}

// textOf returns the block line at script line n.
func (b *block) textOf(n int, def string) string {
	for i, m := range b.nums {
		if m == n {
			return b.lines[i]
		}
	}
	return def
}

// History returns the lines entered so far.
func (s *Session) History() []string { return append([]string(nil), s.history...) }

// entryWords are the first words (spelled out) of the lines of an access
// list's mode that only add, change or remove an entry: they never leave
// the mode and run nothing when their block is applied.
var entryWords = map[string]bool{"seq": true, "permit": true, "deny": true, "hard-drop": true, "remark": true}

// entryLine reports whether a script line in an access list's mode is an
// entry line (entryWords, or a sequence number first), which the shell
// leaves to the backend to check.
func entryLine(stack []frame, line string) bool {
	if len(stack) < 2 || stack[len(stack)-1].kind != modeACL {
		return false
	}
	word, _, _ := strings.Cut(strings.TrimLeft(line, " \t"), " ")
	return entryWords[word] || word != "" && strings.Trim(word, "0123456789") == "" // IOS's `10 permit ...`
}
