package term

import (
	"bytes"
	"io"
)

// keyDelete stands for the Delete key (ESC [ 3 ~) in the key stream.
// chzyer/readline decodes that key as Ctrl-D, which on an empty line ends
// the shell; the editor gives it its own rune (Unicode private use).
const keyDelete = '\uE000'

// keyMap lists the VT220-style keys that chzyer/readline v1.5.1 does not
// decode (it knows ESC [ H and ESC [ F for Home and End) and what they mean.
var keyMap = []struct{ seq, key string }{
	{"\x1b[1~", "\x01"}, // Home: Ctrl-A
	{"\x1b[7~", "\x01"},
	{"\x1b[4~", "\x05"}, // End: Ctrl-E
	{"\x1b[8~", "\x05"},
	{"\x1b[3~", string(keyDelete)},
}

// keyReader translates the keys of keyMap in a terminal's input.
type keyReader struct {
	r       io.Reader
	pending []byte // a possible start of a sequence, held for the next read
	out     []byte
	err     error
}

func newKeyReader(r io.Reader) *keyReader { return &keyReader{r: r} }

func (k *keyReader) Read(p []byte) (int, error) {
	for len(k.out) == 0 {
		if k.err != nil {
			return 0, k.err
		}
		buf := make([]byte, 512)
		n, err := k.r.Read(buf)
		data := append(k.pending, buf[:n]...)
		k.out, k.pending = translateKeys(data)
		if err != nil {
			k.out = append(k.out, k.pending...)
			k.pending, k.err = nil, err
		}
	}
	n := copy(p, k.out)
	k.out = k.out[n:]
	return n, nil
}

// translateKeys rewrites the sequences of keyMap in data. A trailing
// incomplete prefix of one is returned as rest.
func translateKeys(data []byte) (out, rest []byte) {
	for i := 0; i < len(data); {
		if data[i] != 0x1b {
			out = append(out, data[i])
			i++
			continue
		}
		matched := false
		for _, m := range keyMap {
			tail := data[i:]
			if bytes.HasPrefix(tail, []byte(m.seq)) {
				out = append(out, m.key...)
				i += len(m.seq)
				matched = true
				break
			}
			if len(tail) < len(m.seq) && bytes.HasPrefix([]byte(m.seq), tail) {
				return out, append([]byte(nil), tail...)
			}
		}
		if !matched {
			out = append(out, data[i])
			i++
		}
	}
	return out, nil
}
