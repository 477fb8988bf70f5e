package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/slxsh/slxsh/internal/cli"
)

// script runs the commands read from r without prompts or echo and returns
// the exit status: 0, or 1 after the first error. As on a switch console,
// command output and the error (NAME:LINE: % ..., with a caret line for
// invalid input) go to stdout, in order, once; an error the session did
// not print (reading the script failed) goes to stderr.
func script(sess *cli.Session, r io.Reader, name string, stdout, stderr io.Writer) int {
	if err := sess.RunScript(r, name, stdout); err != nil {
		var printed *cli.ScriptError
		if !errors.As(err, &printed) {
			fmt.Fprintln(stderr, err)
		}
		return 1
	}
	return 0
}

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
