package acl

// A Formatter formats configurations as Format does, keeping the line of
// each entry it formatted: entries are immutable and shared by the clones
// a change starts from (Config.Clone), so formatting the config after a
// change formats only the entries the change made. The agent saves its
// running config so after every change. A Formatter is not safe for
// concurrent use; its zero value is ready.
type Formatter struct {
	lines map[lineKey]string // FormatEntry's, of entries of the configs formatted
	size  int                // of the last text
}

type lineKey struct {
	e *Entry
	f Family
}

// Format returns Format(c).
func (f *Formatter) Format(c *Config) string {
	if f.lines == nil {
		f.lines = map[lineKey]string{}
	}
	n := 0
	text := format(c, func(fam Family, e *Entry) string {
		n++
		k := lineKey{e, fam}
		l, ok := f.lines[k]
		if !ok {
			l = FormatEntry(fam, e)
			f.lines[k] = l
		}
		return l
	}, f.size+f.size/64)
	f.size = len(text)
	if len(f.lines) > 2*n+64 {
		f.keepOnly(c)
	}
	return text
}

// keepOnly forgets the lines of entries c does not hold (nor pins them in
// memory); the map starts over, since deleting keys would not shrink it.
func (f *Formatter) keepOnly(c *Config) {
	kept := make(map[lineKey]string, len(f.lines)/2)
	for _, a := range c.ACLs {
		for _, e := range a.Entries {
			k := lineKey{e, a.Family}
			kept[k] = f.lines[k]
		}
	}
	f.lines = kept
}
