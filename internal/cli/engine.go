package cli

import (
	"sort"
	"strings"
	"sync"
)

// This file is the generic command engine: a grammar is a tree of nodes
// (keywords, typed parameters, sequences, alternatives, optional parts and
// options in any order); the matcher resolves a line token by token against
// it, telling invalid, ambiguous and incomplete input apart, and collects the
// possible next tokens for `?` help and TAB completion.
//
// Matching goes position by position. With tokens [0, p) resolved, the
// grammar is walked (every path, by backtracking with continuations) to
// collect the atoms that may come at p; token p then resolves to the keyword
// it equals or uniquely abbreviates among those, or else to a parameter
// value. So abbreviation and ambiguity are judged against exactly the words
// possible at that position, and the first token that no path accepts is
// where the caret goes. Lines are short: the quadratic number of walks costs
// about 30 µs for a long ACL entry (BenchmarkExecuteEntry).

// node is a piece of grammar. walk matches the node starting at token pos
// and goes on with k (m.resume) at the position after each way it can
// match.
type node interface {
	walk(m *matcher, pos int, k *cont)
}

// cont is how a walk goes on after a node has matched: with the rest of a
// sequence, or with the items of an any-order node not used yet, and then
// with next; a nil cont is the end of the grammar (matcher.end).
// Continuations are not closures, which escape to the heap when passed to
// an interface's method (they were most of a line's allocations): they
// live on the matcher's stack of them (conts), for as long as the walk
// they were made for.
type cont struct {
	seq  seqNode // the rest of seq from item i, or
	i    int
	any  *anyOrderNode // the items of any not in used
	used uint64
	next *cont
}

// resume goes on with k at pos.
func (m *matcher) resume(k *cont, pos int) {
	switch {
	case k == nil:
		m.end(pos)
	case k.any != nil:
		k.any.rec(m, pos, k.used, k.next)
	default:
		k.seq.from(m, k.i, pos, k.next)
	}
}

// contBlock is the size of the blocks continuations are taken from (which
// never move, so that a *cont stays valid while the stack grows).
const contBlock = 64

// conts is a stack of continuations.
type conts struct {
	blocks [][contBlock]cont
	n      int
}

func (st *conts) push(c cont) *cont {
	if st.n/contBlock == len(st.blocks) {
		st.blocks = append(st.blocks, [contBlock]cont{})
	}
	p := &st.blocks[st.n/contBlock][st.n%contBlock]
	*p = c
	st.n++
	return p
}

func (st *conts) pop() { st.n-- }

// atom is one token of the grammar: a keyword (word != "") or a typed
// parameter (accept != nil).
type atom struct {
	word   string                     // keyword, lower case
	name   string                     // how a parameter shows in help: WORD, <1-65535>, A.B.C.D
	help   string                     // one line
	accept func(tok string) bool      // parameters only
	rest   bool                       // LINE: takes the rest of the line
	upTo   string                     // with rest: ... up to a keyword token (the next "|")
	names  nameKind                   // a name that TAB completes from the backend's (wordArg)
	bind   func(b *binding, v string) // stores the value into the command's arguments
}

// display is how the atom shows in help.
func (a *atom) display() string {
	if a.word != "" {
		return a.word
	}
	return a.name
}

func (a *atom) walk(m *matcher, pos int, k *cont) {
	if pos == m.limit {
		m.offer(a)
		return
	}
	if a.rest {
		if a.upTo != "" {
			if m.res[pos].isKw && m.res[pos].kw == a.upTo {
				return // at least one word
			}
			for j := pos + 1; j < m.limit; j++ {
				if m.res[j].isKw && m.res[j].kw == a.upTo {
					m.push(step{atom: a, tok: pos, end: j})
					m.resume(k, j)
					m.pop()
					return
				}
			}
		}
		// A LINE runs to the end of what is consumed so far, and may go on.
		m.offer(a)
		m.push(step{atom: a, tok: pos})
		m.resume(k, m.limit)
		m.pop()
		return
	}
	if !a.matches(m, pos) {
		return
	}
	m.push(step{atom: a, tok: pos})
	m.resume(k, pos+1)
	m.pop()
}

// matches reports whether the resolved token at pos (< limit) is this atom.
func (a *atom) matches(m *matcher, pos int) bool {
	r := m.res[pos]
	if a.word != "" {
		return r.isKw && r.kw == a.word
	}
	return !r.isKw && a.accept(m.toks[pos].text)
}

type seqNode []node

func (s seqNode) walk(m *matcher, pos int, k *cont) { s.from(m, 0, pos, k) }

func (s seqNode) from(m *matcher, i, pos int, k *cont) {
	if i == len(s) {
		m.resume(k, pos)
		return
	}
	// Fast path without a continuation: a plain atom before the limit either
	// matches one token or ends this path.
	if a, ok := s[i].(*atom); ok && !a.rest && pos < m.limit {
		if a.matches(m, pos) {
			m.push(step{atom: a, tok: pos})
			s.from(m, i+1, pos+1, k)
			m.pop()
		}
		return
	}
	s[i].walk(m, pos, m.conts.push(cont{seq: s, i: i + 1, next: k}))
	m.conts.pop()
}

// altNode matches any one of its alternatives. Alternatives that cannot
// start with the token at pos are skipped without walking them.
type altNode struct {
	alts   []node
	firsts []firstSet
}

func newAlt(n []node) *altNode {
	a := &altNode{alts: n}
	for _, x := range n {
		a.firsts = append(a.firsts, first(x))
	}
	return a
}

func (a *altNode) walk(m *matcher, pos int, k *cont) {
	for i, n := range a.alts {
		if a.firsts[i].excludes(m, pos) {
			continue
		}
		n.walk(m, pos, k)
	}
}

type optNode struct{ n node }

func (o optNode) walk(m *matcher, pos int, k *cont) {
	m.resume(k, pos)
	o.n.walk(m, pos, k)
}

// anyOrderNode matches its items in any order, each at most once (items
// made with many: any number of times). Every item must consume at least
// one token.
type anyOrderNode struct {
	items  []node
	firsts []firstSet
	multi  uint64 // items that may repeat
}

// manyNode marks an item of anyOrder that may be given several times
// (`connlimit 1 connlimit 5 per-prefix 24`).
type manyNode struct{ node }

// many makes an anyOrder item repeatable.
func many(n node) node { return manyNode{n} }

func (a *anyOrderNode) walk(m *matcher, pos int, k *cont) { a.rec(m, pos, 0, k) }

func (a *anyOrderNode) rec(m *matcher, pos int, used uint64, k *cont) {
	m.resume(k, pos)
	for i, n := range a.items {
		if used&(1<<i) != 0 || a.firsts[i].excludes(m, pos) {
			continue
		}
		bit := uint64(1) << i &^ a.multi
		n.walk(m, pos, m.conts.push(cont{any: a, used: used | bit, next: k}))
		m.conts.pop()
	}
}

// firstSet is what a node can start with.
type firstSet struct {
	kws      wordSet // keywords
	param    bool    // a parameter, or something unknown
	nullable bool    // the node can match no token
}

// excludes reports whether the node surely cannot match at pos: the token
// there is resolved and is not something the node starts with.
func (f firstSet) excludes(m *matcher, pos int) bool {
	if pos >= m.limit || f.nullable {
		return false
	}
	r := m.res[pos]
	if r.isKw {
		return !f.kws.has(r.id)
	}
	return !f.param
}

// first computes the first set of a node.
func first(n node) firstSet {
	var f firstSet
	switch n := n.(type) {
	case *atom:
		if n.word != "" {
			f.kws.add(wordID(n.word))
		} else {
			f.param = true
		}
	case seqNode:
		f.nullable = true
		for _, x := range n {
			f.add(first(x))
			if !first(x).nullable {
				f.nullable = false
				break
			}
		}
	case *altNode:
		for _, x := range n.firsts {
			f.add(x)
			f.nullable = f.nullable || x.nullable
		}
	case *anyOrderNode:
		for _, x := range n.firsts {
			f.add(x)
		}
		f.nullable = true
	case optNode:
		f = first(n.n)
		f.nullable = true
	case cmdNode:
		return first(n.c.syntax)
	default: // refNode: not built yet; anything
		f.param, f.nullable = true, true
	}
	return f
}

func (f *firstSet) add(g firstSet) {
	f.kws.union(g.kws)
	f.param = f.param || g.param
}

// refNode refers to a grammar that is built later (`do` refers to exec).
type refNode struct{ n *node }

func (r refNode) walk(m *matcher, pos int, k *cont) { (*r.n).walk(m, pos, k) }

// cmdNode marks where a command starts: the arguments bound after it belong
// to this command.
type cmdNode struct{ c *command }

func (c cmdNode) walk(m *matcher, pos int, k *cont) {
	m.push(step{cmd: c.c})
	c.c.syntax.walk(m, pos, k)
	m.pop()
}

// Grammar constructors.

func seq(n ...node) node { return seqNode(n) }
func alt(n ...node) node { return newAlt(n) }
func opt(n ...node) node { return optNode{seq(n...)} }

func anyOrder(n ...node) node {
	a := &anyOrderNode{}
	for i, x := range n {
		if m, ok := x.(manyNode); ok {
			x, a.multi = m.node, a.multi|1<<i
		}
		a.items = append(a.items, x)
		a.firsts = append(a.firsts, first(x))
	}
	return a
}

// kw is a keyword that binds nothing.
func kw(word, help string) *atom { return &atom{word: registerWord(word), help: help} }

// kwSet is a keyword whose presence is recorded in the arguments.
func kwSet[T any](word, help string, set func(*T)) *atom {
	return &atom{word: registerWord(word), help: help, bind: func(b *binding, _ string) { set(b.args.(*T)) }}
}

// param is a typed parameter: accept validates a token, set stores it.
func param[T any](name, help string, accept func(string) bool, set func(*T, string)) *atom {
	a := &atom{name: name, help: help, accept: accept}
	if set != nil {
		a.bind = func(b *binding, v string) { set(b.args.(*T), v) }
	}
	return a
}

// token is one word of a line and where it starts.
type token struct {
	text string
	off  int
}

// tokenize splits a line at blanks; a token that starts with a double quote
// runs to the closing quote (backslash escapes the next character).
func tokenize(line string) []token { return appendTokens(nil, line) }

// appendTokens appends the tokens of line to toks. The first "|" outside
// quotes is a token of its own even when written against its neighbours
// (IOS: `sh run|inc host`); later ones stay in their tokens, so that a
// pattern may use alternation (`| include a|b`). A rest-of-line value
// (remark) is the line's text, whatever its tokens.
func appendTokens(toks []token, line string) []token {
	i := 0
	piped := false
	for i < len(line) {
		if line[i] == ' ' || line[i] == '\t' {
			i++
			continue
		}
		start := i
		if line[i] == '"' {
			i++
			for i < len(line) && line[i] != '"' {
				if line[i] == '\\' && i+1 < len(line) {
					i++
				}
				i++
			}
			if i < len(line) {
				i++
			}
		}
		for i < len(line) && line[i] != ' ' && line[i] != '\t' {
			if line[i] == '|' && !piped {
				piped = true
				if i > start {
					toks = append(toks, token{line[start:i], start})
				}
				toks = append(toks, token{"|", i})
				start = i + 1
			}
			i++
		}
		if i > start {
			toks = append(toks, token{line[start:i], start})
		}
	}
	return toks
}

type resolved struct {
	isKw bool
	kw   string
	id   int // wordID(kw)
}

type step struct {
	cmd  *command // a command marker, or
	atom *atom    // a matched token
	tok  int
	end  int // an upTo LINE: the token it stops before (0: the end of the line)
}

// matcher matches the tokens of one line against a grammar.
type matcher struct {
	line  string
	toks  []token
	res   []resolved // how tokens [0, limit) were resolved
	limit int        // walking stops here

	cands   []*atom  // atoms offered at limit
	cr      bool     // a command can end at limit
	matches [][]step // complete matches when limit == len(toks)
	path    []step
	conts   conts
}

func (m *matcher) push(s step) { m.path = append(m.path, s) }
func (m *matcher) pop()        { m.path = m.path[:len(m.path)-1] }

func (m *matcher) offer(a *atom) {
	for _, c := range m.cands {
		if c == a {
			return
		}
	}
	m.cands = append(m.cands, a)
}

// run walks the grammar with tokens [0, limit) consumed.
func (m *matcher) run(g node, limit int) {
	m.limit = limit
	m.cands, m.cr, m.matches, m.path = m.cands[:0], false, m.matches[:0], m.path[:0]
	g.walk(m, 0, nil)
}

// end is where a walk that matched the grammar up to pos ends.
func (m *matcher) end(pos int) {
	if pos != m.limit {
		return
	}
	m.cr = true
	if m.limit == len(m.toks) {
		var s []step // the steps of a match of an earlier walk, to reuse
		if n := len(m.matches); n < cap(m.matches) {
			s = m.matches[:n+1][n][:0]
		}
		m.matches = append(m.matches, append(s, m.path...))
	}
}

// matchErr is what was wrong with a line, and at which token.
type matchErr struct {
	kind ErrKind
	tok  int // the bad token, for ErrInvalid and ErrAmbiguous
}

// resolve decides what token p is, given the candidates at p: an exact
// keyword, the one keyword it abbreviates, or a parameter value.
func (m *matcher) resolve(p int) (resolved, *matchErr) {
	t := strings.ToLower(m.toks[p].text)
	var prefixed []string
	param := false
	for _, a := range m.cands {
		switch {
		case a.word != "" && a.word == t:
			return resolved{isKw: true, kw: t, id: wordID(t)}, nil
		case a.word != "" && strings.HasPrefix(a.word, t):
			if !contains(prefixed, a.word) {
				prefixed = append(prefixed, a.word)
			}
		case a.word == "" && (a.rest || a.accept(m.toks[p].text)):
			param = true
		}
	}
	if len(prefixed) == 2 && (prefixed[0]+"s" == prefixed[1] || prefixed[1]+"s" == prefixed[0]) {
		// A keyword and its plural at one place are one command in two
		// spellings (SLX-OS's show access-list, IOS's show access-lists):
		// what abbreviates both is the singular, not ambiguous.
		prefixed = []string{min(prefixed[0], prefixed[1])}
	}
	switch {
	case len(prefixed) == 1:
		return resolved{isKw: true, kw: prefixed[0], id: wordID(prefixed[0])}, nil
	case len(prefixed) > 1:
		return resolved{}, &matchErr{kind: ErrAmbiguous, tok: p}
	case param:
		return resolved{}, nil
	}
	return resolved{}, &matchErr{kind: ErrInvalid, tok: p}
}

func contains(s []string, w string) bool {
	for _, x := range s {
		if x == w {
			return true
		}
	}
	return false
}

// newMatcher resolves the first n tokens of line against g. It returns the
// matcher positioned after them, or the first error.
func newMatcher(g node, line string, n int) (*matcher, *matchErr) {
	m := matchers.Get().(*matcher)
	m.line, m.toks = line, appendTokens(m.toks[:0], line)
	if n < 0 || n > len(m.toks) {
		n = len(m.toks)
		// A whole line: first walk only for the tokens that abbreviate a
		// keyword, taking a keyword spelled out as itself (walkAbbrevs);
		// then only for the tokens that could be keywords (a token no
		// keyword starts with can only resolve to a parameter value); a
		// line that matches neither way is walked token by token, which
		// finds its first error exactly (a token taken for a value that no
		// parameter accepts ends every path through it, as the full walk's
		// candidates would have said).
		if fastParse {
			if err := m.walkLine(g, n, walkAbbrevs); err == nil && len(m.matches) > 0 && !hasRest(m.matches[0]) {
				return m, nil
			}
			if err := m.walkLine(g, n, walkWords); err == nil && len(m.matches) > 0 {
				return m, nil
			}
		}
	}
	return m, m.walkLine(g, n, walkEvery)
}

// matchers keeps matchers for reuse (release): a line's walks then take
// no new slices (tokens, resolutions, path, candidates, continuations).
var matchers = sync.Pool{New: func() any { return new(matcher) }}

// release hands m back for reuse; nothing of it may be used after.
func (m *matcher) release() {
	m.line = ""
	clear(m.toks)
	matchers.Put(m)
}

// Which tokens walkLine walks the grammar for, to resolve them.
const (
	walkEvery   = iota // every token
	walkWords          // the tokens that some keyword starts with; others are values
	walkAbbrevs        // those that are not keywords as typed either, which are taken as such
)

// walkLine resolves the first n tokens against g, walking the grammar for
// the tokens of mode (walkEvery and so on).
//
// Why walkAbbrevs resolves a line exactly when it matches through no LINE
// parameter: by induction on the tokens, if those before p
// resolve as the walk of every token resolves them, and the match takes
// the keyword typed at p, a path reached p with that keyword, so the walk
// of every token found it among the candidates at p and took it (resolve
// takes an exact keyword first); a value at p it would have resolved as a
// value too, as walkWords does. A LINE may take keywords as its words,
// which the walk of every token would have resolved as values.
func (m *matcher) walkLine(g node, n int, mode int) *matchErr {
	m.res = m.res[:0]
	for p := 0; p < n; p++ {
		if mode != walkEvery {
			id, exact, prefix := wordOf(m.toks[p].text)
			if !prefix {
				m.res = append(m.res, resolved{})
				continue
			}
			if exact && mode == walkAbbrevs {
				m.res = append(m.res, resolved{isKw: true, kw: strings.ToLower(m.toks[p].text), id: id})
				continue
			}
		}
		m.run(g, p)
		r, err := m.resolve(p)
		if err != nil {
			return err
		}
		m.res = append(m.res, r)
	}
	m.run(g, n)
	return nil
}

// hasRest reports whether a match takes a LINE parameter (see walkLine).
func hasRest(path []step) bool {
	for _, s := range path {
		if s.atom != nil && s.atom.rest {
			return true
		}
	}
	return false
}

// fastParse enables the first walk of newMatcher that skips values
// (tests compare it with the walk of every token).
var fastParse = true

// words are the keywords of every grammar (registerWord, at their
// construction), numbered for wordSet.
var words struct {
	sync.RWMutex
	prefixes map[string]bool // every prefix of every keyword
	ids      map[string]int
}

// registerWord records a keyword for wordOf and wordID and returns it.
func registerWord(w string) string {
	words.Lock()
	defer words.Unlock()
	if words.prefixes == nil {
		words.prefixes, words.ids = map[string]bool{}, map[string]int{}
	}
	for i := 1; i <= len(w); i++ {
		words.prefixes[w[:i]] = true
	}
	if _, ok := words.ids[w]; !ok {
		words.ids[w] = len(words.ids)
	}
	return w
}

// wordID is the number of a registered keyword.
func wordID(w string) int {
	words.RLock()
	defer words.RUnlock()
	id, ok := words.ids[w]
	if !ok {
		panic("cli: keyword " + w + " not made by kw or flagKw")
	}
	return id
}

// wordSet is a set of keywords by number.
type wordSet []uint64

func (s *wordSet) add(id int) {
	for len(*s) <= id/64 {
		*s = append(*s, 0)
	}
	(*s)[id/64] |= 1 << (id % 64)
}

func (s wordSet) has(id int) bool { return id/64 < len(s) && s[id/64]&(1<<(id%64)) != 0 }

func (s *wordSet) union(t wordSet) {
	for i, w := range t {
		if i >= len(*s) {
			*s = append(*s, 0)
		}
		(*s)[i] |= w
	}
}

// wordOf looks a token up among the keywords (as resolve compares: in
// lower case): whether it is one (and its number), and whether some
// keyword starts with it.
func wordOf(tok string) (id int, exact, prefix bool) {
	t := strings.ToLower(tok)
	words.RLock()
	defer words.RUnlock()
	id, exact = words.ids[t]
	return id, exact, words.prefixes[t]
}

// parsed is a complete match: the command and its bound arguments.
type parsed struct {
	cmd *command
	binding
}

// parseLine matches a whole line. An empty line gives a nil command.
func parseLine(g node, line string) (*parsed, *matchErr) {
	m, err := newMatcher(g, line, -1)
	defer m.release()
	if err != nil {
		return nil, err
	}
	if len(m.toks) == 0 {
		return &parsed{}, nil
	}
	if len(m.matches) == 0 {
		return nil, &matchErr{kind: ErrIncomplete, tok: len(m.toks)}
	}
	return m.bind(m.matches[0]), nil
}

// bind builds the arguments of the last command marker in a match.
func (m *matcher) bind(path []step) *parsed {
	start := 0
	var c *command
	for i, s := range path {
		if s.cmd != nil {
			c, start = s.cmd, i+1
		}
	}
	p := &parsed{cmd: c, binding: binding{args: c.newArgs()}}
	for _, s := range path[start:] {
		if s.atom == nil || s.atom.bind == nil {
			continue
		}
		v := m.toks[s.tok].text
		switch {
		case s.atom.rest && s.end > 0:
			v = strings.TrimRight(m.line[m.toks[s.tok].off:m.toks[s.end].off], " \t")
		case s.atom.rest:
			v = strings.TrimRight(m.line[m.toks[s.tok].off:], " \t")
		case s.atom.word != "":
			v = s.atom.word
		}
		s.atom.bind(&p.binding, v)
	}
	return p
}

// binding is what atoms bind into: the command's typed arguments and the
// output pipe, which any show command may have.
type binding struct {
	args  any
	pipes []*pipeSpec // output filters, in order
}

// helpItem is one line of `?` help.
type helpItem struct {
	Token, Help string
}

// candidatesAt matches the complete tokens of line; the last token is a
// partial word (returned lower-cased) unless line ends in a blank. It
// returns nil when the complete tokens do not match.
func candidatesAt(g node, line string) (m *matcher, partial string) {
	toks := tokenize(line)
	n := len(toks)
	if n > 0 && !endsBlank(line) {
		n--
		partial = strings.ToLower(toks[n].text)
	}
	m, err := newMatcher(g, line, n)
	if err != nil {
		return nil, ""
	}
	return m, partial
}

// helpAt lists the candidates after the complete tokens of line, with <cr>
// when the command may end there. A partial last word lists the keywords
// it begins; when it begins none, it is a value being typed, and the
// parameters are listed. It returns nil when the line does not match.
func helpAt(g node, line string) []helpItem {
	m, partial := candidatesAt(g, line)
	if m == nil {
		return nil
	}
	var kws, params []helpItem
	for _, a := range m.cands {
		if a.word != "" && strings.HasPrefix(a.word, partial) {
			kws = append(kws, helpItem{a.word, a.help})
		}
	}
	for _, a := range m.cands {
		if a.word == "" && (partial == "" || len(kws) == 0 || a.rest || a.accept(partial)) {
			params = append(params, helpItem{a.name, a.help})
		}
	}
	sort.SliceStable(kws, func(i, j int) bool { return kws[i].Token < kws[j].Token })
	items := dedupe(append(params, kws...))
	if partial == "" && m.cr {
		items = append(items, helpItem{"<cr>", ""})
	}
	return items
}

// dedupe keeps the first item of each token (a keyword that two commands
// share, such as show ipv6, is listed once).
func dedupe(items []helpItem) []helpItem {
	var out []helpItem
	seen := map[string]bool{}
	for _, it := range items {
		if !seen[it.Token] {
			seen[it.Token] = true
			out = append(out, it)
		}
	}
	return out
}

func endsBlank(line string) bool {
	return line == "" || line[len(line)-1] == ' ' || line[len(line)-1] == '\t'
}

// completeAt returns the keywords that the last (partial) word of line can
// be completed to, and the names of names (nil: none) where a name of an
// ACL or time range may come, sorted; all next ones when line ends in a
// blank, but not a keyword alone where a value may come instead (`show
// access-list ip ` is followed by a name or the pipe: TAB must not write
// the pipe).
func completeAt(g node, line string, names func(nameKind, []token) []string) []string {
	m, partial := candidatesAt(g, line)
	if m == nil {
		return nil
	}
	toks := tokenize(line)
	typed := "" // the partial word as typed: names are case-sensitive
	if len(toks) > 0 && !endsBlank(line) {
		typed = toks[len(toks)-1].text
	}
	var out []string
	named, value := false, false
	for _, a := range m.cands {
		switch {
		case a.word != "":
			if strings.HasPrefix(a.word, partial) && !contains(out, a.word) {
				out = append(out, a.word)
			}
		case a.names != noNames && names != nil:
			value = true
			for _, n := range names(a.names, toks) {
				if strings.HasPrefix(n, typed) && !contains(out, n) {
					out, named = append(out, n), true
				}
			}
		default:
			value = true
		}
	}
	if len(out) == 1 && partial == "" && value && !named {
		return nil
	}
	sort.Strings(out)
	return out
}
