package cli

import (
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/slxsh/slxsh/internal/acl"
)

// Txn is one configuration transaction: Lines are replayed in global
// configuration mode after the Context lines, which re-enter the sub-mode
// the shell was in (e.g. ["ip access-list extended check"]). An interactive
// config line is a Txn with one line; a scripted `configure terminal` …
// `end` block is one Txn with every line of the block. Context lines are
// ordinary config lines: if another session deleted the list meanwhile,
// re-entering it creates it again, as typing the line would.
type Txn struct {
	Context []string `json:"context,omitempty"`
	Lines   []string `json:"lines"`
	// RemarksBefore counts, by text, the remarks (with a seq or without)
	// that the shell sent before in its visit of the list mode that
	// Context enters (of the texts of Lines' remarks only): the Nth remark
	// T of a visit is the list's Nth remark T (addRemark), also when a
	// visit is one transaction per line.
	RemarksBefore map[string]int `json:"remarks_before,omitempty"`
}

// ErrKind tells the kinds of line errors apart.
type ErrKind int

// Kinds of line errors.
const (
	ErrInvalid    ErrKind = iota // % Invalid input detected at '^' marker.
	ErrIncomplete                // % Incomplete command.
	ErrAmbiguous                 // % Ambiguous command: "WORD"
	ErrSemantic                  // % Error: MSG
)

// LineError is an error in one line of a transaction. It is plain data so
// that the agent can send it over its socket and the shell can rebuild it.
type LineError struct {
	Line  int     `json:"line"` // index in Txn.Lines; negative for a Context line
	Text  string  `json:"text"` // the line
	Kind  ErrKind `json:"kind"`
	Col   int     `json:"col"`  // byte offset of the bad token in Text (ErrInvalid, ErrAmbiguous)
	Word  string  `json:"word"` // the ambiguous word (ErrAmbiguous)
	Msg   string  `json:"msg"`  // the message (ErrSemantic)
	Cause error   `json:"-"`    // the semantic error, when local
}

// Error returns the message as shown to the user, starting with "%".
func (e *LineError) Error() string {
	switch e.Kind {
	case ErrInvalid:
		if h := invalidHints[strings.ToLower(e.Word)]; h != "" {
			return "% Invalid input detected at '^' marker. (" + h + ")"
		}
		return "% Invalid input detected at '^' marker."
	case ErrIncomplete:
		return "% Incomplete command."
	case ErrAmbiguous:
		return fmt.Sprintf("%% Ambiguous command: %q", e.Word)
	}
	return "% Error: " + e.Msg
}

// invalidHints say why a word that users of other switches type is not
// slxsh's, after the caret's message.
var invalidHints = map[string]string{
	"established": "entries decide new connections; the packets of established ones are always admitted, so none needs established",
}

// Unwrap returns the semantic cause, if any.
func (e *LineError) Unwrap() error { return e.Cause }

// Caret reports whether the error is shown with a caret under Col.
func (e *LineError) Caret() bool { return e.Kind == ErrInvalid }

func lineError(text string, me *matchErr) *LineError {
	le := &LineError{Text: text, Kind: me.kind}
	toks := tokenize(text)
	if me.tok < len(toks) {
		le.Col = toks[me.tok].off
		le.Word = toks[me.tok].text
	} else {
		le.Col = len(strings.TrimRight(text, " \t"))
	}
	return le
}

func semanticError(text string, err error) *LineError {
	var ae *acl.Error
	msg := err.Error()
	if errors.As(err, &ae) {
		msg = ae.Msg
	}
	msg = strings.TrimPrefix(msg, "% Error: ")
	return &LineError{Text: text, Kind: ErrSemantic, Msg: msg, Cause: err}
}

// ApplyLines replays t on a copy of c and returns the new configuration, or
// the first error (a *LineError) and no configuration. It is the single
// place where configuration text becomes configuration; c is not modified.
func ApplyLines(c *acl.Config, t Txn) (*acl.Config, error) {
	return applyLines(c, t, nil)
}

// applyLines is ApplyLines, calling applied (unless nil) with the index in
// t.Lines and the configuration so far after each line of t.Lines that
// changed it.
func applyLines(c *acl.Config, t Txn, applied func(int, *acl.Config)) (*acl.Config, error) {
	cfg := c.Clone()
	st := []frame{{kind: modeConfig}}
	all := append(append([]string(nil), t.Context...), t.Lines...)
	ended := false
	var pre *preparse // of the body of the list being entered
	tx := &txnState{}
	defer func() { pre.stop() }()
	for i, line := range all {
		idx := i - len(t.Context)
		if skipLine(line) {
			continue
		}
		if ended {
			return nil, &LineError{Line: idx, Text: line, Kind: ErrSemantic, Msg: "not in configuration mode"}
		}
		next, p := st, pre.get(i, st)
		if p == nil {
			var err *LineError
			if next, p, err = parseConfigLine(st, line); err != nil {
				err.Line = idx
				return nil, err
			}
		}
		st = next
		switch {
		case p.cmd == nil:
		case p.cmd.exec != nil:
			// `do CMD`: exec commands change no configuration.
		case p.cmd.nav == navEnd:
			ended = true
		case p.cmd.nav == navConfig:
			st = st[:1]
		case p.cmd.nav == navExit:
			if len(st) == 1 {
				ended = true
			} else {
				st = st[:len(st)-1]
			}
		default:
			tx.kept = false
			if err := p.cmd.apply(&env{cfg: cfg, frame: st[len(st)-1], tx: tx}, p.args); err != nil {
				le := semanticError(line, err)
				le.Line = idx
				return nil, le
			}
			if !tx.kept {
				tx.remarks = nil
			}
			if applied != nil && idx >= 0 {
				applied(idx, cfg)
			}
			if p.cmd.enter != nil {
				st = append(st, p.cmd.enter(p.args))
				if top := st[len(st)-1]; top.kind == modeACL {
					tx.enter(top)
					if idx < 0 { // entered by the context: the visit goes on
						tx.seen = maps.Clone(t.RemarksBefore)
					}
					pre.stop()
					pre = startPreparse(all, i+1, top)
				}
			}
		}
	}
	return cfg, nil
}

// skipLine reports lines that carry nothing: blank lines and "!" comments.
func skipLine(line string) bool {
	t := strings.TrimSpace(line)
	return t == "" || t[0] == '!'
}

// ParseConfig reads a whole configuration file (the running-config or
// startup-config as acl.Format writes it), replaying every line in global
// configuration mode. ParseConfig(acl.Format(c)) equals c.
func ParseConfig(text string) (*acl.Config, error) {
	c, err := ApplyLines(acl.New(), Txn{Lines: ConfigLines(text)})
	if err != nil {
		var le *LineError
		if errors.As(err, &le) {
			return nil, fmt.Errorf("line %d: %w", le.Line+1, err)
		}
		return nil, err
	}
	return c, nil
}

// ConfigLines splits a configuration file's text into its lines, as
// ParseConfig reads them.
func ConfigLines(text string) []string {
	return strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
}

// parseConfigLine matches a configuration line in the innermost mode of the
// stack st and, when it does not match there, in the parent modes (walk-up).
// It returns the stack cut to the mode that matched. When no mode matches,
// the error of the mode where the line got furthest is returned
// (the innermost on a tie), except that a first word ambiguous in the
// innermost mode is reported as such (`p tcp any any` in an ACL: permit or
// packet-tracer), however far a parent mode reads it as something else.
func parseConfigLine(st []frame, line string) ([]frame, *parsed, *LineError) {
	var best *matchErr
	for d := len(st) - 1; d >= 0; d-- {
		p, err := parseLine(grammarOf(st[d]), line)
		if err == nil {
			return st[:d+1], p, nil
		}
		switch {
		case best == nil:
			best = err
		case best.kind == ErrAmbiguous && best.tok == 0:
		case err.tok > best.tok:
			best = err
		}
	}
	return st, nil, lineError(line, best)
}
