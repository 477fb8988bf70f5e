package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/slxsh/slxsh/internal/cli"
)

// script runs the commands read from r without prompts or echo and returns
// the exit status: 0, or 1 after the first error. As on a switch console,
// command output and the error (NAME:LINE: % ..., with a caret line for
// invalid input) go to stdout, in order; an error the session did not print
// (reading the script failed) goes to stderr.
func script(sess *cli.Session, r io.Reader, name string, stdout, stderr io.Writer) int {
	w := &lastLineWriter{w: stdout}
	if err := sess.RunScript(r, name, w); err != nil {
		if w.last() != err.Error() {
			fmt.Fprintln(stderr, err)
		}
		return 1
	}
	return 0
}

// lastLineWriter passes writes on and remembers the last complete line.
type lastLineWriter struct {
	w       io.Writer
	partial []byte
	line    string
}

func (l *lastLineWriter) Write(p []byte) (int, error) {
	l.partial = append(l.partial, p...)
	if i := bytes.LastIndexByte(l.partial, '\n'); i >= 0 {
		prev := bytes.LastIndexByte(l.partial[:i], '\n')
		l.line = string(l.partial[prev+1 : i])
		l.partial = append(l.partial[:0], l.partial[i+1:]...)
	}
	return l.w.Write(p)
}

func (l *lastLineWriter) last() string { return l.line }

// splitCommands turns the argument of -c into script lines, one per
// ';'-separated command, so that an error names the command's position
// (<command>:2: for the second). A ';' inside double quotes
// (refuse message "a;b") does not separate.
func splitCommands(s string) string {
	var cmds []string
	quoted, start := false, 0
	for i, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ';' && !quoted:
			cmds = append(cmds, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	cmds = append(cmds, strings.TrimSpace(s[start:]))
	return strings.Join(cmds, "\n") + "\n"
}
