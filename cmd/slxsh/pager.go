package main

import (
	"bytes"
	"unicode/utf8"
)

// moreKeys is what the pager needs from the terminal: writing output and
// reading the key pressed at the --More-- prompt.
type moreKeys interface {
	Write(p []byte) (int, error)
	ReadKey(prompt string) (rune, error)
}

// page writes a command's output a screen at a time, as IOS does: a screen
// is length rows (N <= 1: all at once), a line wider than width (0: not
// known) taking as many rows as the terminal wraps it onto. At " --More-- ",
// Space shows the next screen, Enter one more line, and any other key (q,
// Ctrl-C, the first key of a command typed ahead) drops the rest. It
// returns the error of the end of input.
func page(t moreKeys, out []byte, length, width int) error {
	if length <= 1 {
		t.Write(out)
		return nil
	}
	budget := length - 1 // rows above the --More-- line
	for len(out) > 0 {
		chunk := out[:fill(out, budget, width)]
		t.Write(chunk)
		out = out[len(chunk):]
		if len(out) == 0 {
			break
		}
		key, err := t.ReadKey(" --More-- ")
		if err != nil {
			return err
		}
		switch key {
		case ' ':
			budget = length - 1
		case '\r', '\n':
			budget = 1
		default:
			return nil
		}
	}
	return nil
}

// fill returns how many bytes of out fill at most rows rows of a terminal
// width cells wide (whole lines, at least one).
func fill(out []byte, rows, width int) int {
	n := 0
	for n < len(out) {
		line := out[n:]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i+1]
		}
		r := lineRows(line, width)
		if rows < r && n > 0 {
			break
		}
		rows -= r
		n += len(line)
	}
	return n
}

// lineRows is how many terminal rows a line of output takes.
func lineRows(line []byte, width int) int {
	cells := utf8.RuneCount(bytes.TrimRight(line, "\r\n"))
	if width <= 0 || cells <= width {
		return 1
	}
	return (cells + width - 1) / width
}
