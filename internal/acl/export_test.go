package acl

// Cached is how many entry lines the formatter keeps for the next time.
func (f *Formatter) Cached() int {
	n := 0
	for _, fl := range f.lists {
		n += len(fl.lines)
	}
	return n
}

// OneBucket puts every entry in one bucket of the duplicate finder until
// the returned func is called.
func OneBucket() (restore func()) {
	h := keyHash
	keyHash = func(*entryKey) uint64 { return 1 }
	return func() { keyHash = h }
}
