package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/term"
)

// interactive runs the shell on a terminal until `exit` in exec, Ctrl-D in
// exec or the end of input. It returns the exit status.
func interactive(sess *cli.Session, in, tty *os.File) int {
	ed, err := term.New(term.Config{
		In:       in,
		Out:      tty,
		Help:     sess.Help,
		Complete: completer(sess),
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%% Error: %v\n", err)
		return 1
	}
	defer ed.Close()
	exitOnSignal(ed)
	sess.SetConfirm(func(question string) (string, bool) { return ask(ed, question) })

	// Automation clients find a prompt by a line break before the host
	// name (Ansible network_cli: [\r\n]...[>#] ?$), also for the first one.
	ed.Write([]byte("\n"))
	for !sess.Done() {
		line, key, err := ed.ReadLine(sess.Prompt())
		switch {
		case errors.Is(err, term.ErrInterrupt):
			continue // Ctrl-C: the line is dropped
		case err != nil:
			return 0 // end of input
		case key == term.KeyCtrlD:
			line = "exit" // ends in exec, goes up one mode in config
		}
		if strings.TrimSpace(line) != "" {
			var out bytes.Buffer
			sess.Execute(line, &out) // errors are printed by the session
			length := sess.TerminalLength()
			cols, rows := term.Size(int(tty.Fd()))
			if !sess.TerminalLengthSet() && rows > 0 {
				length = rows // as IOS pages a session at the client's window height
			}
			if sess.NoMore() {
				length = 0
			}
			if err := page(ed, out.Bytes(), length, cols); err != nil {
				return 0 // end of input at --More--
			}
		}
		if key == term.KeyCtrlZ {
			sess.End()
		}
		sess.RefreshHost() // as the switch's prompt follows its hostname
	}
	return 0
}

// ask puts a question to the user: lines of question before the last are
// written as they are, the last is the prompt of the answer. It returns
// the answer; ok is false after Ctrl-C or at the end of input.
func ask(ed *term.Editor, question string) (answer string, ok bool) {
	if i := strings.LastIndexByte(question, '\n'); i >= 0 {
		ed.Write([]byte(question[:i+1]))
		question = question[i+1:]
	}
	answer, err := ed.Ask(question)
	return answer, err == nil
}

// exitOnSignal makes SIGTERM and SIGHUP (the terminal went away) end the
// shell with the terminal given back in the mode it was found in.
func exitOnSignal(ed *term.Editor) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-sigs
		ed.RestoreMode()
		os.Exit(128 + int(sig.(syscall.Signal)))
	}()
}

// completer adapts the session's TAB candidates to the editor: a single
// candidate replaces the word being typed (followed by a space), several
// extend it to their common prefix and are listed.
func completer(sess *cli.Session) func(head string) (string, []string) {
	return func(head string) (string, []string) {
		cands := sess.Complete(head)
		start := strings.LastIndexAny(head, " \t") + 1
		word := head[start:]
		switch len(cands) {
		case 0:
			return head, nil
		case 1:
			return head[:start] + cands[0] + " ", nil
		}
		prefix := commonPrefix(cands)
		if len(prefix) > len(word) {
			return head[:start] + prefix, cands
		}
		return head, cands
	}
}

func commonPrefix(ss []string) string {
	p := ss[0]
	for _, s := range ss[1:] {
		for !strings.HasPrefix(s, p) {
			p = p[:len(p)-1]
		}
	}
	return p
}
