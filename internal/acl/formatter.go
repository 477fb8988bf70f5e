package acl

import (
	"bytes"
	"io"
	"strings"
)

// A Formatter formats configurations as Format does, keeping the lines of
// each list's entries: entries are immutable and shared by the clones a
// change starts from (Config.Clone), so formatting the config after a
// change formats only the entries the change made, and finds the others
// by a walk of the list beside the one formatted before. The agent saves
// its running config so after every change. A Formatter is not safe for
// concurrent use; its zero value is ready.
type Formatter struct {
	lists map[aclKey]*formattedACL // of the config formatted last
	size  int                      // of the last text
	gen   int                      // Format calls
}

// formattedACL is a list's entries as formatted last and their lines, with
// the buffers of the time before for the next time.
type formattedACL struct {
	es, spareEs       []*Entry
	lines, spareLines []string
	gen               int // of the Format call that wrote es
}

// Format returns Format(c).
func (f *Formatter) Format(c *Config) string {
	var b strings.Builder
	b.Grow(f.size + f.size/64)
	f.format(&b, c)
	f.size = b.Len()
	return b.String()
}

// Append appends Format(c) to dst, and returns the extended buffer (a
// caller that keeps it formats without allocating).
func (f *Formatter) Append(dst []byte, c *Config) []byte {
	b := bytes.NewBuffer(dst)
	f.format(b, c)
	f.size = b.Len() - len(dst)
	return b.Bytes()
}

func (f *Formatter) format(b io.StringWriter, c *Config) {
	if f.lists == nil {
		f.lists = map[aclKey]*formattedACL{}
	}
	f.gen++
	format(b, c, f.writeACL)
	for k, fl := range f.lists {
		if fl.gen != f.gen {
			delete(f.lists, k) // not in c
		}
	}
}

// writeACL is writeACL with the lines of the entries formatted last time.
func (f *Formatter) writeACL(b io.StringWriter, a *ACL) {
	k := aclKey{a.Family, a.Name}
	fl := f.lists[k]
	switch {
	case fl == nil:
		fl = &formattedACL{}
		f.lists[k] = fl
	case fl.gen == f.gen: // twice in c (which Validate refuses)
		writeACL(b, a, FormatEntry)
		return
	}
	es, lines := fl.spareEs[:0], fl.spareLines[:0]
	i := 0 // in fl.es, which is in seq order as a.Entries
	writeACL(b, a, func(fam Family, e *Entry) string {
		for i < len(fl.es) && fl.es[i].Seq < e.Seq {
			i++
		}
		var l string
		if i < len(fl.es) && fl.es[i] == e {
			l = fl.lines[i]
		} else {
			l = FormatEntry(fam, e)
		}
		es, lines = append(es, e), append(lines, l)
		return l
	})
	fl.es, fl.spareEs = es, fl.es
	fl.lines, fl.spareLines = lines, fl.lines
	fl.gen = f.gen
}
