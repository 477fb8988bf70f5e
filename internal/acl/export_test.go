package acl

// Cached is how many entry lines the formatter keeps for the next time.
func (f *Formatter) Cached() int {
	n := 0
	for _, fl := range f.lists {
		n += len(fl.lines)
	}
	return n
}
