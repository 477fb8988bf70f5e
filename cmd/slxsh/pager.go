package main

import (
	"bytes"
)

// moreKeys is what the pager needs from the terminal: writing output and
// reading the key pressed at the --More-- prompt.
type moreKeys interface {
	Write(p []byte) (int, error)
	ReadKey(prompt string) (rune, error)
}

// page writes a command's output a screen at a time, as `terminal length N`
// asks (N <= 1: all at once). At " --More-- ", Space shows the next screen,
// Enter one more line, q or Ctrl-C drops the rest. It returns the error of
// the end of input.
func page(t moreKeys, out []byte, length int) error {
	if length <= 1 || bytes.Count(out, []byte("\n")) < length {
		t.Write(out)
		return nil
	}
	n := length - 1
	for len(out) > 0 {
		chunk := out
		if i := nthNewline(out, n); i >= 0 {
			chunk = out[:i+1]
		}
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
		case 'q', 'Q', 3: // 3: Ctrl-C
			return nil
		case '\r', '\n':
			n = 1
		default:
			n = length - 1
		}
	}
	return nil
}

// nthNewline returns the index of the n-th '\n' in b, or -1.
func nthNewline(b []byte, n int) int {
	off := 0
	for ; n > 0; n-- {
		i := bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			return -1
		}
		off += i + 1
	}
	return off - 1
}
