package cli

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// pipeKind is an output filter.
type pipeKind int

const (
	pipeInclude pipeKind = iota
	pipeExclude
	pipeBegin
	pipeCount
)

// pipeSpec is `| include RE`, `| exclude RE`, `| begin RE` or `| count`.
type pipeSpec struct {
	kind pipeKind
	re   string
}

func pipeAtom(word, help string, k pipeKind, withRE bool) node {
	a := &atom{word: word, help: help, bind: func(b *binding, _ string) { b.pipe = &pipeSpec{kind: k} }}
	if !withRE {
		return a
	}
	re := &atom{name: "LINE", help: "Regular expression", rest: true, accept: func(string) bool { return true },
		bind: func(b *binding, v string) { b.pipe.re = v }}
	return seq(a, re)
}

// pipeNode is the optional output filter of show commands.
func pipeNode() node {
	return opt(kw("|", "Output modifiers"), alt(
		pipeAtom("include", "Show only lines that match", pipeInclude, true),
		pipeAtom("exclude", "Show only lines that do not match", pipeExclude, true),
		pipeAtom("begin", "Show from the first line that matches", pipeBegin, true),
		pipeAtom("count", "Count the lines", pipeCount, false)))
}

// filter writes out through the pipe p to w.
func (p *pipeSpec) filter(w io.Writer, out []byte) error {
	var re *regexp.Regexp
	if p.kind != pipeCount {
		var err error
		if re, err = regexp.Compile(p.re); err != nil {
			return fmt.Errorf("%% Error: invalid regular expression %q", p.re)
		}
	}
	lines := strings.SplitAfter(string(out), "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	var b bytes.Buffer
	count := 0
	begun := false
	for _, l := range lines {
		text := strings.TrimRight(l, "\r\n")
		switch p.kind {
		case pipeInclude:
			if re.MatchString(text) {
				b.WriteString(l)
			}
		case pipeExclude:
			if !re.MatchString(text) {
				b.WriteString(l)
			}
		case pipeBegin:
			begun = begun || re.MatchString(text)
			if begun {
				b.WriteString(l)
			}
		case pipeCount:
			count++
		}
	}
	if p.kind == pipeCount {
		fmt.Fprintf(&b, "Number of lines: %d\n", count)
	}
	_, err := w.Write(b.Bytes())
	return err
}
