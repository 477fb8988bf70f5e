package cli

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// pipeKind is an output filter.
type pipeKind int

const (
	pipeInclude pipeKind = iota
	pipeExclude
	pipeBegin
	pipeSection
	pipeCount
	pipeNoMore
)

// pipeSpec is one `| FILTER [RE]` of a show command; filters chain
// (`| include seq | count`).
type pipeSpec struct {
	kind pipeKind
	re   string
}

func pipeAtom(word, help string, k pipeKind, withRE bool) node {
	a := &atom{word: registerWord(word), help: help, bind: func(b *binding, _ string) { b.pipes = append(b.pipes, &pipeSpec{kind: k}) }}
	if !withRE {
		return a
	}
	// The expression runs to the next "|" (which starts the next filter)
	// or the end of the line; it may be in double quotes.
	re := &atom{name: "LINE", help: "Regular expression", rest: true, upTo: "|", accept: func(string) bool { return true },
		bind: func(b *binding, v string) { b.pipes[len(b.pipes)-1].re = v }}
	return seq(a, re)
}

// pipes is the grammar of the output filters, built once: `| FILTER`
// followed by more of them.
var pipes node

// pipeNode is the optional output filters of show commands.
func pipeNode() node {
	if pipes == nil {
		var ref node
		pipes = opt(kw("|", "Output modifiers"), alt(
			pipeAtom("include", "Show only lines that match", pipeInclude, true),
			pipeAtom("exclude", "Show only lines that do not match", pipeExclude, true),
			pipeAtom("begin", "Show from the first line that matches", pipeBegin, true),
			pipeAtom("section", "Show the blocks whose lines match, with their indented lines", pipeSection, true),
			pipeAtom("count", "Count the lines", pipeCount, false),
			pipeAtom("nomore", "Do not page the output", pipeNoMore, false)),
			refNode{&ref})
		ref = pipes
	}
	return pipes
}

// compiledPipe is a pipeSpec with its expression compiled.
type compiledPipe struct {
	kind pipeKind
	re   *regexp.Regexp
}

// compilePipes compiles the expressions of a chain of filters.
func compilePipes(specs []*pipeSpec) ([]compiledPipe, error) {
	out := make([]compiledPipe, len(specs))
	for i, p := range specs {
		out[i].kind = p.kind
		if p.kind == pipeCount || p.kind == pipeNoMore {
			continue
		}
		if strings.HasPrefix(p.re, `"`) && (len(p.re) < 2 || !strings.HasSuffix(p.re, `"`)) {
			return nil, fmt.Errorf("%% Error: regular expression %s: the quote is not closed", p.re)
		}
		re, err := regexp.Compile(pipeExpr(p.re))
		if err != nil {
			return nil, fmt.Errorf("%% Error: invalid regular expression %q", p.re)
		}
		out[i].re = re
	}
	return out, nil
}

// pipeExpr turns an expression as typed into a Go regular expression: a
// pattern in double quotes is the text between them (Ansible's slxos
// plugin quotes one), and `\ ` is a space (Ansible writes `^Local\ Interface`).
func pipeExpr(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	return strings.ReplaceAll(s, `\ `, " ")
}

// filter returns out passed through p.
func (p compiledPipe) filter(out []byte) []byte {
	lines := strings.SplitAfter(string(out), "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	var b bytes.Buffer
	begun := false
	depth := -1 // pipeSection: the indentation of the block being shown
	for _, l := range lines {
		text := strings.TrimRight(l, "\r\n")
		switch p.kind {
		case pipeInclude:
			if p.re.MatchString(text) {
				b.WriteString(l)
			}
		case pipeExclude:
			if !p.re.MatchString(text) {
				b.WriteString(l)
			}
		case pipeBegin:
			begun = begun || p.re.MatchString(text)
			if begun {
				b.WriteString(l)
			}
		case pipeSection:
			indent := len(text) - len(strings.TrimLeft(text, " "))
			if depth >= 0 && indent > depth {
				b.WriteString(l) // inside a block being shown
				continue
			}
			depth = -1
			if p.re.MatchString(text) {
				depth = indent
				b.WriteString(l)
			}
		case pipeNoMore:
			b.WriteString(l)
		}
	}
	if p.kind == pipeCount {
		fmt.Fprintf(&b, "Number of lines: %d\n", len(lines))
	}
	return b.Bytes()
}
