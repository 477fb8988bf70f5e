package term

import (
	"bytes"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"testing"
)

// screen is a minimal xterm-like terminal: auto-wrap with a pending-wrap
// state, ONLCR output (LF moves to column 0), BS, CR and the CSI sequences
// A B C D J K. It fails the test on anything else.
type screen struct {
	t          *testing.T
	w          int
	rows       [][]rune
	row, col   int
	pendingEOL bool
}

func newScreen(t *testing.T, w int) *screen {
	return &screen{t: t, w: w, rows: [][]rune{blank(w)}}
}

func blank(w int) []rune { return []rune(strings.Repeat(" ", w)) }

func (s *screen) ensureRow(r int) {
	for len(s.rows) <= r {
		s.rows = append(s.rows, blank(s.w))
	}
}

func (s *screen) Write(p []byte) (int, error) {
	in := []rune(string(p))
	for i := 0; i < len(in); i++ {
		c := in[i]
		switch {
		case c == '\r':
			s.col, s.pendingEOL = 0, false
		case c == '\n':
			s.row++
			s.col, s.pendingEOL = 0, false
			s.ensureRow(s.row)
		case c == '\b':
			if s.col > 0 {
				s.col--
			}
			s.pendingEOL = false
		case c == 0x1b:
			if i+1 >= len(in) || in[i+1] != '[' {
				s.t.Fatalf("unexpected ESC in %q", p)
			}
			j := i + 2
			for j < len(in) && in[j] >= '0' && in[j] <= '9' {
				j++
			}
			n := 1
			if j > i+2 {
				n, _ = strconv.Atoi(string(in[i+2 : j]))
			}
			if j >= len(in) {
				s.t.Fatalf("truncated CSI in %q", p)
			}
			s.csi(n, in[j])
			i = j
		case c < ' ':
			s.t.Fatalf("unexpected control %q in %q", c, p)
		default:
			if s.pendingEOL {
				s.row++
				s.col = 0
				s.pendingEOL = false
				s.ensureRow(s.row)
			}
			s.rows[s.row][s.col] = c
			if s.col == s.w-1 {
				s.pendingEOL = true
			} else {
				s.col++
			}
		}
	}
	return len(p), nil
}

func (s *screen) csi(n int, final rune) {
	s.pendingEOL = false
	switch final {
	case 'A':
		s.row = max(0, s.row-n)
	case 'B':
		s.row += n
		if s.row >= len(s.rows) {
			s.t.Fatalf("cursor moved below the text to row %d", s.row)
		}
	case 'C':
		s.col = min(s.w-1, s.col+n)
	case 'D':
		s.col = max(0, s.col-n)
	case 'J':
		copy(s.rows[s.row][s.col:], blank(s.w))
		for r := s.row + 1; r < len(s.rows); r++ {
			s.rows[r] = blank(s.w)
		}
	case 'K':
		copy(s.rows[s.row][s.col:], blank(s.w))
	default:
		s.t.Fatalf("unexpected CSI %c", final)
	}
}

// text returns the screen rows joined, trailing blanks removed.
func (s *screen) text() string {
	var b strings.Builder
	for _, r := range s.rows {
		b.WriteString(string(r))
	}
	return strings.TrimRight(b.String(), " ")
}

// cursor returns the cursor as a cell offset from the top left, with a
// pending wrap counted as the next cell.
func (s *screen) cursor() int {
	c := s.row*s.w + s.col
	if s.pendingEOL {
		c++
	}
	return c
}

func TestRendererTypingIsPlainEcho(t *testing.T) {
	var out bytes.Buffer
	r := NewRenderer(&out, func() int { return 80 })
	r.Start("HOST#")
	typed := "show running-config"
	for i := 1; i <= len(typed); i++ {
		r.Update([]rune(typed[:i]), i)
	}
	if got, want := out.String(), "HOST#"+typed; got != want {
		t.Fatalf("output = %q, want %q", got, want)
	}
	out.Reset()
	r.Update([]rune("show running-confi"), len("show running-confi"))
	if got := out.String(); got != "\b \b" {
		t.Fatalf("backspace at end = %q, want %q", got, "\b \b")
	}
	out.Reset()
	r.Break("")
	if got := out.String(); got != "\n" {
		t.Fatalf("Break = %q, want a newline only", got)
	}
}

func TestRendererLongLineEchoHasNoEscapes(t *testing.T) {
	// A config line longer than the terminal (Netmiko's PTY is 80 wide)
	// still echoes as the plain characters; the terminal wraps by itself.
	var out bytes.Buffer
	r := NewRenderer(&out, func() int { return 80 })
	prompt := "HOST(conf-ipacl-ext)#"
	r.Start(prompt)
	line := "permit tcp host 10.24.12.107 host 10.24.12.129 eq 22 connlimit 3 log refuse drop"
	for i := 1; i <= len(line); i++ {
		r.Update([]rune(line[:i]), i)
	}
	r.Break("")
	if got, want := out.String(), prompt+line+"\n"; got != want {
		t.Fatalf("output = %q, want %q", got, want)
	}
}

func TestRendererMidLineEdits(t *testing.T) {
	for _, w := range []int{0, 12, 80} {
		t.Run(fmt.Sprint("width", w), func(t *testing.T) {
			sw := w
			if sw == 0 {
				sw = 200
			}
			s := newScreen(t, sw)
			r := NewRenderer(s, func() int { return w })
			r.Start("R(config)#")
			steps := []struct {
				line string
				pos  int
			}{
				{"ip access-list", 14},
				{"ip access-list", 3},        // cursor left
				{"ip xaccess-list", 4},       // insert mid-line
				{"ip access-list", 3},        // delete mid-line
				{"ip access-list", 14},       // End
				{"", 0},                      // kill line
				{"hostname abcdefghijkl", 9}, // history recall, cursor moved
			}
			for _, st := range steps {
				r.Update([]rune(st.line), st.pos)
				checkScreen(t, s, "R(config)#", st.line, st.pos)
			}
		})
	}
}

func TestRendererRandomEdits(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	alphabet := []rune("ab c")
	for _, w := range []int{7, 10, 13} {
		s := newScreen(t, w)
		r := NewRenderer(s, func() int { return w })
		prompt := "sw#"
		r.Start(prompt)
		var line []rune
		pos := 0
		for i := 0; i < 3000; i++ {
			switch rng.Intn(7) {
			case 0, 1, 2: // type
				c := alphabet[rng.Intn(len(alphabet))]
				line = append(line[:pos], append([]rune{c}, line[pos:]...)...)
				pos++
			case 3: // backspace
				if pos > 0 {
					line = append(line[:pos-1], line[pos:]...)
					pos--
				}
			case 4: // move
				pos = rng.Intn(len(line) + 1)
			case 5: // replace (history)
				line = []rune(strings.Repeat("x", rng.Intn(3*w)))
				pos = len(line)
			case 6: // end
				pos = len(line)
			}
			line = append([]rune(nil), line...)
			r.Update(line, pos)
			checkScreen(t, s, prompt, string(line), pos)
			if t.Failed() {
				t.Fatalf("width %d step %d", w, i)
			}
		}
	}
}

func TestRendererRedrawAfterHelp(t *testing.T) {
	s := newScreen(t, 40)
	r := NewRenderer(s, func() int { return 40 })
	r.Start("HOST#")
	r.Update([]rune("show ru"), 7)
	r.Update([]rune("show ru"), 5)
	r.Break("?")
	r.Write([]byte("  running-config  Current configuration\n"))
	r.Redraw()
	want := "HOST#show ru?" + strings.Repeat(" ", 40-13) +
		"  running-config  Current configuration" + " " +
		"HOST#show ru"
	if got := s.text(); got != want {
		t.Fatalf("screen\n%q\nwant\n%q", got, want)
	}
	if got, want := s.cursor(), 80+5+5; got != want {
		t.Fatalf("cursor at cell %d, want %d", got, want)
	}
}

// checkScreen checks that the last line drawn on s is prompt+line with the
// cursor at rune index pos.
func checkScreen(t *testing.T, s *screen, prompt, line string, pos int) {
	t.Helper()
	want := strings.TrimRight(prompt+line, " ")
	if got := s.text(); got != want {
		t.Errorf("screen %q, want %q", got, want)
	}
	if got, want := s.cursor(), len(prompt)+pos; got != want {
		t.Errorf("cursor at cell %d, want %d (line %q)", got, want, line)
	}
}

func TestTranslateKeys(t *testing.T) {
	for _, tc := range []struct{ in, out, rest string }{
		{"ab\x1b[1~c", "ab\x01c", ""},
		{"\x1b[4~\x1b[3~", "\x05\uE000", ""},
		{"x\x1b[", "x", "\x1b["},
		{"x\x1b", "x", "\x1b"},
		{"\x1b[D\x1b[1;5C", "\x1b[D\x1b[1;5C", ""},
	} {
		out, rest := translateKeys([]byte(tc.in))
		if string(out) != tc.out || string(rest) != tc.rest {
			t.Errorf("translateKeys(%q) = %q, %q; want %q, %q", tc.in, out, rest, tc.out, tc.rest)
		}
	}
}
