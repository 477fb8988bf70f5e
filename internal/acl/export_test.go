package acl

// Cached is how many entry lines the formatter keeps.
func (f *Formatter) Cached() int { return len(f.lines) }
