package term

import (
	"bytes"
	"io"
	"strconv"

	"github.com/chzyer/readline/runes"
)

// Renderer draws one editable line after a prompt and sends the terminal only
// what changed: a character typed at the end of the line is echoed as just
// that character, a backspace at the end as "\b \b". Cursor movement escapes
// are used only for edits in the middle of the line.
//
// Positions are counted in terminal cells from the first cell of the prompt.
// A write that ends exactly in the last column leaves an xterm-like terminal
// in the "pending wrap" state (the cursor stays in the last column until the
// next character); the renderer tracks that state instead of guessing.
//
// A Renderer is not safe for concurrent use.
type Renderer struct {
	w       io.Writer
	width   func() int
	prompt  []rune
	plen    int
	line    []rune
	pos     int
	cur     int  // cell where the cursor is
	pending bool // the cursor sits after the last column (pending wrap)
	out     bytes.Buffer
}

// NewRenderer returns a renderer writing to w. width reports the terminal
// width in cells; 0 or less means unknown, and the line is then treated as
// never wrapping.
func NewRenderer(w io.Writer, width func() int) *Renderer {
	return &Renderer{w: w, width: width}
}

// Start writes prompt and begins a new, empty line after it.
func (r *Renderer) Start(prompt string) {
	r.prompt = []rune(prompt)
	r.plen = runes.WidthAll(r.prompt)
	r.line, r.pos = nil, 0
	r.out.WriteString(prompt)
	r.wrote(r.plen)
	r.flush()
}

// Line returns the line and cursor position last drawn.
func (r *Renderer) Line() ([]rune, int) {
	return r.line, r.pos
}

// Update changes the drawn line to line with the cursor at rune index pos.
func (r *Renderer) Update(line []rune, pos int) {
	if pos < 0 {
		pos = 0
	}
	if pos > len(line) {
		pos = len(line)
	}
	switch {
	case runes.Equal(line, r.line):
		r.moveTo(r.cell(line, pos))
	case r.pos == len(r.line) && pos == len(line) && hasPrefix(line, r.line):
		// Typed at the end: plain echo.
		add := line[len(r.line):]
		r.out.WriteString(string(add))
		r.wrote(r.cur + runes.WidthAll(add))
	case r.pos == len(r.line) && pos == len(line) && hasPrefix(r.line, line) && r.canRubOut(r.cell(line, pos)):
		n := r.cur - r.cell(line, pos)
		r.out.Write(bytes.Repeat([]byte("\b"), n))
		r.out.Write(bytes.Repeat([]byte(" "), n))
		r.out.Write(bytes.Repeat([]byte("\b"), n))
		r.cur -= n
	default:
		r.redrawFrom(line, pos)
	}
	r.line = append([]rune(nil), line...)
	r.pos = pos
	r.flush()
}

// Break moves the cursor to the end of the line, writes suffix and a newline.
// The line is kept, so that Redraw can show it again below output.
func (r *Renderer) Break(suffix string) {
	r.moveTo(r.cell(r.line, len(r.line)))
	r.out.WriteString(suffix)
	r.out.WriteString("\n")
	r.cur, r.pending = 0, false
	r.flush()
}

// Write writes p as output between lines: call it after Break and before
// Redraw or Start.
func (r *Renderer) Write(p []byte) (int, error) {
	return r.w.Write(p)
}

// Redraw writes the prompt and the current line again, at the start of the
// terminal line, and puts the cursor back where it was.
func (r *Renderer) Redraw() {
	r.out.WriteString(string(r.prompt))
	r.out.WriteString(string(r.line))
	r.wrote(r.cell(r.line, len(r.line)))
	r.moveTo(r.cell(r.line, r.pos))
	r.flush()
}

// redrawFrom rewrites the screen from the first rune where line differs from
// what is drawn, erases what is left of the old line, and places the cursor.
func (r *Renderer) redrawFrom(line []rune, pos int) {
	p := 0
	for p < len(line) && p < len(r.line) && line[p] == r.line[p] {
		p++
	}
	oldEnd := r.cell(r.line, len(r.line))
	r.moveTo(r.cell(line, p))
	r.out.WriteString(string(line[p:]))
	end := r.cell(line, len(line))
	r.wrote(end)
	if oldEnd > end {
		r.settle()
		r.out.WriteString("\x1b[J")
	}
	r.moveTo(r.cell(line, pos))
}

// cell returns the cell offset of rune index i of line.
func (r *Renderer) cell(line []rune, i int) int {
	return r.plen + runes.WidthAll(line[:i])
}

// wrote records that the cursor advanced by writing text up to cell c.
func (r *Renderer) wrote(c int) {
	w := r.width()
	r.cur = c
	r.pending = w > 0 && c > 0 && c%w == 0
}

// settle ends a pending wrap: " \b" makes the terminal wrap to the next row
// and leaves the cursor in its first column. Only used at the end of the
// drawn text, where that cell is blank.
func (r *Renderer) settle() {
	if r.pending {
		r.out.WriteString(" \b")
		r.pending = false
	}
}

// canRubOut reports whether the cursor can go back to cell to with
// backspaces on its current row.
func (r *Renderer) canRubOut(to int) bool {
	w := r.width()
	if w <= 0 {
		return true
	}
	return !r.pending && to/w == r.cur/w
}

// moveTo moves the cursor to cell c, which must lie within the drawn text.
func (r *Renderer) moveTo(c int) {
	if c == r.cur {
		return
	}
	r.settle()
	w := r.width()
	if w <= 0 {
		r.moveCols(r.cur, c)
		r.cur = c
		return
	}
	fromRow, toRow := r.cur/w, c/w
	switch {
	case toRow < fromRow:
		r.csi(fromRow-toRow, 'A')
	case toRow > fromRow:
		r.csi(toRow-fromRow, 'B')
	}
	r.moveCols(r.cur%w, c%w)
	r.cur = c
}

// moveCols moves the cursor within its row from column from to column to.
func (r *Renderer) moveCols(from, to int) {
	switch {
	case to == from:
	case to == 0:
		r.out.WriteByte('\r')
	case to == from-1:
		r.out.WriteByte('\b')
	case to < from:
		r.csi(from-to, 'D')
	default:
		r.csi(to-from, 'C')
	}
}

func (r *Renderer) csi(n int, final byte) {
	r.out.WriteString("\x1b[")
	r.out.WriteString(strconv.Itoa(n))
	r.out.WriteByte(final)
}

func (r *Renderer) flush() {
	if r.out.Len() > 0 {
		r.w.Write(r.out.Bytes()) // a terminal write error ends the session elsewhere
		r.out.Reset()
	}
}

func hasPrefix(s, prefix []rune) bool {
	return len(s) >= len(prefix) && runes.Equal(s[:len(prefix)], prefix)
}
