package cli

import (
	"runtime"
	"sync"
)

// A preparse parses ahead, on every core, the body of an access list in a
// script: the indented lines after the line that entered the list's mode,
// as show running-config and scripts/gen-acl.sh write them. Each is parsed
// in that mode as parseConfigLine would parse it there (parseLine is pure).
// ApplyLines takes a line's result when it reaches the line in that mode
// and the line matched there; any other line (of another mode, or one
// that does not match, whose error is the walk-up's) it parses itself, in
// order, so errors and their lines are what they were.
type preparse struct {
	fr     frame
	start  int       // index in the script of the first line
	res    []*parsed // by line from start; nil: not matched in fr
	done   []chan struct{}
	window chan struct{} // a slot for each chunk parsed ahead of ApplyLines
	quit   chan struct{}
	freed  int // chunks ApplyLines is past, their slots of window freed
	next   int // chunks handed out, under mu
	mu     sync.Mutex
}

// Chunks of lines are parsed each by one worker; at most preparseAhead
// chunks wait for ApplyLines, so that a long body does not hold every
// line's arguments at once. A body shorter than minPreparse lines is
// parsed in order: starting workers would cost more.
const (
	preparseChunk = 256
	preparseAhead = 16
	minPreparse   = 2 * preparseChunk
)

// preparsing enables preparses (tests compare ApplyLines without).
var preparsing = true

// startPreparse starts parsing the lines of the body that starts at
// lines[start] in mode fr, or returns nil when it is not worth it.
func startPreparse(lines []string, start int, fr frame) *preparse {
	n := 0
	for start+n < len(lines) && indented(lines[start+n]) {
		n++
	}
	workers := runtime.GOMAXPROCS(0)
	if !preparsing || n < minPreparse || workers < 2 {
		return nil
	}
	q := &preparse{fr: fr, start: start, res: make([]*parsed, n),
		done:   make([]chan struct{}, (n+preparseChunk-1)/preparseChunk),
		window: make(chan struct{}, preparseAhead), quit: make(chan struct{})}
	for c := range q.done {
		q.done[c] = make(chan struct{})
	}
	g := grammarOf(fr)
	for range workers {
		go q.work(g, lines[start:start+n])
	}
	return q
}

// indented reports a line of a sub-mode's body as written by the
// formatter: it starts with a blank.
func indented(line string) bool { return line != "" && (line[0] == ' ' || line[0] == '\t') }

func (q *preparse) work(g node, lines []string) {
	for {
		select {
		case q.window <- struct{}{}:
		case <-q.quit:
			return
		}
		q.mu.Lock()
		c := q.next
		q.next++
		q.mu.Unlock()
		if c >= len(q.done) {
			return
		}
		for i := c * preparseChunk; i < min((c+1)*preparseChunk, len(lines)); i++ {
			if !skipLine(lines[i]) {
				q.res[i], _ = parseLine(g, lines[i])
			}
		}
		close(q.done[c])
	}
}

// get returns the parse of script line i in the mode on top of st, if this
// preparse has it.
func (q *preparse) get(i int, st []frame) *parsed {
	if q == nil || i < q.start || i >= q.start+len(q.res) {
		return nil
	}
	if top := st[len(st)-1]; top.kind != q.fr.kind || top.fam != q.fr.fam {
		return nil
	}
	j := i - q.start
	for ; q.freed < j/preparseChunk; q.freed++ {
		<-q.window // a chunk used up: a worker may parse another
	}
	<-q.done[j/preparseChunk]
	p := q.res[j]
	q.res[j] = nil
	return p
}

// stop ends the workers (their chunk in hand finished first).
func (q *preparse) stop() {
	if q != nil {
		close(q.quit)
	}
}
